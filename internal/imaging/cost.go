package imaging

import "encoding/binary"

// What decoding holds at its peak, per format, counted from the headers
// (w×h pixels; TestDecodeCost checks each against a measured decode):
//
//   - JPEG: libjpeg's output (w*h*3 bytes, or w*h*4 for CMYK), which is the
//     RGB result (CMYK is converted in place); a multi-scan file
//     (progressive, or a first scan without every component) also holds
//     the whole image's DCT coefficients, 128 bytes per 8x8 block of each
//     component after subsampling, the block rows and columns rounded up to
//     the sampling factors (libjpeg's jdcoefct.c); then libjpeg's row
//     buffers (about 40 bytes per column per component) and a fixed
//     overhead. The C memory is invisible to the Go runtime: the test
//     reads glibc's heap from libjpeg's progress monitor.
//   - PNG: the image Go's decoder allocates for the colour type and bit
//     depth (Gray 1 byte a pixel, Gray16 2, RGBA and NRGBA 4, RGBA64 and
//     NRGBA64 8, a tRNS chunk turning grey and truecolour into NRGBA(64),
//     Paletted 1), twice for an interlaced file (the passes, then the
//     image), plus the RGB result unless the image had 4 or 8 bytes a pixel
//     (packed into RGB in place), plus inflate's tables (a sixth of the
//     file's size at most).
//   - GIF: the first frame's indices (1 byte a pixel) plus the RGB result.
//   - BMP: Paletted (1 byte a pixel, up to 8 bits) plus RGB, or RGBA (4,
//     packed in place).
//   - WebP: YCbCr 4:2:0 (1.5 bytes a pixel), alpha (1 byte, for VP8L or an
//     ALPH chunk) and the RGB result.
//
// Applying an EXIF orientation other than 1 copies the RGB image once more.

// Fixed overheads, measured (TestDecodeCost): libjpeg's pools and tables,
// the Go decoders' zlib window and buffers.
const (
	jpegFixedCost = 96 << 10
	goFixedCost   = 96 << 10
)

func decodeCost(b []byte) (int64, error) {
	format, w, h, err := DecodeConfig(b)
	if err != nil {
		return 0, err
	}
	px := int64(w) * int64(h)
	rgb := 3 * px
	var c int64
	switch format {
	case FormatJPEG:
		hdr, err := readJPEGHeader(b)
		if err != nil {
			return 0, err // not reached: DecodeConfig read it
		}
		c = jpegCost(b, hdr)
	case FormatPNG:
		// inflate allocates Huffman tables per deflate block: about an
		// eighth of the compressed size in all (measured; short-lived, but
		// allocated while the image is being decoded).
		img, packed := pngImageCost(b, px)
		c = img + 16*int64(w) + int64(len(b))/6 + goFixedCost
		if !packed {
			c += rgb
		}
	case FormatGIF:
		c = px + goFixedCost + rgb
	case FormatBMP:
		bpp := 24
		if len(b) >= 30 && binary.LittleEndian.Uint32(b[14:]) >= 40 {
			bpp = int(binary.LittleEndian.Uint16(b[28:]))
		} else if len(b) >= 26 {
			bpp = int(binary.LittleEndian.Uint16(b[24:])) // OS/2 core header
		}
		c = 4*px + 4*int64(w) + goFixedCost // RGBA, packed in place
		if bpp <= 8 {
			c = px + 4*int64(w) + goFixedCost + rgb // Paletted
		}
	case FormatWebP:
		c = 3*px/2 + goFixedCost + rgb
		if webpAlphaPlane(b) {
			c += px
		}
	}
	if o := readOrientation(b, format); o >= 2 && o <= 8 {
		c += rgb
	}
	return c, nil
}

// jpegCost is libjpeg's output and buffers for a JPEG frame; see above.
func jpegCost(b []byte, hdr jpegHeader) int64 {
	px := int64(hdr.w) * int64(hdr.h)
	c := 3*px + jpegFixedCost
	if hdr.comps == 4 {
		c = 4*px + jpegFixedCost
	}
	// Sampling factors; 1x1 for a frame header too short for its components.
	n := max(hdr.comps, len(hdr.compSpecs)/3)
	hs, vs := make([]int, n), make([]int, n)
	hmax, vmax := 1, 1
	for i := range hs {
		hs[i], vs[i] = 1, 1
		if 3*i+1 < len(hdr.compSpecs) {
			f := hdr.compSpecs[3*i+1]
			hs[i], vs[i] = max(int(f>>4), 1), max(int(f&15), 1)
		}
		hmax, vmax = max(hmax, hs[i]), max(vmax, vs[i])
	}
	c += 40 * int64(hdr.w) * int64(len(hs)) // row buffers
	if !hdr.progressive && firstScanComponents(b, hdr.end) == hdr.comps {
		return c
	}
	for i := range hs {
		bw := ceilDiv(int64(hdr.w)*int64(hs[i]), int64(hmax)*8)
		bh := ceilDiv(int64(hdr.h)*int64(vs[i]), int64(vmax)*8)
		c += 128 * roundUp(bw, int64(hs[i])) * roundUp(bh, int64(vs[i]))
	}
	return c
}

// firstScanComponents is the component count of the first SOS after the
// frame header at i, 0 if there is none.
func firstScanComponents(b []byte, i int) int {
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 0
		}
		m := b[i+1]
		switch {
		case m == 0xFF:
			i++
			continue
		case m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01:
			i += 2
			continue
		case m == 0xD9:
			return 0
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if m == 0xDA {
			if n < 3 || i+5 > len(b) {
				return 0
			}
			return int(b[i+4])
		}
		if n < 2 {
			return 0
		}
		i += 2 + n
	}
	return 0
}

// pngImageCost is the size of the image Go's PNG decoder allocates, and
// whether toRGB packs it into RGB in place (4 or 8 bytes a pixel).
func pngImageCost(b []byte, px int64) (cost int64, packed bool) {
	if len(b) < 29 {
		return 8 * px, false
	}
	depth, ct, interlaced := b[24], b[25], b[28] == 1
	trns := false
	for i := 8; i+8 <= len(b); {
		n := int64(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if typ == "IDAT" || typ == "IEND" {
			break
		}
		if typ == "tRNS" {
			trns = true
		}
		if int64(i)+12+n > int64(len(b)) {
			break
		}
		i += 12 + int(n)
	}
	var bpp int64
	switch ct {
	case 0: // grey
		switch {
		case depth == 16 && trns:
			bpp = 8
		case depth == 16:
			bpp = 2
		case trns:
			bpp = 4
		default:
			bpp = 1
		}
	case 3: // palette
		bpp = 1
	case 2, 4, 6: // truecolour, grey+alpha, truecolour+alpha
		bpp = 4
		if depth == 16 {
			bpp = 8
		}
	default:
		bpp = 8
	}
	packed = bpp >= 4
	if interlaced {
		bpp *= 2
	}
	return bpp * px, packed
}

// webpAlphaPlane reports whether a WebP's decoder needs an alpha plane: a
// VP8L (lossless) bitstream or an ALPH chunk among the RIFF chunks.
func webpAlphaPlane(b []byte) bool {
	for i := 12; i+8 <= len(b); {
		switch string(b[i : i+4]) {
		case "VP8L", "ALPH":
			return true
		}
		n := int64(binary.LittleEndian.Uint32(b[i+4:]))
		next := int64(i) + 8 + n + n&1
		if next > int64(len(b)) {
			break
		}
		i = int(next)
	}
	return false
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

func roundUp(a, m int64) int64 { return ceilDiv(a, m) * m }
