// Package jpegtest writes JPEG files that the standard library cannot:
// CMYK and YCCK (with the Adobe marker libjpeg adds for them), through
// libjpeg-turbo. It exists for tests of the decoder.
package jpegtest

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

typedef struct { struct jpeg_error_mgr pub; jmp_buf jump; } jt_err;
static void jt_error_exit(j_common_ptr c) { longjmp(((jt_err *)c->err)->jump, 1); }

// jt_encode compresses w*h*comps samples; cs is the JPEG colour space to
// store (JCS_CMYK or JCS_YCCK for 4 components). The output is malloc'd.
static int jt_encode(const unsigned char *pix, int w, int h, int comps, int in_cs, int cs,
		int quality, unsigned char **out, unsigned long *outlen) {
	struct jpeg_compress_struct c;
	jt_err err;
	memset(&c, 0, sizeof c);
	c.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = jt_error_exit;
	*out = NULL;
	*outlen = 0;
	if (setjmp(err.jump)) {
		jpeg_destroy_compress(&c);
		return 1;
	}
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, out, outlen);
	c.image_width = w;
	c.image_height = h;
	c.input_components = comps;
	c.in_color_space = in_cs;
	jpeg_set_defaults(&c);
	jpeg_set_colorspace(&c, cs);
	jpeg_set_quality(&c, quality, TRUE);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = (JSAMPROW)(pix + (size_t)c.next_scanline * w * comps);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	return 0;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Colour spaces EncodeCMYK can store.
const (
	CMYK = C.JCS_CMYK
	YCCK = C.JCS_YCCK
)

// EncodeCMYK compresses w×h CMYK samples (4 bytes a pixel, as they are to
// be stored) into a JPEG whose colour space is CMYK or YCCK.
func EncodeCMYK(pix []byte, w, h, colorSpace, quality int) ([]byte, error) {
	if len(pix) != w*h*4 || w <= 0 || h <= 0 {
		return nil, errors.New("jpegtest: wrong pixel count")
	}
	var out *C.uchar
	var n C.ulong
	rc := C.jt_encode((*C.uchar)(unsafe.Pointer(&pix[0])), C.int(w), C.int(h), 4, C.JCS_CMYK,
		C.int(colorSpace), C.int(quality), &out, &n)
	if out != nil {
		defer C.free(unsafe.Pointer(out))
	}
	if rc != 0 {
		return nil, errors.New("jpegtest: libjpeg failed")
	}
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}
