package imaging

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"io"

	"golang.org/x/image/webp"
)

// WebP as Pillow 9.4 opens it: Pillow decodes every WebP through libwebp's
// WebPAnimDecoder into non-premultiplied RGBA (mode "RGBA" when the file
// says it has alpha, else "RGBX", reported as "RGB"), and convert('RGB')
// drops the alpha. golang.org/x/image/webp decodes the bitstreams (VP8 is
// normative, so its Y, U and V planes are libwebp's to the bit; VP8L is
// lossless); the colour conversion below is libwebp's, not Go's:
//   - chroma is upsampled with libwebp's "fancy" upsampler (on by default);
//   - Y'CbCr is limited-range BT.601, in libwebp's 14-bit fixed point.
// For lossy with alpha (VP8X + ALPH) the alpha plane is decoded and checked
// (libwebp fails on a bad one too) but does not change the colours: in
// non-premultiplied RGBA the RGB is the one from YUV.

// decodeWebPConfig reads the size from the WebP header.
func decodeWebPConfig(b []byte) (w, h int, err error) {
	cfg, err := webp.DecodeConfig(bytes.NewReader(b))
	return cfg.Width, cfg.Height, err
}

// decodeWebP decodes the WebP b, read through r (which may stop early, e.g.
// when a context is done), into RGB as Pillow's convert('RGB') does and
// names the mode Pillow opens it as.
func decodeWebP(r io.Reader, b []byte) (*RGB, string, error) {
	m, err := webp.Decode(r)
	if err != nil {
		return nil, "", err
	}
	mode := "RGB"
	if webpHasAlpha(b) {
		mode = "RGBA"
	}
	switch m := m.(type) {
	case *image.YCbCr:
		img, err := webpYUVToRGB(m)
		return img, mode, err
	case *image.NYCbCrA:
		img, err := webpYUVToRGB(&m.YCbCr)
		return img, mode, err
	case *image.NRGBA: // VP8L: the ARGB as stored, alpha dropped
		w, h := m.Rect.Dx(), m.Rect.Dy()
		out := NewRGB(w, h)
		copyRGB(out.Pix, m.Pix[m.PixOffset(m.Rect.Min.X, m.Rect.Min.Y):], m.Stride, w, h, 4, 1)
		return out, mode, nil
	}
	return nil, "", fmt.Errorf("webp decoder returned a %T", m)
}

// webpHasAlpha is libwebp's WebPGetFeatures has_alpha, which picks Pillow's
// mode: a VP8L image's header bit, else the VP8X alpha flag.
func webpHasAlpha(b []byte) bool {
	alpha := false
	for i := 12; i+8 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[i+4:]))
		if n < 0 || n > len(b)-i-8 {
			n = len(b) - i - 8
		}
		data := b[i+8 : i+8+n]
		switch string(b[i : i+4]) {
		case "VP8X":
			alpha = len(data) > 0 && data[0]&0x10 != 0
		case "VP8L":
			// signature 0x2f, 14-bit width-1, 14-bit height-1, then the
			// alpha_is_used bit: bit 4 of the fifth byte.
			return len(data) >= 5 && data[4]&0x10 != 0
		case "VP8 ":
			return alpha
		}
		i += 8 + n + n&1
	}
	return alpha
}

// webpYUVToRGB converts VP8's 4:2:0 planes to RGB with libwebp's fancy
// upsampler and fixed-point BT.601 conversion (src/dsp/upsampling.c and
// src/dsp/yuv.h in libwebp).
//
// Rows: output row 0 takes its chroma from chroma row 0 alone; rows 2k-1 and
// 2k (k >= 1) lie between chroma rows k-1 and k, row 2k-1 nearer k-1 and row
// 2k nearer k; the last row of an even height has no chroma row below and
// uses its own alone. Columns pair up the same way.
func webpYUVToRGB(m *image.YCbCr) (*RGB, error) {
	if m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		return nil, fmt.Errorf("webp: %v chroma, want 4:2:0", m.SubsampleRatio)
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := (w+1)/2, (h+1)/2
	if w < 1 || h < 1 || m.Rect.Min != (image.Point{}) ||
		len(m.Y) < (h-1)*m.YStride+w || len(m.Cb) < (ch-1)*m.CStride+cw || len(m.Cr) < (ch-1)*m.CStride+cw {
		return nil, fmt.Errorf("webp: %v image with short planes", m.Rect)
	}
	out := NewRGB(w, h)
	u := make([]uint8, 2*w)
	v := u[w:]
	u = u[:w]
	for y := 0; y < h; y++ {
		near := y >> 1 // row 2k-1 is nearer k-1; row 2k nearer k
		far := near
		switch {
		case y == 0:
		case y&1 == 1:
			near, far = y>>1, y>>1+1
			if far >= ch {
				far = near
			}
		default:
			near, far = y>>1, y>>1-1
		}
		upsampleRow(u, m.Cb[near*m.CStride:near*m.CStride+cw], m.Cb[far*m.CStride:far*m.CStride+cw])
		upsampleRow(v, m.Cr[near*m.CStride:near*m.CStride+cw], m.Cr[far*m.CStride:far*m.CStride+cw])
		yuvRowToRGB(out.Pix[y*w*3:(y+1)*w*3], m.Y[y*m.YStride:y*m.YStride+w], u, v)
	}
	return out, nil
}

// upsampleRow fills dst (one chroma value per pixel) from the nearer chroma
// row n and the farther row f, as libwebp's fancy upsampler does. A pixel
// between its nearest sample a, the sample b beside a in the same row, c
// beside a in the other row and d diagonal to a is (9a+3b+3c+d+8)>>4.
// libwebp computes it as ((a+3b+3c+d+8)>>3 + a)>>1 (its "diag_12/diag_03"
// terms, shared by two pixels), which is the same integer: floor(floor(x)/2)
// = floor(x/2). The first pixel, and the last of an even width, has no
// sample beside it: (3a+c+2)>>2.
func upsampleRow(dst, n, f []uint8) {
	w := len(dst)
	dst[0] = uint8((3*int(n[0]) + int(f[0]) + 2) >> 2)
	for k := 1; k <= (w-1)>>1; k++ { // pixels 2k-1 and 2k
		tl, t := int(n[k-1]), int(n[k]) // near row: left, right sample
		l, r := int(f[k-1]), int(f[k])  // far row
		dst[2*k-1] = uint8((9*tl + 3*t + 3*l + r + 8) >> 4)
		dst[2*k] = uint8((9*t + 3*tl + 3*r + l + 8) >> 4)
	}
	if w&1 == 0 {
		k := w/2 - 1
		dst[w-1] = uint8((3*int(n[k]) + int(f[k]) + 2) >> 2)
	}
}

// yuvRowToRGB converts one row with libwebp's VP8YUVToR/G/B: the products
// are _mm_mulhi_epu16 emulations (v*c)>>8 of 14-bit coefficients, and the
// sum is descaled by 6 bits and clipped.
func yuvRowToRGB(dst, ys, us, vs []uint8) {
	dst = dst[:3*len(ys)]
	us, vs = us[:len(ys)], vs[:len(ys)]
	for x, yy := range ys {
		y := int(yy) * 19077 >> 8
		u, v := int(us[x]), int(vs[x])
		dst[3*x] = clipYUV(y + v*26149>>8 - 14234)
		dst[3*x+1] = clipYUV(y - u*6419>>8 - v*13320>>8 + 8708)
		dst[3*x+2] = clipYUV(y + u*33050>>8 - 17685)
	}
}

// clipYUV is libwebp's VP8Clip8: v in 8.6 fixed point to 0..255.
func clipYUV(v int) uint8 {
	if v&^(256<<6-1) == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}
