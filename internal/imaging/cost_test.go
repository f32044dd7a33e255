package imaging

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"runtime"
	"testing"

	"petbreed/internal/imaging/jpegtest"
	"petbreed/internal/testassets"
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

// measureDecode decodes b and returns the bytes the Go runtime allocated
// meanwhile plus, for a JPEG, the most C heap libjpeg held in a decode of
// the same file.
func measureDecode(t *testing.T, b []byte) int64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	img, info, err := Decode(b, DecodeOptions{MaxPixels: -1})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(img)
	m := int64(after.TotalAlloc - before.TotalAlloc)
	if info.Format == FormatJPEG {
		c, err := jpegtest.PeakHeap(b)
		if err != nil {
			t.Fatal(err)
		}
		m += c
	}
	return m
}

func TestDecodeCost(t *testing.T) {
	photo := func() *RGB {
		img, _, err := Decode(testassets.Read(t, "photos", "cat_1080p.jpg"), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	asset := func(elem ...string) func() []byte { return func() []byte { return testassets.Read(t, elem...) } }
	q90 := func() []byte {
		var buf bytes.Buffer
		if err := Encode(&buf, photo(), FormatJPEG, 90); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	const gw, gh = 1500, 1000
	gray := image.NewGray(image.Rect(0, 0, gw, gh))
	gray16 := image.NewGray16(image.Rect(0, 0, gw, gh))
	pal := image.NewPaletted(image.Rect(0, 0, gw, gh), color.Palette{color.Black, color.White})
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 7 / gw)
		gray16.Pix[2*i] = uint8(i)
		pal.Pix[i] = uint8(i/gw) & 1
	}
	tests := []struct {
		name string
		data func() []byte
	}{
		{"jpeg 720p", asset("photos", "cat_720p.jpg")},
		{"jpeg 1080p", asset("photos", "cat_1080p.jpg")},
		{"jpeg parrot", asset("photos", "parrot.jpg")},
		{"jpeg pets", asset("photos", "pets.jpg")},
		{"jpeg dataset 4:4:4", asset("pets-3breeds", "images", "Abyssinian_105.jpg")},
		{"jpeg q90 4:2:0", q90},
		{"jpeg progressive 1080p", func() []byte {
			p := photo()
			return must(jpegtest.Encode(p.Pix, p.W, p.H, 3, 90, jpegtest.Simple, nil))
		}},
		{"jpeg progressive grey", func() []byte {
			return must(jpegtest.Encode(smoothGrey(gw, gh), gw, gh, 1, 90, jpegtest.Simple, nil))
		}},
		{"jpeg ycck", func() []byte {
			cmyk := make([]byte, 1200*800*4)
			for i := range cmyk {
				cmyk[i] = uint8(i / 4096)
			}
			return must(jpegtest.EncodeCMYK(cmyk, 1200, 800, jpegtest.YCCK, 90))
		}},
		{"jpeg orientation 6", func() []byte { return withJPEGExif(q90(), 6) }},
		{"png chelsea", asset("photos", "chelsea.png")},
		{"png rgba (dataset)", asset("pets-3breeds", "images", "Abyssinian_5.jpg")},
		{"png 16-bit rgba 2000x2000", func() []byte { return bigPNG(t, 2000, 2000) }},
		{"png grey", func() []byte { return encodePNG(t, gray) }},
		{"png grey 16-bit", func() []byte { return encodePNG(t, gray16) }},
		{"png palette", func() []byte { return encodePNG(t, pal) }},
		{"png rgb", func() []byte { return encodePNG(t, rgbToNRGBAOpaque(photo())) }},
		{"gif (dataset)", asset("pets-3breeds", "images", "Abyssinian_34.jpg")},
		{"bmp", asset("photos", "grace_hopper.bmp")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data()
			cost, err := DecodeCost(data)
			if err != nil {
				t.Fatal(err)
			}
			got := measureDecode(t, data)
			_, w, h, _ := DecodeConfig(data)
			t.Logf("%dx%d: measured %d, DecodeCost %d (%.2fx, %.2f B/px)", w, h, got, cost,
				float64(cost)/float64(got), float64(cost)/float64(w*h))
			if got > cost {
				t.Errorf("decoding took %d bytes, more than DecodeCost's %d", got, cost)
			}
			if cost > 2*got {
				t.Errorf("DecodeCost %d is more than twice the %d bytes decoding took", cost, got)
			}
		})
	}
}

// rgbToNRGBAOpaque is img as an opaque NRGBA: PNG's encoder writes it as
// 8-bit truecolour.
func rgbToNRGBAOpaque(img *RGB) image.Image {
	m := image.NewRGBA(image.Rect(0, 0, img.W, img.H))
	for i, j := 0, 0; i < len(img.Pix); i, j = i+3, j+4 {
		m.Pix[j], m.Pix[j+1], m.Pix[j+2], m.Pix[j+3] = img.Pix[i], img.Pix[i+1], img.Pix[i+2], 0xff
	}
	return m
}

// TestCostHeaders checks the header readings DecodeCost relies on for what
// TestDecodeCost cannot produce (interlaced PNG, tRNS, WebP alpha).
func TestCostHeaders(t *testing.T) {
	ihdr := func(depth, ct, interlace byte, chunks ...string) []byte {
		var b bytes.Buffer
		b.WriteString("\x89PNG\r\n\x1a\n")
		testassets.PNGChunk(&b, "IHDR", []byte{0, 0, 0, 10, 0, 0, 0, 10, depth, ct, 0, 0, interlace})
		for _, c := range chunks {
			testassets.PNGChunk(&b, c, []byte{0, 0})
		}
		testassets.PNGChunk(&b, "IDAT", nil)
		return b.Bytes()
	}
	pngs := []struct {
		name string
		b    []byte
		want int64 // bytes a pixel
	}{
		{"grey 8", ihdr(8, 0, 0), 1},
		{"grey 8 tRNS", ihdr(8, 0, 0, "tRNS"), 4},
		{"grey 16", ihdr(16, 0, 0), 2},
		{"grey 16 tRNS", ihdr(16, 0, 0, "tEXt", "tRNS"), 8},
		{"rgb 8", ihdr(8, 2, 0), 4},
		{"rgb 16", ihdr(16, 2, 0), 8},
		{"palette", ihdr(8, 3, 0, "PLTE", "tRNS"), 1},
		{"rgba 16 interlaced", ihdr(16, 6, 1), 16},
		{"grey+alpha 8", ihdr(8, 4, 0), 4},
	}
	for _, tt := range pngs {
		if got, _ := pngImageCost(tt.b, 100); got != 100*tt.want {
			t.Errorf("png %s: %d bytes for 100 pixels, want %d", tt.name, got, 100*tt.want)
		}
	}
	riff := func(chunks ...string) []byte {
		b := []byte("RIFF\x00\x00\x00\x00WEBP")
		for _, c := range chunks {
			b = append(b, c...)
			b = append(b, 3, 0, 0, 0, 1, 2, 3, 0) // 3 bytes of data and the pad byte
		}
		return b
	}
	webps := []struct {
		name string
		b    []byte
		want bool
	}{
		{"lossy", riff("VP8 "), false},
		{"lossless", riff("VP8L"), true},
		{"extended with alpha", riff("VP8X", "ALPH", "VP8 "), true},
		{"extended without alpha", riff("VP8X", "ICCP", "VP8 "), false},
		{"ALPH only inside data", append(riff("VP8 "), "ALPH"...), false},
	}
	for _, tt := range webps {
		if got := webpAlphaPlane(tt.b); got != tt.want {
			t.Errorf("webp %s: alpha plane %v, want %v", tt.name, got, tt.want)
		}
	}
}
