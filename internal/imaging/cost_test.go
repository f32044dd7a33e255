package imaging

import (
	"bytes"
	"image"
	"image/png"
	"testing"
)

// bigPNG is a w×h 16-bit RGBA PNG of gradients and a little pattern
// (NRGBA64 once decoded: 8 bytes a pixel), written fast.
func bigPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	m := image.NewNRGBA64(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		row := m.Pix[y*m.Stride:]
		for x := 0; x < w; x++ {
			p := row[8*x:]
			p[0], p[1] = uint8(x), uint8(y)
			p[2], p[3] = uint8(y), uint8(x^y)
			p[4], p[5] = uint8(x+y), 0
			p[6], p[7] = 0xff, uint8(x*7)
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
