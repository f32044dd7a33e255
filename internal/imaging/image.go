// Package imaging turns image bytes into the pixels a model sees, the way
// Pillow and torchvision do it: format sniffed from the bytes, a pixel-limit
// guard read from the header, EXIF orientation, Pillow's convert('RGB'), and
// Pillow's resampling filters (separable convolution whose support grows with
// the downscale factor, fixed-point like Pillow's 8-bit path).
package imaging

import (
	"image"
	"image/color"
	"path/filepath"
	"strings"
)

// imageExts are the file extensions of the formats Decode reads.
var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".bmp": true, ".webp": true}

// HasImageExt reports whether a file name looks like an image by its
// extension: for picking files out of a folder. The format itself is always
// read from the bytes (Sniff).
func HasImageExt(name string) bool { return imageExts[strings.ToLower(filepath.Ext(name))] }

// RGB is an 8-bit RGB image: rows top to bottom, pixels interleaved R, G, B,
// no padding (len(Pix) == W*H*3). It is the one pixel format the transforms
// work on; Pillow's mode "RGB".
type RGB struct {
	W, H int
	Pix  []uint8
}

// NewRGB allocates a black w x h image.
func NewRGB(w, h int) *RGB { return &RGB{W: w, H: h, Pix: make([]uint8, w*h*3)} }

// ColorModel, Bounds and At make *RGB an image.Image, for encoding.
func (m *RGB) ColorModel() color.Model { return color.RGBAModel }
func (m *RGB) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }
func (m *RGB) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return color.RGBA{}
	}
	i := (y*m.W + x) * 3
	return color.RGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], 0xff}
}

// Gray is an 8-bit single-channel image, Pillow's mode "L".
type Gray struct {
	W, H int
	Pix  []uint8
}

// NewGray allocates a black w x h image.
func NewGray(w, h int) *Gray { return &Gray{W: w, H: h, Pix: make([]uint8, w*h)} }

func (m *Gray) ColorModel() color.Model { return color.GrayModel }
func (m *Gray) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }
func (m *Gray) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return color.Gray{}
	}
	return color.Gray{m.Pix[y*m.W+x]}
}
