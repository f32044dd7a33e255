package imaging

// Fuzz targets for every parser of outside input in this package. Seeds are
// small images generated here (no shared assets are copied in); crashers
// found by `go test -fuzz` are kept in testdata/fuzz/<target>/ and run as
// ordinary tests. Properties: no panic, no hang, errors wrap one of the
// package's sentinel errors, a decoded image has the header's size.

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"golang.org/x/image/bmp"

	"petbreed/internal/imaging/jpegtest"
)

// fuzzLimit keeps fuzzed images small enough to decode quickly.
const fuzzLimit = 1 << 18

// seedImage is a small deterministic colour image.
func seedImage(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = uint8(i*7), uint8(i*13), uint8(i>>3), uint8(255-i)
	}
	return m
}

func jpegSeeds(f testing.TB) [][]byte {
	var out [][]byte
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, seedImage(16, 8), &jpeg.Options{Quality: 80}); err != nil {
		f.Fatal(err)
	}
	out = append(out, buf.Bytes(), withJPEGExif(buf.Bytes(), 6))
	rgb := make([]byte, 16*8*3)
	for i := range rgb {
		rgb[i] = uint8(i * 5)
	}
	for _, p := range []jpegtest.Progression{jpegtest.Simple, jpegtest.Baseline} {
		b, err := jpegtest.Encode(rgb, 16, 8, 3, 75, p, nil)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	g, err := jpegtest.Encode(rgb[:16*8], 16, 8, 1, 75, jpegtest.Simple, nil)
	if err != nil {
		f.Fatal(err)
	}
	cmyk, err := jpegtest.EncodeCMYK(append(rgb, rgb[:16*8]...), 16, 8, jpegtest.YCCK, 75)
	if err != nil {
		f.Fatal(err)
	}
	return append(out, g, cmyk)
}

func pngSeeds(f testing.TB) [][]byte {
	pal := image.NewPaletted(image.Rect(0, 0, 5, 3), color.Palette{color.NRGBA{1, 2, 3, 0}, color.White})
	pal.Pix[4] = 1
	g16 := image.NewGray16(image.Rect(0, 0, 3, 2))
	g16.Pix[1] = 0x80
	rgba64 := image.NewNRGBA64(image.Rect(0, 0, 2, 2))
	rgba64.Pix[3] = 9
	out := [][]byte{
		encodePNG(f, seedImage(6, 4)),
		encodePNG(f, pal),
		encodePNG(f, g16),
		encodePNG(f, rgba64),
		encodePNG(f, image.NewGray(image.Rect(0, 0, 4, 4))),
	}
	return append(out, withPNGExif(out[0], 8))
}

func gifSeeds(f testing.TB) [][]byte {
	var buf bytes.Buffer
	m := image.NewPaletted(image.Rect(0, 0, 5, 4), color.Palette{color.Black, color.White, color.RGBA{200, 10, 10, 255}})
	m.Pix[3], m.Pix[7] = 1, 2
	if err := gif.Encode(&buf, m, nil); err != nil {
		f.Fatal(err)
	}
	return [][]byte{buf.Bytes(), []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00")}
}

func bmpSeeds(f testing.TB) [][]byte {
	var out [][]byte
	for _, m := range []image.Image{seedImage(5, 3), image.NewGray(image.Rect(0, 0, 3, 3))} {
		var buf bytes.Buffer
		if err := bmp.Encode(&buf, m); err != nil {
			f.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// isSentinel reports whether err wraps one of the package's errors.
func isSentinel(err error) bool {
	for _, s := range []error{ErrUnsupported, ErrPixelLimit, ErrCorrupt, ErrTooManyScans} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// checkDecode is the property every Decode target checks.
func checkDecode(t *testing.T, b []byte) {
	start := time.Now()
	img, info, err := Decode(b, DecodeOptions{MaxPixels: fuzzLimit})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("decode took %v", took)
	}
	cost, cerr := DecodeCost(b)
	if err != nil {
		if img != nil {
			t.Fatal("an image came back with an error")
		}
		if !isSentinel(err) {
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if strings.Contains(err.Error(), "decoder failed") {
			t.Fatalf("a decoder panicked: %v", err)
		}
		return
	}
	if cerr != nil {
		t.Fatalf("Decode succeeded but DecodeCost failed: %v", cerr)
	}
	w, h := info.Width, info.Height
	if info.Orientation >= 5 {
		w, h = h, w
	}
	if img.W != w || img.H != h || len(img.Pix) != img.W*img.H*3 {
		t.Fatalf("decoded %dx%d (%d bytes), header says %dx%d orientation %d", img.W, img.H, len(img.Pix),
			info.Width, info.Height, info.Orientation)
	}
	if cost < int64(len(img.Pix)) {
		t.Fatalf("DecodeCost %d is less than the result's %d bytes", cost, len(img.Pix))
	}
}

func FuzzDecode(f *testing.F) {
	for _, seeds := range [][][]byte{jpegSeeds(f), pngSeeds(f), gifSeeds(f), bmpSeeds(f)} {
		for _, s := range seeds {
			f.Add(s)
		}
	}
	f.Fuzz(checkDecode)
}

// fuzzDecode fuzzes the decoder from one format's seeds, so the mutations
// stay near that format's parser.
func fuzzDecode(f *testing.F, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(checkDecode)
}

func FuzzDecodeJPEG(f *testing.F) { fuzzDecode(f, jpegSeeds(f)) }

func FuzzDecodePNG(f *testing.F) { fuzzDecode(f, pngSeeds(f)) }

func FuzzDecodeGIF(f *testing.F) { fuzzDecode(f, gifSeeds(f)) }

func FuzzDecodeBMP(f *testing.F) { fuzzDecode(f, bmpSeeds(f)) }

func FuzzDecodeConfig(f *testing.F) {
	for _, seeds := range [][][]byte{jpegSeeds(f), pngSeeds(f), gifSeeds(f), bmpSeeds(f)} {
		for _, s := range seeds {
			f.Add(s[:min(len(s), 200)])
		}
	}
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "))
	f.Fuzz(func(t *testing.T, b []byte) {
		format, err := Sniff(b)
		if err != nil && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Sniff: %v", err)
		}
		f2, w, h, err := DecodeConfig(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("DecodeConfig error wraps no sentinel: %v", err)
			}
			return
		}
		if f2 != format || w < 0 || h < 0 {
			t.Fatalf("DecodeConfig = %s %dx%d, Sniff %s", f2, w, h, format)
		}
		if _, err := DecodeCost(b); err != nil {
			t.Fatalf("DecodeConfig succeeded, DecodeCost failed: %v", err)
		}
	})
}

func FuzzReadJPEGHeader(f *testing.F) {
	for _, s := range jpegSeeds(f) {
		f.Add(s[:min(len(s), 400)])
	}
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xC2, 0x00, 0x0B, 8, 0, 1, 0, 1, 1, 1, 0x22, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		hdr, err := readJPEGHeader(b)
		if err != nil {
			return
		}
		if hdr.w <= 0 || hdr.h <= 0 || hdr.end > len(b) {
			t.Fatalf("header %+v from %d bytes", hdr, len(b))
		}
		if hdr.compSpecs != nil && len(hdr.compSpecs) != 3*hdr.comps {
			t.Fatalf("%d bytes of component specifications for %d components", len(hdr.compSpecs), hdr.comps)
		}
		if n := firstScanComponents(b, hdr.end); n < 0 || n > 255 {
			t.Fatalf("first scan has %d components", n)
		}
		if c := jpegCost(b, hdr); c < 3*int64(hdr.w)*int64(hdr.h) {
			t.Fatalf("cost %d under the output size", c)
		}
	})
}

// checkSub fails unless sub is nil or lies within b.
func checkSub(t *testing.T, b, sub []byte) {
	if sub == nil {
		return
	}
	if len(sub) > len(b) {
		t.Fatalf("%d bytes of EXIF from %d bytes", len(sub), len(b))
	}
}

func FuzzJPEGEXIF(f *testing.F) {
	j := smallJPEG(f)
	f.Add(withJPEGExif(j, 6))
	f.Add(withAPP1(j, []byte("Exif\x00X")))
	f.Add(withAPP1(j, append([]byte("Exif\x00\x00"), exifOrientation(3)[:11]...)))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSub(t, b, jpegEXIF(b))
		if o := readOrientation(b, FormatJPEG); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

func FuzzPNGEXIF(f *testing.F) {
	p := encodePNG(f, image.NewGray(image.Rect(0, 0, 2, 2)))
	f.Add(withPNGExif(p, 6))
	f.Add(p)
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSub(t, b, pngEXIF(b))
		if o := readOrientation(b, FormatPNG); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

func FuzzWebPEXIF(f *testing.F) {
	e := exifOrientation(6)
	b := []byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00EXIF")
	b = append(b, byte(len(e)), 0, 0, 0)
	f.Add(append(b, e...))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSub(t, b, webpEXIF(b))
		if o := readOrientation(b, FormatWebP); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

func FuzzTIFFOrientation(f *testing.F) {
	for o := 1; o <= 8; o++ {
		f.Add(exifOrientation(o))
	}
	// Mangled entries: LONG8 out of line, RATIONAL 12/2, count 0xFFFFFFFF.
	f.Add([]byte("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x10\x00\x00\x00\x01\x00\x00\x00\x1a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07"))
	f.Add([]byte("II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x05\x00\x01\x00\x00\x00\x1a\x00\x00\x00\x00\x00\x00\x00\x0c\x00\x00\x00\x02\x00\x00\x00"))
	f.Add([]byte("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\xff\xff\xff\xff\x00\x06\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := tiffOrientation(b); o < 0 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

// TestFuzzSeedsDecode: the seeds are real images (a seed that fails to
// decode would fuzz only the error paths).
func TestFuzzSeedsDecode(t *testing.T) {
	for name, seeds := range map[string][][]byte{
		"jpeg": jpegSeeds(t), "png": pngSeeds(t), "gif": gifSeeds(t)[:1], "bmp": bmpSeeds(t),
	} {
		for i, s := range seeds {
			if _, _, err := Decode(s, DecodeOptions{}); err != nil {
				t.Errorf("%s seed %d: %v", name, i, err)
			}
		}
	}
}
