package imaging

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"petbreed/internal/imaging/jpegtest"
	"petbreed/internal/testassets"
)

// refCase is one entry of pil-reference/manifest.json.
type refCase struct {
	Image        string            `json:"image"`
	SourceFormat string            `json:"source_format"`
	SourceMode   string            `json:"source_mode"`
	SourceSize   [2]int            `json:"source_size"`
	Resize256    [2]int            `json:"resize256_size"`
	CropBox      [4]int            `json:"crop_box"`
	Outputs      map[string]string `json:"outputs"`
}

func loadManifest(t testing.TB) []refCase {
	var m struct {
		Cases []refCase `json:"cases"`
	}
	if err := json.Unmarshal(testassets.Read(t, "pil-reference", "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Cases) == 0 {
		t.Fatal("manifest has no cases")
	}
	return m.Cases
}

// sourcePath finds a reference case's source image among the shared assets.
func sourcePath(t testing.TB, name string) string {
	for _, dir := range []string{"photos", filepath.Join("pets-3breeds", "images")} {
		p := testassets.Path(t, dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("source image %s not found in the shared assets", name)
	return ""
}

// meanAbsDiff returns the mean absolute difference per channel and the
// largest difference of two interleaved images with ch channels.
func meanAbsDiff(a, b []uint8, ch int) (mad []float64, max int) {
	mad = make([]float64, ch)
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		mad[i%ch] += float64(d)
		if d > max {
			max = d
		}
	}
	for c := range mad {
		mad[c] /= float64(len(a) / ch)
	}
	return mad, max
}

// TestDecodeMatchesPillow compares our decoder's pixels with Pillow's
// Image.open(src).convert('RGB') for every reference image.
func TestDecodeMatchesPillow(t *testing.T) {
	for _, c := range loadManifest(t) {
		t.Run(c.Image, func(t *testing.T) {
			data, err := os.ReadFile(sourcePath(t, c.Image))
			if err != nil {
				t.Fatal(err)
			}
			img, info, err := Decode(data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != strings.ToLower(c.SourceFormat) {
				t.Errorf("format %q, Pillow says %q", info.Format, c.SourceFormat)
			}
			if info.Mode != c.SourceMode {
				t.Errorf("mode %q, Pillow says %q", info.Mode, c.SourceMode)
			}
			if img.W != c.SourceSize[0] || img.H != c.SourceSize[1] {
				t.Fatalf("size %dx%d, Pillow says %dx%d", img.W, img.H, c.SourceSize[0], c.SourceSize[1])
			}
			want := testassets.Read(t, "pil-reference", c.Outputs["decoded"])
			if len(want) != len(img.Pix) {
				t.Fatalf("reference has %d bytes, we have %d", len(want), len(img.Pix))
			}
			mad, max := meanAbsDiff(img.Pix, want, 3)
			t.Logf("decoded %s: mean abs diff R %.4f G %.4f B %.4f, max %d", c.Image, mad[0], mad[1], mad[2], max)
			for ch, d := range mad {
				if d > 1.0 {
					t.Errorf("channel %d differs from Pillow by %.3f levels on average (limit 1.0)", ch, d)
				}
			}
		})
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
		err  error
	}{
		{"empty", nil, "", ErrUnsupported},
		{"jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE0}, FormatJPEG, nil},
		{"png", []byte("\x89PNG\r\n\x1a\n...."), FormatPNG, nil},
		{"gif87", []byte("GIF87a...."), FormatGIF, nil},
		{"gif89", []byte("GIF89a...."), FormatGIF, nil},
		{"bmp", []byte("BM............"), FormatBMP, nil},
		{"webp", []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), FormatWebP, nil},
		{"riff not webp", []byte("RIFF\x00\x00\x00\x00WAVEfmt "), "", ErrUnsupported},
		{"text", []byte("hello, this is not an image"), "", ErrUnsupported},
		{"html", []byte("<!doctype html><html>"), "", ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Sniff(tt.data)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("Sniff = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// TestDecodeMisnamedFiles: the dataset's Abyssinian_34.jpg is a GIF and
// Abyssinian_5.jpg a PNG with alpha; both decode by their bytes.
func TestDecodeMisnamedFiles(t *testing.T) {
	for name, want := range map[string]struct{ format, mode string }{
		"Abyssinian_34.jpg": {FormatGIF, "P"},
		"Abyssinian_5.jpg":  {FormatPNG, "RGBA"},
		"Bengal_101.jpg":    {FormatJPEG, "RGB"},
	} {
		img, info, err := Decode(testassets.Read(t, "pets-3breeds", "images", name), DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info.Format != want.format || info.Mode != want.mode || img.W != info.Width || img.H != info.Height {
			t.Errorf("%s: %+v (image %dx%d), want format %s mode %s", name, info, img.W, img.H, want.format, want.mode)
		}
	}
}

func encodePNG(t testing.TB, m image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeErrors(t *testing.T) {
	jpg := testassets.Read(t, "photos", "cat_720p.jpg")
	pngData := testassets.Read(t, "photos", "chelsea.png")
	// A 20000x20000 PNG header: 400M pixels declared, refused before any
	// pixel is decoded (the data after the header is not even valid).
	bomb := testassets.BombPNG(20000, 20000)
	tests := []struct {
		name string
		data []byte
		opt  DecodeOptions
		err  error
		msg  string
	}{
		{"empty", []byte{}, DecodeOptions{}, ErrUnsupported, "empty"},
		{"garbage", []byte("definitely not an image, just some text"), DecodeOptions{}, ErrUnsupported, ""},
		{"truncated jpeg", jpg[:len(jpg)/2], DecodeOptions{}, ErrCorrupt, "truncated"},
		{"jpeg header only", jpg[:200], DecodeOptions{}, ErrCorrupt, ""},
		{"jpeg magic only", jpg[:3], DecodeOptions{}, ErrCorrupt, ""},
		{"truncated png", pngData[:len(pngData)/2], DecodeOptions{}, ErrCorrupt, ""},
		{"png signature only", pngData[:8], DecodeOptions{}, ErrCorrupt, ""},
		{"bomb", bomb, DecodeOptions{}, ErrPixelLimit, "pixel limit"},
		{"custom limit", jpg, DecodeOptions{MaxPixels: 1000}, ErrPixelLimit, "pixel limit"},
		{"gif garbage", []byte("GIF89a\x01\x00\x01\x00garbage"), DecodeOptions{}, ErrCorrupt, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, _, err := Decode(tt.data, tt.opt)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if img != nil {
				t.Error("an image came back with the error")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
	// No limit: the same photo decodes.
	if _, _, err := Decode(jpg, DecodeOptions{MaxPixels: -1}); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

// exifOrientation is a big-endian TIFF block with one IFD0 entry:
// Orientation (0x0112, SHORT) = o.
func exifOrientation(o int) []byte {
	t := []byte("MM\x00*\x00\x00\x00\x08\x00\x01" +
		"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x00\x00\x00" + "\x00\x00\x00\x00")
	t[18], t[19] = byte(o>>8), byte(o)
	return t
}

// withPNGExif inserts an eXIf chunk after IHDR.
func withPNGExif(p []byte, o int) []byte {
	var b bytes.Buffer
	b.Write(p[:33]) // signature + IHDR
	testassets.PNGChunk(&b, "eXIf", exifOrientation(o))
	b.Write(p[33:])
	return b.Bytes()
}

// withJPEGExif inserts an APP1 Exif segment after SOI.
func withJPEGExif(j []byte, o int) []byte {
	seg := append([]byte("Exif\x00\x00"), exifOrientation(o)...)
	var b bytes.Buffer
	b.Write(j[:2])
	b.Write([]byte{0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)})
	b.Write(seg)
	b.Write(j[2:])
	return b.Bytes()
}

// TestEXIFOrientation stores an image sideways (or mirrored) with the
// orientation tag that says how to show it, and checks Decode shows it
// upright, for all eight orientations, in PNG (exact) and JPEG.
func TestEXIFOrientation(t *testing.T) {
	upright, _, err := Decode(testassets.Read(t, "photos", "chelsea.png"), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inverse := map[int]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
	for o := 1; o <= 8; o++ {
		stored := Orient(upright, inverse[o])
		data := withPNGExif(encodePNG(t, stored), o)
		got, info, err := Decode(data, DecodeOptions{})
		if err != nil {
			t.Fatalf("orientation %d: %v", o, err)
		}
		if info.Orientation != o {
			t.Errorf("orientation %d read as %d", o, info.Orientation)
		}
		if got.W != upright.W || got.H != upright.H || !bytes.Equal(got.Pix, upright.Pix) {
			t.Errorf("orientation %d: not shown upright (%dx%d)", o, got.W, got.H)
		}
		raw, _, err := Decode(data, DecodeOptions{IgnoreOrientation: true})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw.Pix, stored.Pix) || raw.W != stored.W {
			t.Errorf("orientation %d with IgnoreOrientation: pixels changed", o)
		}
	}

	// A phone photo: JPEG stored sideways with orientation 6.
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, Orient(upright, 8), &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	got, info, err := Decode(withJPEGExif(buf.Bytes(), 6), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Orientation != 6 || info.Width != upright.H || got.W != upright.W || got.H != upright.H {
		t.Fatalf("jpeg orientation 6: info %+v, image %dx%d", info, got.W, got.H)
	}
	mad, _ := meanAbsDiff(got.Pix, upright.Pix, 3)
	for c, d := range mad {
		if d > 3 { // JPEG at quality 95 loses a little
			t.Errorf("jpeg orientation 6: channel %d differs by %.2f from upright", c, d)
		}
	}
}

// TestPillowConversions checks convert('RGB') rules on generated images:
// alpha dropped without compositing, 16-bit keeps the high byte, 16-bit
// grey clips, palette transparency keeps the stored colour.
func TestPillowConversions(t *testing.T) {
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	nrgba.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 0})
	nrgba.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 128})
	rgb16 := image.NewRGBA64(image.Rect(0, 0, 1, 1))
	rgb16.SetRGBA64(0, 0, color.RGBA64{0x12ff, 0xab00, 0x0180, 0xffff})
	g16 := image.NewGray16(image.Rect(0, 0, 3, 1))
	g16.SetGray16(0, 0, color.Gray16{100})
	g16.SetGray16(1, 0, color.Gray16{255})
	g16.SetGray16(2, 0, color.Gray16{4000})
	pal := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.NRGBA{1, 2, 3, 0}, color.NRGBA{250, 128, 7, 255}})
	pal.SetColorIndex(1, 0, 1)
	tests := []struct {
		name string
		img  image.Image
		mode string
		want []uint8
	}{
		{"rgba drops alpha", nrgba, "RGBA", []uint8{200, 100, 50, 10, 20, 30}},
		{"16-bit rgb high byte", rgb16, "RGB", []uint8{0x12, 0xab, 0x01}},
		{"16-bit gray clips", g16, "I", []uint8{100, 100, 100, 255, 255, 255, 255, 255, 255}},
		{"palette with alpha", pal, "P", []uint8{1, 2, 3, 250, 128, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, info, err := Decode(encodePNG(t, tt.img), DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode != tt.mode || !bytes.Equal(got.Pix, tt.want) {
				t.Errorf("got mode %s %v, want %s %v", info.Mode, got.Pix, tt.mode, tt.want)
			}
		})
	}

	// GIF with a transparent index: Pillow keeps the palette's colour.
	gpal := color.Palette{color.RGBA{9, 8, 7, 255}, color.RGBA{100, 150, 200, 255}}
	gm := image.NewPaletted(image.Rect(0, 0, 2, 1), gpal)
	gm.SetColorIndex(1, 0, 1)
	var buf bytes.Buffer
	if err := gif.Encode(&buf, gm, nil); err != nil {
		t.Fatal(err)
	}
	g := buf.Bytes()
	// Add a graphic control extension making index 1 transparent.
	i := bytes.IndexByte(g[13+3*2:], 0x2C) + 13 + 3*2
	withGCE := append(append(append([]byte{}, g[:i]...), 0x21, 0xF9, 4, 1, 0, 0, 1, 0), g[i:]...)
	got, info, err := Decode(withGCE, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{9, 8, 7, 100, 150, 200}; info.Mode != "P" || !bytes.Equal(got.Pix, want) {
		t.Errorf("gif with transparency: %v, want %v", got.Pix, want)
	}
}

func TestCMYKToRGB(t *testing.T) {
	// Pillow: CMYK;I unpacks 255-v, then R = (255-K) - C*(255-K)/255.
	got := cmykToRGB([]uint8{255, 255, 255, 255, 0, 0, 0, 0, 155, 55, 255, 200}, 3, 1, true)
	// pixel 1: stored all 255 → C=M=Y=K=0 → white.
	// pixel 2: stored all 0 → K=255 → black.
	// pixel 3: C=100 M=200 Y=0 K=55 → nk=200: 200-78=122, 200-157=43, 200.
	want := []uint8{255, 255, 255, 0, 0, 0, 122, 43, 200}
	if !bytes.Equal(got.Pix, want) {
		t.Errorf("cmykToRGB = %v, want %v", got.Pix, want)
	}
}

// TestDecodeCMYKJPEG: CMYK and YCCK JPEGs (written by libjpeg with the Adobe
// marker) decode as Pillow decodes them: samples read as inverted, then
// (255-K) - C*(255-K)/255.
func TestDecodeCMYKJPEG(t *testing.T) {
	const w, h = 32, 16
	// Four flat patches of stored CMYK samples (8x16 each): lossless enough
	// at quality 100 to compare within a level or two.
	patches := [][4]byte{{255, 255, 255, 255}, {0, 0, 0, 0}, {155, 55, 255, 200}, {30, 200, 120, 90}}
	pix := make([]byte, w*h*4)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			copy(pix[(y*w+x)*4:], patches[x/8][:])
		}
	}
	want := cmykToRGB(pix, w, h, true)
	for _, cs := range []struct {
		name string
		cs   int
	}{{"CMYK", jpegtest.CMYK}, {"YCCK", jpegtest.YCCK}} {
		data, err := jpegtest.EncodeCMYK(pix, w, h, cs.cs, 100)
		if err != nil {
			t.Fatal(err)
		}
		img, info, err := Decode(data, DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: %v", cs.name, err)
		}
		if info.Mode != "CMYK" || img.W != w || img.H != h {
			t.Errorf("%s: %+v", cs.name, info)
		}
		// Compare patch centres.
		for p := range patches {
			i := (8*w + p*8 + 4) * 3
			for c := 0; c < 3; c++ {
				if d := int(img.Pix[i+c]) - int(want.Pix[i+c]); d > 2 || d < -2 {
					t.Errorf("%s patch %d channel %d: %d, want %d", cs.name, p, c, img.Pix[i+c], want.Pix[i+c])
				}
			}
		}
	}
}
