package imaging

import (
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"path/filepath"
	"strings"
)

// OutputFormat picks the encoding for a file name's extension: "png" or
// "jpeg". Other extensions are refused, naming the ones that work.
func OutputFormat(name string) (string, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png":
		return FormatPNG, nil
	case ".jpg", ".jpeg":
		return FormatJPEG, nil
	}
	return "", fmt.Errorf("cannot write %q: the output format comes from the extension, use .png, .jpg or .jpeg", name)
}

// Encode writes img as PNG or JPEG (quality 1-100; 0 means 95).
func Encode(w io.Writer, img *RGB, format string, quality int) error {
	m := img.toRGBA()
	switch format {
	case FormatPNG:
		return png.Encode(w, m)
	case FormatJPEG:
		if quality <= 0 {
			quality = 95
		}
		return jpeg.Encode(w, m, &jpeg.Options{Quality: min(quality, 100)})
	}
	return fmt.Errorf("cannot encode %q (use png or jpeg)", format)
}

// toRGBA copies into the type the standard encoders have fast paths for.
func (m *RGB) toRGBA() *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 0xff
	}
	return out
}
