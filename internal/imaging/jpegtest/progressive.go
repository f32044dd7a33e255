package jpegtest

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

typedef struct { struct jpeg_error_mgr pub; jmp_buf jump; } jtp_err;
static void jtp_error_exit(j_common_ptr c) { longjmp(((jtp_err *)c->err)->jump, 1); }

// jtp_encode compresses w*h*comps samples (comps 1: grey, 3: RGB) at a
// quality, with a progression: mode 0 baseline, 1 libjpeg's default
// progressive script, 2 the nscans scans of script (5 ints each: the
// component index or -1 for all components, Ss, Se, Ah, Al). The output is
// malloc'd.
static int jtp_encode(const unsigned char *pix, int w, int h, int comps, int quality,
		int mode, const int *script, int nscans, unsigned char **out, unsigned long *outlen) {
	struct jpeg_compress_struct c;
	jtp_err err;
	jpeg_scan_info *scans = NULL;
	memset(&c, 0, sizeof c);
	c.err = jpeg_std_error(&err.pub);
	err.pub.error_exit = jtp_error_exit;
	*out = NULL;
	*outlen = 0;
	if (setjmp(err.jump)) {
		jpeg_destroy_compress(&c);
		free(scans);
		return 1;
	}
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, out, outlen);
	c.image_width = w;
	c.image_height = h;
	c.input_components = comps;
	c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, quality, TRUE);
	if (mode == 1) {
		jpeg_simple_progression(&c);
	} else if (mode == 2) {
		scans = calloc(nscans, sizeof *scans);
		if (scans == NULL) {
			jpeg_destroy_compress(&c);
			return 1;
		}
		for (int i = 0; i < nscans; i++) {
			const int *s = script + 5 * i;
			if (s[0] < 0) {
				scans[i].comps_in_scan = comps;
				for (int k = 0; k < comps; k++) scans[i].component_index[k] = k;
			} else {
				scans[i].comps_in_scan = 1;
				scans[i].component_index[0] = s[0];
			}
			scans[i].Ss = s[1];
			scans[i].Se = s[2];
			scans[i].Ah = s[3];
			scans[i].Al = s[4];
		}
		c.scan_info = scans;
		c.num_scans = nscans;
	}
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = (JSAMPROW)(pix + (size_t)c.next_scanline * w * comps);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(scans);
	return 0;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Scan is one scan of a progressive JPEG's script, as libjpeg's
// jpeg_scan_info has it: Comp is the component index, or -1 for all of them
// (only for DC scans); Ss..Se the spectral band; Ah, Al the successive
// approximation bit positions.
type Scan struct{ Comp, Ss, Se, Ah, Al int }

// Progression selects how Encode orders the coefficients.
type Progression int

const (
	// Baseline is one sequential scan.
	Baseline Progression = iota
	// Simple is libjpeg's default progressive script (about 10 scans).
	Simple
	// Script uses the scans given to Encode.
	Script
)

// Encode compresses w×h samples (comps 1 for grey, 3 for RGB) at a quality
// with a progression; script is used only with Script.
func Encode(pix []byte, w, h, comps, quality int, p Progression, script []Scan) ([]byte, error) {
	if w <= 0 || h <= 0 || (comps != 1 && comps != 3) || len(pix) != w*h*comps {
		return nil, errors.New("jpegtest: wrong pixel count")
	}
	flat := make([]C.int, 0, 5*len(script)+1)
	for _, s := range script {
		flat = append(flat, C.int(s.Comp), C.int(s.Ss), C.int(s.Se), C.int(s.Ah), C.int(s.Al))
	}
	if p == Script && len(script) == 0 {
		return nil, errors.New("jpegtest: empty scan script")
	}
	flat = append(flat, 0) // never an empty slice
	var out *C.uchar
	var n C.ulong
	rc := C.jtp_encode((*C.uchar)(unsafe.Pointer(&pix[0])), C.int(w), C.int(h), C.int(comps), C.int(quality),
		C.int(p), &flat[0], C.int(len(script)), &out, &n)
	if out != nil {
		defer C.free(unsafe.Pointer(out))
	}
	if rc != 0 {
		return nil, errors.New("jpegtest: libjpeg failed (invalid scan script?)")
	}
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

// ManyScans is the longest scan script libjpeg accepts for comps components:
// every coefficient of every component sent on its own, first its top bits
// (Al 10) and then one bit at a time, 11 scans per coefficient: 704 scans
// for grey, 2090 for RGB. Each scan is a pass over every block of its
// component, so decoding costs hundreds of times a baseline JPEG's work from
// a file only a few times larger.
func ManyScans(comps int) []Scan {
	const maxAl = 10 // libjpeg's MAX_AH_AL for 8-bit samples
	var s []Scan
	s = append(s, Scan{-1, 0, 0, 0, maxAl})
	for al := maxAl - 1; al >= 0; al-- {
		s = append(s, Scan{-1, 0, 0, al + 1, al})
	}
	for c := 0; c < comps; c++ {
		for k := 1; k < 64; k++ {
			s = append(s, Scan{c, k, k, 0, maxAl})
			for al := maxAl - 1; al >= 0; al-- {
				s = append(s, Scan{c, k, k, al + 1, al})
			}
		}
	}
	return s
}

// RepeatScan returns jpg with its scan number n (0-based) followed by
// copies of itself, as a hostile file would: libjpeg only warns about a
// scan that repeats coefficients already sent. A repeated first scan
// (Ah 0) stores the same values again, so the decoded pixels do not change.
func RepeatScan(jpg []byte, n, copies int) ([]byte, error) {
	start, end, err := scanBounds(jpg, n)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(jpg)+copies*(end-start))
	out = append(out, jpg[:end]...)
	for range copies {
		out = append(out, jpg[start:end]...)
	}
	return append(out, jpg[end:]...), nil
}

// scanBounds finds scan n: from its SOS marker to the end of its entropy
// coded data.
func scanBounds(b []byte, n int) (start, end int, err error) {
	s, err := scans(b, n+1)
	if err != nil {
		return 0, 0, err
	}
	if len(s) <= n {
		return 0, 0, errors.New("jpegtest: no such scan")
	}
	return s[n][0], s[n][1], nil
}

// scans lists the bounds of the first max scans of b (all with max < 0).
func scans(b []byte, max int) ([][2]int, error) {
	var out [][2]int
	i := 2
	for i+4 <= len(b) && (max < 0 || len(out) < max) {
		if b[i] != 0xFF {
			return nil, errors.New("jpegtest: marker expected")
		}
		m := b[i+1]
		seg := int(b[i+2])<<8 | int(b[i+3])
		if m == 0xD9 {
			break
		}
		if m != 0xDA {
			i += 2 + seg
			continue
		}
		s := i
		i += 2 + seg
		for i+1 < len(b) && (b[i] != 0xFF || b[i+1] == 0 || (b[i+1] >= 0xD0 && b[i+1] <= 0xD7)) {
			i++
		}
		out = append(out, [2]int{s, i})
	}
	return out, nil
}

// ScanCount is the number of scans (SOS markers) in jpg.
func ScanCount(jpg []byte) int {
	s, _ := scans(jpg, -1)
	return len(s)
}
