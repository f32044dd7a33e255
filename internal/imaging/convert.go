package imaging

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
)

// toRGB converts a decoded image to RGB the way Pillow's convert('RGB')
// treats the same file, and names the Pillow mode the file would open as.
//   - alpha is dropped, not composited (RGBA → RGB keeps the stored colour);
//   - 16-bit RGB(A) keeps the high byte (Pillow's "RGB;16B" unpacker);
//   - 16-bit grey opens as mode "I" and convert('RGB') clips it to 0..255;
//   - a palette image takes its palette's colours, transparency ignored.
//
// m is consumed: 4- and 8-byte pixels (RGBA, NRGBA, RGBA64, NRGBA64) are
// packed into RGB in their own buffer, so decoding a truecolour PNG holds
// 4 (or 8) bytes a pixel at its peak instead of 7 (or 11).
func toRGB(m image.Image) (*RGB, string) {
	switch m := m.(type) {
	case *image.RGBA:
		if out := packRGB(m.Pix, m.Stride, m.Rect, 4, 1); out != nil {
			return out, "RGB"
		}
	case *image.NRGBA:
		if out := packRGB(m.Pix, m.Stride, m.Rect, 4, 1); out != nil {
			return out, "RGBA"
		}
	case *image.RGBA64:
		if out := packRGB(m.Pix, m.Stride, m.Rect, 8, 2); out != nil {
			return out, "RGB"
		}
	case *image.NRGBA64:
		if out := packRGB(m.Pix, m.Stride, m.Rect, 8, 2); out != nil {
			return out, "RGBA"
		}
	}
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := NewRGB(w, h)
	p := out.Pix
	switch m := m.(type) {
	case *image.RGBA:
		copyRGB(p, m.Pix, m.Stride, w, h, 4, 1)
		return out, "RGB"
	case *image.NRGBA:
		copyRGB(p, m.Pix, m.Stride, w, h, 4, 1)
		return out, "RGBA"
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := p[y*w*3 : (y+1)*w*3]
			for x, v := range row {
				o[3*x], o[3*x+1], o[3*x+2] = v, v, v
			}
		}
		return out, "L"
	case *image.Gray16:
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w*2]
			o := p[y*w*3 : (y+1)*w*3]
			for x := 0; x < w; x++ {
				v := int(row[2*x])<<8 | int(row[2*x+1])
				c := uint8(min(v, 255))
				o[3*x], o[3*x+1], o[3*x+2] = c, c, c
			}
		}
		return out, "I"
	case *image.RGBA64:
		copyRGB(p, m.Pix, m.Stride, w, h, 8, 2) // the high byte of each 16-bit sample
		return out, "RGB"
	case *image.NRGBA64:
		copyRGB(p, m.Pix, m.Stride, w, h, 8, 2)
		return out, "RGBA"
	case *image.Paletted:
		lut := paletteRGB(m.Palette)
		for y := 0; y < h; y++ {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			o := p[y*w*3 : (y+1)*w*3]
			for x, idx := range row {
				c := lut[idx]
				o[3*x], o[3*x+1], o[3*x+2] = c[0], c[1], c[2]
			}
		}
		return out, "P"
	}
	// Anything else: go through the colour model, un-premultiplied.
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			p[i], p[i+1], p[i+2] = c.R, c.G, c.B
			i += 3
		}
	}
	return out, "RGB"
}

// packRGB turns pixels of bpp bytes (samples step bytes apart, the high
// byte first) into RGB in place, front to back (each pixel's RGB lands at or
// before where the pixel was read), when the rows are contiguous; nil
// otherwise.
func packRGB(pix []uint8, stride int, r image.Rectangle, bpp, step int) *RGB {
	w, h := r.Dx(), r.Dy()
	if r.Min != (image.Point{}) || stride != w*bpp || len(pix) < w*h*bpp {
		return nil
	}
	n := w * h
	for i, o := 0, 0; i < n*bpp; i, o = i+bpp, o+3 {
		pix[o], pix[o+1], pix[o+2] = pix[i], pix[i+step], pix[i+2*step]
	}
	return &RGB{W: w, H: h, Pix: pix[: 3*n : 3*n]}
}

// copyRGB copies the first three samples of each pixel of src (rows of
// stride bytes, bpp bytes a pixel, samples step bytes apart) into dst.
func copyRGB(dst, src []uint8, stride, w, h, bpp, step int) {
	for y := 0; y < h; y++ {
		row := src[y*stride : y*stride+w*bpp]
		o := dst[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			i := x * bpp
			o[3*x], o[3*x+1], o[3*x+2] = row[i], row[i+step], row[i+2*step]
		}
	}
}

// paletteRGB returns the stored colours of a palette (never premultiplied);
// indices past its end are black, as in Pillow.
func paletteRGB(pal color.Palette) *[256][3]uint8 {
	var lut [256][3]uint8
	for i, c := range pal {
		if i >= 256 {
			break
		}
		var n color.NRGBA
		switch c := c.(type) {
		case color.NRGBA:
			n = c
		case color.RGBA:
			if c.A == 0xff {
				n = color.NRGBA{c.R, c.G, c.B, c.A}
			} else {
				n = color.NRGBAModel.Convert(c).(color.NRGBA)
			}
		default:
			n = color.NRGBAModel.Convert(c).(color.NRGBA)
		}
		lut[i] = [3]uint8{n.R, n.G, n.B}
	}
	return &lut
}

// cmykToRGB is Pillow's path for a CMYK JPEG: libjpeg's samples are read as
// inverted ("CMYK;I", Adobe's convention, which Pillow assumes), then
// convert('RGB') computes (255-K) - C*(255-K)/255 per channel.
func cmykToRGB(pix []uint8, w, h int, inverted bool) *RGB {
	return cmykToRGBInPlace(append([]uint8(nil), pix...), w, h, inverted)
}

// cmykToRGBInPlace is cmykToRGB writing the RGB over the CMYK samples (each
// pixel's 3 bytes land before its 4 are read again).
func cmykToRGBInPlace(pix []uint8, w, h int, inverted bool) *RGB {
	n := w * h
	o := pix
	for i, j := 0, 0; i+3 < 4*n; i, j = i+4, j+3 {
		c, m, y, k := int(pix[i]), int(pix[i+1]), int(pix[i+2]), int(pix[i+3])
		if inverted {
			c, m, y, k = 255-c, 255-m, 255-y, 255-k
		}
		nk := 255 - k
		o[j] = clampU8(nk - mulDiv255(c, nk))
		o[j+1] = clampU8(nk - mulDiv255(m, nk))
		o[j+2] = clampU8(nk - mulDiv255(y, nk))
	}
	return &RGB{W: w, H: h, Pix: pix[: 3*n : 3*n]}
}

// mulDiv255 is Pillow's rounded a*b/255.
func mulDiv255(a, b int) int {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

func clampU8(v int) uint8 {
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v)
}

// decodeGIF decodes the first frame as Pillow 9.4 does: the canvas is the
// logical screen, filled with the transparent index (else index 0), the
// frame drawn into it, and every index looked up in the frame's palette with
// its stored colours. image/gif blanks the transparent entry of the palette,
// so the stored colour is read back from the file.
func decodeGIF(ctx context.Context, b []byte) (*RGB, string, error) {
	cfg, err := gif.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, "", err
	}
	m, err := gif.Decode(newCtxReader(ctx, b))
	if err != nil {
		return nil, "", err
	}
	pm, ok := m.(*image.Paletted)
	if !ok {
		return nil, "", errors.New("gif: first frame is not paletted")
	}
	pal := append(color.Palette(nil), pm.Palette...)
	fill := uint8(0)
	if info, err := scanGIF(b); err == nil && info.hasTransparent {
		fill = info.transparent
		orig := info.global
		if info.local != nil {
			orig = info.local
		}
		if t := int(info.transparent); t < len(pal) && 3*t+2 < len(orig) {
			pal[t] = color.NRGBA{orig[3*t], orig[3*t+1], orig[3*t+2], 0xff}
		}
	}
	lut := paletteRGB(pal)
	out := NewRGB(cfg.Width, cfg.Height)
	fc := lut[fill]
	for i := 0; i < len(out.Pix); i += 3 {
		out.Pix[i], out.Pix[i+1], out.Pix[i+2] = fc[0], fc[1], fc[2]
	}
	r := pm.Rect.Intersect(image.Rect(0, 0, cfg.Width, cfg.Height))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := lut[pm.Pix[pm.PixOffset(x, y)]]
			o := (y*cfg.Width + x) * 3
			out.Pix[o], out.Pix[o+1], out.Pix[o+2] = c[0], c[1], c[2]
		}
	}
	return out, "P", nil
}

type gifInfo struct {
	global, local  []uint8
	transparent    uint8
	hasTransparent bool
}

// scanGIF reads the colour tables and the first frame's transparent index.
func scanGIF(b []byte) (gifInfo, error) {
	var g gifInfo
	bad := errors.New("gif: truncated")
	if len(b) < 13 {
		return g, bad
	}
	i := 13
	if b[10]&0x80 != 0 {
		n := 3 << ((b[10] & 7) + 1)
		if i+n > len(b) {
			return g, bad
		}
		g.global = b[i : i+n]
		i += n
	}
	for i < len(b) {
		switch b[i] {
		case 0x21: // extension
			if i+2 > len(b) {
				return g, bad
			}
			label := b[i+1]
			i += 2
			if label == 0xF9 && i+5 <= len(b) && b[i] == 4 {
				g.hasTransparent = b[i+1]&1 != 0
				g.transparent = b[i+4]
			}
			for i < len(b) && b[i] != 0 { // sub-blocks
				i += int(b[i]) + 1
			}
			i++
		case 0x2C: // image descriptor
			if i+10 > len(b) {
				return g, bad
			}
			packed := b[i+9]
			i += 10
			if packed&0x80 != 0 {
				n := 3 << ((packed & 7) + 1)
				if i+n > len(b) {
					return g, bad
				}
				g.local = b[i : i+n]
			}
			return g, nil
		default:
			return g, errors.New("gif: unexpected block")
		}
	}
	return g, bad
}
