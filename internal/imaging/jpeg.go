package imaging

// JPEG is decoded by libjpeg-turbo (the libjpeg62 API, Debian's
// libjpeg62-turbo), the same library and the same settings (islow DCT, fancy
// upsampling) Pillow uses, so decoded pixels match Pillow's exactly; it is
// also about three times faster than image/jpeg. See docs/design.md.

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jump;
	int truncated;
	int stopped; // PB_SCANS or PB_CANCELLED when the progress monitor stopped the decode
} pb_jerr;

static void pb_jerror_exit(j_common_ptr c) {
	longjmp(((pb_jerr *)c->err)->jump, 1);
}

// Warnings are ignored, as Pillow ignores them, except running out of data:
// libjpeg then pads the image with grey, and Pillow reports a truncated file.
static void pb_jemit(j_common_ptr c, int level) {
	if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
		((pb_jerr *)c->err)->truncated = 1;
	}
}

enum { PB_OK = 0, PB_ERR = 1, PB_TRUNCATED = 2, PB_MISMATCH = 3, PB_SCANS = 4, PB_CANCELLED = 5 };

// pb_jctl is the decode's control block, malloc'd by Go (never Go memory):
// Go sets cancel (atomically) from another goroutine when the context is
// done; libjpeg's progress monitor reads it.
typedef struct {
	int cancel;
	int max_scans; // <= 0: no limit
} pb_jctl;

typedef struct {
	struct jpeg_progress_mgr pub;
	pb_jctl *ctl;
} pb_jprog;

// pb_jprogress is libjpeg's progress monitor: called before each iMCU row
// while the scans are read into the coefficient buffer (multi-scan files)
// and on each jpeg_read_scanlines call, so it stops a decode within one row
// of work. input_scan_number counts the scans read so far, as djpeg
// -maxscans counts them.
static void pb_jprogress(j_common_ptr c) {
	pb_jctl *ctl = ((pb_jprog *)c->progress)->ctl;
	pb_jerr *err = (pb_jerr *)c->err;
	if (__atomic_load_n(&ctl->cancel, __ATOMIC_RELAXED)) {
		err->stopped = PB_CANCELLED;
		longjmp(err->jump, 1);
	}
	if (ctl->max_scans > 0 && ((j_decompress_ptr)c)->input_scan_number > ctl->max_scans) {
		err->stopped = PB_SCANS;
		longjmp(err->jump, 1);
	}
}

// pb_jpeg_decode decodes buf into out (w*h*comps bytes, comps 3 for RGB or 4
// for CMYK as stored). Everything happens in this one call, so libjpeg never
// keeps a pointer to Go memory.
static int pb_jpeg_decode(const unsigned char *buf, unsigned long len,
		unsigned char *out, int w, int h, int comps, pb_jctl *ctl, char *msg, int msglen) {
	struct jpeg_decompress_struct cinfo;
	pb_jerr err;
	pb_jprog prog;
	memset(&cinfo, 0, sizeof cinfo);
	memset(&err, 0, sizeof err);
	memset(&prog, 0, sizeof prog);
	if (__atomic_load_n(&ctl->cancel, __ATOMIC_RELAXED)) {
		return PB_CANCELLED;
	}
	cinfo.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = pb_jerror_exit;
	err.pub.emit_message = pb_jemit;
	if (setjmp(err.jump)) {
		if (err.stopped) {
			jpeg_destroy_decompress(&cinfo);
			return err.stopped;
		}
		(*cinfo.err->format_message)((j_common_ptr)&cinfo, msg);
		jpeg_destroy_decompress(&cinfo);
		return err.truncated ? PB_TRUNCATED : PB_ERR;
	}
	jpeg_create_decompress(&cinfo);
	prog.pub.progress_monitor = pb_jprogress;
	prog.ctl = ctl;
	cinfo.progress = &prog.pub;
	jpeg_mem_src(&cinfo, buf, len);
	if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
		jpeg_destroy_decompress(&cinfo);
		return PB_ERR;
	}
	if ((int)cinfo.image_width != w || (int)cinfo.image_height != h) {
		jpeg_destroy_decompress(&cinfo);
		return PB_MISMATCH;
	}
	switch (cinfo.jpeg_color_space) {
	case JCS_CMYK:
	case JCS_YCCK:
		if (comps != 4) { jpeg_destroy_decompress(&cinfo); return PB_MISMATCH; }
		cinfo.out_color_space = JCS_CMYK;
		break;
	default:
		if (comps != 3) { jpeg_destroy_decompress(&cinfo); return PB_MISMATCH; }
		cinfo.out_color_space = JCS_RGB;
	}
	jpeg_start_decompress(&cinfo);
	if ((int)cinfo.output_width != w || (int)cinfo.output_height != h ||
			cinfo.output_components != comps) {
		jpeg_destroy_decompress(&cinfo);
		return PB_MISMATCH;
	}
	size_t stride = (size_t)w * (size_t)comps;
	while (cinfo.output_scanline < cinfo.output_height) {
		JSAMPROW rows[16];
		int n = 0;
		while (n < 16 && cinfo.output_scanline + n < cinfo.output_height) {
			rows[n] = out + (size_t)(cinfo.output_scanline + n) * stride;
			n++;
		}
		jpeg_read_scanlines(&cinfo, rows, n);
		if (err.truncated) {
			break;
		}
	}
	if (err.truncated) {
		jpeg_destroy_decompress(&cinfo);
		return PB_TRUNCATED;
	}
	jpeg_finish_decompress(&cinfo);
	jpeg_destroy_decompress(&cinfo);
	return err.truncated ? PB_TRUNCATED : PB_OK;
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// jpegHeader is what decodeJPEG (and DecodeCost) need from the frame header
// before decoding.
type jpegHeader struct {
	w, h, comps int
	// progressive: a SOF2, SOF6, SOF10 or SOF14 frame.
	progressive bool
	// compSpecs are the frame header's 3-byte component specifications
	// (id, sampling factors H<<4|V, quantisation table), in b; nil if the
	// header is too short to hold them.
	compSpecs []byte
	// end is the offset just past the frame header.
	end int
}

// readJPEGHeader finds the first SOFn segment and returns the frame's size
// and component count, without decoding anything.
func readJPEGHeader(b []byte) (jpegHeader, error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return jpegHeader{}, errors.New("missing SOI marker")
	}
	i := 2
	for {
		// Skip fill bytes before a marker.
		for i < len(b) && b[i] != 0xFF {
			i++
		}
		for i < len(b) && b[i] == 0xFF {
			i++
		}
		if i >= len(b) {
			return jpegHeader{}, errors.New("no frame header (SOF) before the end of the data")
		}
		m := b[i]
		i++
		switch {
		case m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01:
			continue // markers without a length
		case m == 0xD9:
			return jpegHeader{}, errors.New("end of image before a frame header")
		}
		if i+2 > len(b) {
			return jpegHeader{}, errors.New("truncated segment length")
		}
		n := int(b[i])<<8 | int(b[i+1])
		if n < 2 || i+n > len(b) {
			return jpegHeader{}, errors.New("truncated segment")
		}
		isSOF := m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC
		if isSOF {
			if n < 8 {
				return jpegHeader{}, errors.New("short frame header")
			}
			s := b[i+2:]
			h := int(s[1])<<8 | int(s[2])
			w := int(s[3])<<8 | int(s[4])
			comps := int(s[5])
			if w == 0 || h == 0 {
				return jpegHeader{}, fmt.Errorf("invalid frame size %dx%d", w, h)
			}
			hdr := jpegHeader{w: w, h: h, comps: comps, end: i + n,
				progressive: m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE}
			if n >= 8+3*comps {
				hdr.compSpecs = s[6 : 6+3*comps : 6+3*comps]
			}
			return hdr, nil
		}
		i += n
	}
}

// decodeJPEG decodes with libjpeg into RGB; CMYK JPEGs come back as raw
// CMYK (4 bytes a pixel) for convert.go to turn into RGB the way Pillow does.
// It stops with an error wrapping ErrTooManyScans when the file has more
// than maxScans scans (maxScans <= 0: no limit), and with one wrapping
// ctx.Err() soon after ctx is done.
func decodeJPEG(ctx context.Context, b []byte, hdr jpegHeader, maxScans int) (pix []uint8, comps int, err error) {
	comps = 3
	if hdr.comps == 4 {
		comps = 4
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	// The control block is C memory: libjpeg reads it while a goroutine may
	// set its cancel flag, and no Go pointer is kept by C.
	ctl := (*C.pb_jctl)(C.calloc(1, C.sizeof_pb_jctl))
	if ctl == nil {
		return nil, 0, errors.New("out of memory for the JPEG decoder")
	}
	ctl.max_scans = C.int(max(maxScans, 0))
	if ctx.Done() != nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			atomic.StoreInt32((*int32)(unsafe.Pointer(&ctl.cancel)), 1)
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired // the flag is being set: wait before freeing it
			}
			C.free(unsafe.Pointer(ctl))
		}()
	} else {
		defer C.free(unsafe.Pointer(ctl))
	}
	pix = make([]uint8, hdr.w*hdr.h*comps)
	var msg [C.JMSG_LENGTH_MAX]C.char
	rc := C.pb_jpeg_decode((*C.uchar)(unsafe.Pointer(unsafe.SliceData(b))), C.ulong(len(b)),
		(*C.uchar)(unsafe.Pointer(unsafe.SliceData(pix))), C.int(hdr.w), C.int(hdr.h), C.int(comps),
		ctl, &msg[0], C.int(len(msg)))
	switch rc {
	case C.PB_OK:
		return pix, comps, nil
	case C.PB_SCANS:
		return nil, 0, fmt.Errorf("%w: more than %d", ErrTooManyScans, maxScans)
	case C.PB_CANCELLED:
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		return nil, 0, context.Canceled // not reached: the flag is set only when ctx is done
	case C.PB_TRUNCATED:
		return nil, 0, errors.New("truncated JPEG data")
	case C.PB_MISMATCH:
		return nil, 0, errors.New("frame header and decoder disagree (unsupported JPEG)")
	default:
		if s := C.GoString(&msg[0]); s != "" {
			return nil, 0, errors.New(s)
		}
		return nil, 0, errors.New("libjpeg failed")
	}
}
