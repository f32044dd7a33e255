package imaging

import (
	"errors"
	"fmt"
	"image"
	"math"

	"petbreed"
)

// Grayscale converts src like Pillow's convert('L') (ITU-R 601-2 luma,
// Convert.c rgb2l): L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
func Grayscale(src *RGB) *Gray {
	if !validRGB(src) {
		return &Gray{}
	}
	dst := NewGray(src.W, src.H)
	lr, lg, lb := &lumaTables[0], &lumaTables[1], &lumaTables[2]
	p := src.Pix[:len(dst.Pix)*3]
	for i := range dst.Pix {
		q := p[i*3 : i*3+3 : i*3+3]
		dst.Pix[i] = uint8((lr[q[0]] + lg[q[1]] + lb[q[2]]) >> 16)
	}
	return dst
}

// lumaTables holds v*19595 + 0x8000, v*38470 and v*7471: the products of
// Pillow's L24, looked up rather than multiplied.
var lumaTables = func() (t [3][256]uint32) {
	for v := range uint32(256) {
		t[0][v] = v*19595 + 0x8000
		t[1][v] = v * 38470
		t[2][v] = v * 7471
	}
	return t
}()

// ToRGB replicates the gray channel, like Pillow's convert('RGB') from "L".
func (g *Gray) ToRGB() *RGB {
	if !validGray(g) {
		return &RGB{}
	}
	dst := NewRGB(g.W, g.H)
	d := dst.Pix
	for i, v := range g.Pix[:g.W*g.H] {
		o := d[i*3 : i*3+3 : i*3+3]
		o[0], o[1], o[2] = v, v, v
	}
	return dst
}

// CenterCropBox is torchvision's CenterCrop(size) of a w x h image, as a
// rectangle in the image's coordinates: top = int(round((h - size) / 2.0)),
// left likewise, with Python's round (half to even). When the image is
// smaller than size along a dimension, torchvision first pads it with zeros
// ((size-dim)//2 before, the rest after), so the box starts at
// -((size-dim)//2) there; Crop fills the part outside the image with black.
func CenterCropBox(w, h, size int) image.Rectangle {
	left := centerOffset(w, size)
	top := centerOffset(h, size)
	return image.Rect(left, top, left+size, top+size)
}

func centerOffset(dim, size int) int {
	if size > dim {
		return -((size - dim) / 2)
	}
	return int(math.RoundToEven(float64(dim-size) / 2.0))
}

// ShortSideSize is the output size of torchvision's Resize(short) (an int)
// on a w x h image: the short side becomes short and the long side
// int(short * long / short_side) (truncated, computed in float64 like
// Python). If the result equals (w, h), torchvision returns the image
// unchanged; Apply does the same (and so does Resize, which copies).
// Preconditions: w, h, short >= 1.
func ShortSideSize(w, h, short int) (int, int) {
	if w <= 0 || h <= 0 {
		return 0, 0
	}
	if w <= h {
		return short, int(float64(short*h) / float64(w))
	}
	return int(float64(short*w) / float64(h)), short
}

// Apply returns the image the model sees before normalisation, as the
// torchvision pipeline described by p would produce it from a PIL image:
//   - crop: Resize(p.Resize) then CenterCrop(p.Size), only the crop computed;
//   - squash: Resize((p.Size, p.Size)).
//
// With p.Grayscale the image is converted to "L" first, resized in gray and
// replicated to three channels at the end.
func Apply(src *RGB, p petbreed.Preprocess) (*RGB, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	f, err := ParseFilter(p.Filter)
	if err != nil {
		return nil, err
	}
	if src == nil || src.W < 1 || src.H < 1 {
		return nil, errors.New("imaging: empty image")
	}
	if len(src.Pix) != src.W*src.H*3 {
		return nil, fmt.Errorf("imaging: %dx%d RGB image has %d bytes, want %d", src.W, src.H, len(src.Pix), src.W*src.H*3)
	}
	var w, h int
	var box image.Rectangle
	switch p.Mode {
	case petbreed.ModeCrop:
		w, h = ShortSideSize(src.W, src.H, p.Resize)
		box = CenterCropBox(w, h, p.Size)
	default: // petbreed.ModeSquash, Validate rejects the rest
		w, h = p.Size, p.Size
		box = image.Rect(0, 0, w, h)
	}
	if w < 1 || h < 1 {
		return nil, fmt.Errorf("imaging: cannot resize a %dx%d image to %dx%d", src.W, src.H, w, h)
	}
	if p.Grayscale {
		return ResizeCropGray(Grayscale(src), w, h, f, box).ToRGB(), nil
	}
	return ResizeCrop(src, w, h, f, box), nil
}

// Normalizer maps 8-bit RGB pixels to a normalised CHW float32 tensor,
// bit-identical to torchvision's ToTensor (v / 255 in float32) followed by
// Normalize(mean, std) ((x - mean) / std in float32). The zero value is not
// usable; build one with NewNormalizer. It is safe for concurrent use.
type Normalizer struct {
	lut [3][256]float32
}

// NewNormalizer precomputes the 3 x 256 possible output values.
func NewNormalizer(mean, std [3]float32) *Normalizer {
	n := new(Normalizer)
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			n.lut[c][v] = normValue(uint8(v), mean[c], std[c])
		}
	}
	return n
}

// normValue is the reference formula, each float32 operation rounded.
func normValue(v uint8, mean, std float32) float32 {
	x := float32(float32(v) / 255)
	x = float32(x - mean)
	return float32(x / std)
}

// Normalize writes src as CHW float32 into dst, which must hold exactly
// 3*W*H values (dst[c*W*H + y*W + x]).
func (n *Normalizer) Normalize(src *RGB, dst []float32) error {
	if src == nil || src.W < 1 || src.H < 1 || len(src.Pix) != src.W*src.H*3 {
		return errors.New("imaging: normalize: malformed image")
	}
	np := src.W * src.H
	if len(dst) != 3*np {
		return fmt.Errorf("imaging: normalize: dst has %d values, want 3*%d*%d = %d", len(dst), src.W, src.H, 3*np)
	}
	d0 := dst[:np]
	d1 := dst[np : 2*np]
	d2 := dst[2*np : 3*np]
	l0, l1, l2 := &n.lut[0], &n.lut[1], &n.lut[2]
	p := src.Pix[:3*np]
	for i := range d0 {
		q := p[i*3 : i*3+3 : i*3+3]
		d0[i] = l0[q[0]]
		d1[i] = l1[q[1]]
		d2[i] = l2[q[2]]
	}
	return nil
}

// Normalize is NewNormalizer(mean, std).Normalize(src, dst).
func Normalize(src *RGB, mean, std [3]float32, dst []float32) error {
	return NewNormalizer(mean, std).Normalize(src, dst)
}
