// Package hostile makes the bodies of issue 8's attacks on the model
// server (docs/security.md), so that serve's tests, which check what each
// one is answered, and the driver that measures the server's memory under
// them (internal/serve/testdata/hostile) send the same thing.
package hostile

import (
	"bytes"
	"image"
	"image/png"
)

// V2Numbers is a KServe V2 infer request whose BYTES input holds n JSON
// numbers instead of strings: n bytes and commas that a decoder into []any
// would turn into n float64s and interfaces (tens of bytes each). The
// server must refuse it (400) without that.
func V2Numbers(n int) []byte {
	var b bytes.Buffer
	b.Grow(2*n + 80)
	b.WriteString(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('1')
	}
	b.WriteString(`]}]}`)
	return b.Bytes()
}

// GreyPNG is a w x h PNG of one grey level: small on disk (it compresses
// to a few bytes a row), w*h pixels to decode. It panics only if the PNG
// encoder fails on an in-memory buffer, which it does not.
func GreyPNG(w, h int, level uint8, c png.CompressionLevel) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = level
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: c}).Encode(&b, img); err != nil {
		panic("hostile: encoding a PNG in memory: " + err.Error())
	}
	return b.Bytes()
}
