package jpegtest

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <malloc.h>
#include <jpeglib.h>

typedef struct { struct jpeg_error_mgr pub; jmp_buf jump; } jtm_err;
static void jtm_error_exit(j_common_ptr c) { longjmp(((jtm_err *)c->err)->jump, 1); }
static void jtm_emit(j_common_ptr c, int level) { (void)c; (void)level; }

typedef struct { struct jpeg_progress_mgr pub; size_t peak; } jtm_prog;

// jtm_inuse is the C heap in use: small blocks plus mmap'd large ones
// (libjpeg's big buffers are mmap'd by glibc).
static size_t jtm_inuse(void) {
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
}

static void jtm_progress(j_common_ptr c) {
	jtm_prog *p = (jtm_prog *)c->progress;
	size_t u = jtm_inuse();
	if (u > p->peak) p->peak = u;
}

// jtm_peak decodes buf as the imaging package does (RGB, or CMYK as stored)
// into one reused row and returns the most C heap libjpeg held, sampled by
// its progress monitor (called before every row of work), less the row.
static long long jtm_peak(const unsigned char *buf, unsigned long len) {
	struct jpeg_decompress_struct cinfo;
	jtm_err err;
	jtm_prog prog;
	unsigned char *row = NULL;
	memset(&cinfo, 0, sizeof cinfo);
	memset(&prog, 0, sizeof prog);
	size_t base = jtm_inuse();
	cinfo.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = jtm_error_exit;
	err.pub.emit_message = jtm_emit;
	if (setjmp(err.jump)) {
		jpeg_destroy_decompress(&cinfo);
		free(row);
		return -1;
	}
	jpeg_create_decompress(&cinfo);
	prog.pub.progress_monitor = jtm_progress;
	cinfo.progress = &prog.pub;
	jpeg_mem_src(&cinfo, buf, len);
	jpeg_read_header(&cinfo, TRUE);
	cinfo.out_color_space = (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) ? JCS_CMYK : JCS_RGB;
	jpeg_start_decompress(&cinfo);
	size_t rowlen = (size_t)cinfo.output_width * cinfo.output_components;
	row = malloc(rowlen);
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW r = row;
		jpeg_read_scanlines(&cinfo, &r, 1);
	}
	jtm_progress((j_common_ptr)&cinfo);
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	free(row);
	if (prog.peak < base + rowlen) return 0;
	return (long long)(prog.peak - base - rowlen);
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// PeakHeap decodes jpg with libjpeg as the imaging package does and returns
// the most C heap memory libjpeg held meanwhile (its coefficient and sample
// buffers, not the output image), as glibc's mallinfo2 counts it. Nothing
// else in the process may allocate C memory meanwhile.
func PeakHeap(jpg []byte) (int64, error) {
	if len(jpg) == 0 {
		return 0, errors.New("jpegtest: empty")
	}
	n := C.jtm_peak((*C.uchar)(unsafe.Pointer(&jpg[0])), C.ulong(len(jpg)))
	if n < 0 {
		return 0, errors.New("jpegtest: libjpeg failed")
	}
	return int64(n), nil
}
