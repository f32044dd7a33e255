package imaging

import (
	"bytes"
	"encoding/binary"
	"math"
)

// readOrientation returns the EXIF orientation (1-8) stored in a JPEG's APP1
// segment, a PNG's eXIf chunk or a WebP's EXIF chunk; 1 when there is none or
// it cannot be read (a broken EXIF block never fails the decode, as in Pillow).
func readOrientation(b []byte, format string) int {
	var tiff []byte
	switch format {
	case FormatJPEG:
		tiff = jpegEXIF(b)
	case FormatPNG:
		tiff = pngEXIF(b)
	case FormatWebP:
		tiff = webpEXIF(b)
	}
	if o := tiffOrientation(tiff); o >= 1 && o <= 8 {
		return o
	}
	return 1
}

func jpegEXIF(b []byte) []byte {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return nil
		}
		m := b[i+1]
		if m == 0xFF { // fill byte
			i++
			continue
		}
		if m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01 {
			i += 2
			continue
		}
		if m == 0xDA || m == 0xD9 { // scan data: no more metadata segments
			return nil
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if n < 2 || i+2+n > len(b) {
			return nil
		}
		seg := b[i+4 : i+2+n]
		// Pillow takes the first APP1 that starts "Exif\0" and strips
		// "Exif\0\0"; with another sixth byte the block is unreadable.
		if m == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00")) {
			if len(seg) < 6 || seg[5] != 0 {
				return nil
			}
			return seg[6:]
		}
		i += 2 + n
	}
	return nil
}

// pngEXIF returns the eXIf chunk's data as Pillow 9.4's
// exif_transpose(Image.open(f)) sees it: the chunk is the TIFF block itself
// (one that starts "Exif\0\0" is unreadable to Pillow); the last eXIf
// before IDAT counts, and without one the last after IDAT (read when
// exif_transpose loads the image).
func pngEXIF(b []byte) []byte {
	var before, after []byte
	seenIDAT := false
	i := 8
	for i+12 <= len(b) {
		n := int(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if n < 0 || i+12+n > len(b) || typ == "IEND" {
			break
		}
		switch {
		case typ == "IDAT":
			seenIDAT = true
		case typ == "eXIf" && seenIDAT:
			after = b[i+8 : i+8+n]
		case typ == "eXIf":
			before = b[i+8 : i+8+n]
		}
		i += 12 + n
	}
	if before != nil {
		return before
	}
	return after
}

func webpEXIF(b []byte) []byte {
	i := 12
	for i+8 <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[i+4:]))
		if n < 0 || i+8+n > len(b) {
			return nil
		}
		if string(b[i:i+4]) == "EXIF" {
			return bytes.TrimPrefix(b[i+8:i+8+n], []byte("Exif\x00\x00"))
		}
		i += 8 + n + n&1
	}
	return nil
}

// tiffOrientation returns the orientation exif_transpose acts on in a
// TIFF-structured EXIF block, reading IFD0 as Pillow 9.4's
// ImageFileDirectory_v2 does, so that a malformed entry rotates an image
// exactly when Pillow would (0: none, or a value that is no orientation):
//   - either byte order, also with the 42 in the other order; little-endian
//     BigTIFF (which Pillow 9.4 fails to read from EXIF) and anything else is
//     no EXIF, but big-endian BigTIFF's magic reads as classic TIFF (Pillow
//     looks for the 43 in the wrong byte);
//   - entries of an unknown type or with no data (count 0) are skipped; an
//     entry whose data lies past the end ends the directory (entries before
//     it are kept), as does a truncated entry;
//   - a tag that occurs twice takes its last value;
//   - of several values the first counts (Pillow warns and takes it);
//   - a BYTE, ASCII or UNDEFINED value is never an orientation; a signed,
//     LONG8, RATIONAL or floating value is one when it equals 1..8 exactly
//     (Pillow compares 6.0 and 12/2 equal to 6).
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "MM\x00*", "MM*\x00", "MM\x00+": // Pillow 9.4 reads the last (BigTIFF's) as classic
		bo = binary.BigEndian
	case "II*\x00", "II\x00*":
		bo = binary.LittleEndian
	default:
		return 0
	}
	size := uint64(len(t))
	off := uint64(bo.Uint32(t[4:]))
	if off+2 > size {
		return 0
	}
	var typ uint16
	var data []byte
	n := int(bo.Uint16(t[off:]))
	for k := 0; k < n; k++ {
		e := off + 2 + 12*uint64(k)
		if e+12 > size {
			break
		}
		unit := tiffUnitSize(bo.Uint16(t[e+2:]))
		if unit == 0 {
			continue
		}
		vsize := uint64(bo.Uint32(t[e+4:])) * unit
		v := t[e+8 : e+12]
		if vsize > 4 {
			at := uint64(bo.Uint32(v))
			if at+vsize > size {
				break
			}
			v = t[at : at+vsize]
		} else {
			v = v[:vsize]
		}
		if len(v) == 0 || bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		typ, data = bo.Uint16(t[e+2:]), v
	}
	if data == nil {
		return 0
	}
	o, ok := tiffFirstInt(bo, typ, data)
	if !ok || o < 1 || o > 8 {
		return 0
	}
	return int(o)
}

// tiffUnitSize is the size of one value of a TIFF type Pillow 9.4 reads, 0
// for the types it skips.
func tiffUnitSize(typ uint16) uint64 {
	switch typ {
	case 1, 2, 6, 7: // BYTE, ASCII, SBYTE, UNDEFINED
		return 1
	case 3, 8: // SHORT, SSHORT
		return 2
	case 4, 9, 11, 13: // LONG, SLONG, FLOAT, IFD
		return 4
	case 5, 10, 12, 16: // RATIONAL, SRATIONAL, DOUBLE, LONG8
		return 8
	}
	return 0
}

// tiffFirstInt is the first value of data as a whole number, if it is a
// number equal to one (ok false for BYTE, ASCII, UNDEFINED, a fraction, a
// zero denominator, NaN).
func tiffFirstInt(bo binary.ByteOrder, typ uint16, d []byte) (int64, bool) {
	switch typ {
	case 3:
		return int64(bo.Uint16(d)), true
	case 4, 13:
		return int64(bo.Uint32(d)), true
	case 16:
		v := bo.Uint64(d)
		return int64(min(v, 1<<62)), true
	case 6:
		return int64(int8(d[0])), true
	case 8:
		return int64(int16(bo.Uint16(d))), true
	case 9:
		return int64(int32(bo.Uint32(d))), true
	case 5, 10:
		num, den := int64(bo.Uint32(d)), int64(bo.Uint32(d[4:]))
		if typ == 10 {
			num, den = int64(int32(num)), int64(int32(den))
		}
		if den == 0 || num%den != 0 {
			return 0, false
		}
		return num / den, true
	case 11, 12:
		f := float64(math.Float32frombits(bo.Uint32(d)))
		if typ == 12 {
			f = math.Float64frombits(bo.Uint64(d))
		}
		if f != math.Trunc(f) || f < -1e9 || f > 1e9 { // also NaN, ±Inf
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

// Orient returns img displayed upright for an EXIF orientation, as Pillow's
// ImageOps.exif_transpose does (2 mirror, 3 rotate 180, 4 flip, 5 transpose,
// 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° anticlockwise). Other
// values return img itself.
func Orient(img *RGB, orientation int) *RGB {
	if orientation < 2 || orientation > 8 {
		return img
	}
	w, h := img.W, img.H
	ow, oh := w, h
	if orientation >= 5 {
		ow, oh = h, w
	}
	out := NewRGB(ow, oh)
	// src maps an output pixel to the input pixel it shows.
	var src func(x, y int) (int, int)
	switch orientation {
	case 2:
		src = func(x, y int) (int, int) { return w - 1 - x, y }
	case 3:
		src = func(x, y int) (int, int) { return w - 1 - x, h - 1 - y }
	case 4:
		src = func(x, y int) (int, int) { return x, h - 1 - y }
	case 5:
		src = func(x, y int) (int, int) { return y, x }
	case 6:
		src = func(x, y int) (int, int) { return y, h - 1 - x }
	case 7:
		src = func(x, y int) (int, int) { return w - 1 - y, h - 1 - x }
	case 8:
		src = func(x, y int) (int, int) { return w - 1 - y, x }
	}
	o := 0
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			sx, sy := src(x, y)
			i := (sy*w + sx) * 3
			out.Pix[o], out.Pix[o+1], out.Pix[o+2] = img.Pix[i], img.Pix[i+1], img.Pix[i+2]
			o += 3
		}
	}
	return out
}
