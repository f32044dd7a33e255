package imaging

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"petbreed"
	"petbreed/internal/testassets"

	"golang.org/x/image/webp"
)

// cwebp converts a shared photo to WebP with libwebp's encoder (Debian's
// webp package, installed by make deps).
func cwebp(tb testing.TB, src string, args ...string) []byte {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "out.webp")
	cwebpTo(tb, out, src, args...)
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// cwebpTo encodes src into the WebP file out. A missing cwebp fails the
// test: make deps installs it.
func cwebpTo(tb testing.TB, out, src string, args ...string) {
	tb.Helper()
	bin, err := exec.LookPath("cwebp")
	if err != nil {
		tb.Fatal("cwebp not installed: run `make deps` (scripts/deps.sh installs Debian's webp package)")
	}
	cmd := exec.Command(bin, append(append(args, "-quiet", src, "-o"), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("cwebp %v: %v\n%s", args, err, b)
	}
}

// withWebPExif wraps a simple (VP8/VP8L) WebP in the extended format with an
// EXIF chunk holding an orientation.
func withWebPExif(t *testing.T, simple []byte, w, h, o int) []byte {
	if string(simple[:4]) != "RIFF" || string(simple[8:12]) != "WEBP" {
		t.Fatal("not a WebP")
	}
	var body bytes.Buffer
	body.WriteString("WEBP")
	vp8x := make([]byte, 10)
	vp8x[0] = 0x08 // EXIF present
	put24 := func(b []byte, v int) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }
	put24(vp8x[4:], w-1)
	put24(vp8x[7:], h-1)
	chunk := func(fourcc string, data []byte) {
		body.WriteString(fourcc)
		binary.Write(&body, binary.LittleEndian, uint32(len(data)))
		body.Write(data)
		if len(data)%2 == 1 {
			body.WriteByte(0)
		}
	}
	chunk("VP8X", vp8x)
	body.Write(simple[12:]) // the image chunk as it is
	chunk("EXIF", exifOrientation(o))
	var out bytes.Buffer
	out.WriteString("RIFF")
	binary.Write(&out, binary.LittleEndian, uint32(body.Len()))
	out.Write(body.Bytes())
	return out.Bytes()
}

func TestDecodeWebP(t *testing.T) {
	src := testassets.Path(t, "photos", "chelsea.png")
	png, _, err := Decode(testassets.Read(t, "photos", "chelsea.png"), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Lossless: the pixels come back exactly.
	lossless := cwebp(t, src, "-lossless")
	img, info, err := Decode(lossless, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != FormatWebP || !bytes.Equal(img.Pix, png.Pix) {
		t.Errorf("lossless WebP: format %s, pixels equal %v", info.Format, bytes.Equal(img.Pix, png.Pix))
	}
	// Lossy: close to the original.
	lossy := cwebp(t, src, "-q", "90")
	img, _, err = Decode(lossy, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mad, _ := meanAbsDiff(img.Pix, png.Pix, 3)
	t.Logf("lossy WebP q90 vs PNG: mean abs diff %.2f/%.2f/%.2f", mad[0], mad[1], mad[2])
	for c, d := range mad {
		if img.W != png.W || d > 6 {
			t.Errorf("lossy WebP: %dx%d, channel %d differs by %.2f", img.W, img.H, c, d)
		}
	}
	// EXIF orientation in the extended format.
	stored := Orient(png, 8)
	var sideways bytes.Buffer
	if err := Encode(&sideways, stored, FormatPNG, 0); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "sideways.png")
	os.WriteFile(p, sideways.Bytes(), 0o644)
	ext := withWebPExif(t, cwebp(t, p, "-lossless"), stored.W, stored.H, 6)
	img, info, err = Decode(ext, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Orientation != 6 || !bytes.Equal(img.Pix, png.Pix) {
		t.Errorf("WebP with EXIF orientation 6: read %d, upright %v", info.Orientation, bytes.Equal(img.Pix, png.Pix))
	}
}

// webpCase is one WebP made at test time from a shared image with cwebp.
type webpCase struct {
	name string
	src  []string // path under the shared assets; "" first: the alpha PNG
	args []string // cwebp options
	mode string   // Pillow's mode of the WebP
}

// webpCases cover lossy at two qualities, odd and tiny sizes (the fancy
// upsampler's edges), lossy with a real alpha plane and lossless.
var webpCases = []webpCase{
	{"chelsea_q75", []string{"photos", "chelsea.png"}, []string{"-q", "75"}, "RGB"},
	{"chelsea_q90", []string{"photos", "chelsea.png"}, []string{"-q", "90"}, "RGB"},
	{"abyssinian105_q75", []string{"pets-3breeds", "images", "Abyssinian_105.jpg"}, []string{"-q", "75"}, "RGB"},
	{"bengal101_q90", []string{"pets-3breeds", "images", "Bengal_101.jpg"}, []string{"-q", "90"}, "RGB"},
	{"cat720p_resize333", []string{"photos", "cat_720p.jpg"}, []string{"-q", "75", "-resize", "333", "0"}, "RGB"},
	{"parrot_crop257x191", []string{"photos", "parrot.jpg"}, []string{"-q", "90", "-crop", "3", "5", "257", "191"}, "RGB"},
	{"pets_crop256x17", []string{"photos", "pets.jpg"}, []string{"-q", "75", "-crop", "40", "100", "256", "17"}, "RGB"},
	{"tiny_1x1", []string{"photos", "parrot.jpg"}, []string{"-q", "90", "-crop", "100", "100", "1", "1"}, "RGB"},
	{"tiny_1x7", []string{"photos", "parrot.jpg"}, []string{"-q", "90", "-crop", "100", "100", "1", "7"}, "RGB"},
	{"tiny_2x2", []string{"photos", "parrot.jpg"}, []string{"-q", "90", "-crop", "100", "100", "2", "2"}, "RGB"},
	{"tiny_5x2", []string{"photos", "parrot.jpg"}, []string{"-q", "90", "-crop", "100", "100", "5", "2"}, "RGB"},
	{"tiny_6x3", []string{"photos", "parrot.jpg"}, []string{"-q", "90", "-crop", "100", "100", "6", "3"}, "RGB"},
	{"alpha_q80", nil, []string{"-q", "80"}, "RGBA"},
	{"alpha_q80_exact", nil, []string{"-q", "80", "-exact", "-crop", "1", "1", "199", "149"}, "RGBA"},
	{"lossless_chelsea", []string{"photos", "chelsea.png"}, []string{"-lossless"}, "RGB"},
	{"lossless_alpha", nil, []string{"-lossless", "-exact"}, "RGBA"},
	{"chelsea_q30_nostrong_sharp", []string{"photos", "chelsea.png"}, []string{"-q", "30", "-nostrong", "-sharpness", "5", "-segments", "2"}, "RGB"},
}

// alphaPNG writes Abyssinian_5 (a PNG whose alpha is all opaque) with a
// real alpha channel: a transparent left quarter, then a ramp, so that
// cwebp stores an ALPH chunk (lossy) or VP8L alpha (lossless).
func alphaPNG(t *testing.T) string {
	t.Helper()
	img, _, err := Decode(testassets.Read(t, "pets-3breeds", "images", "Abyssinian_5.jpg"), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := image.NewNRGBA(image.Rect(0, 0, img.W, img.H))
	for y := 0; y < img.H; y++ {
		for x := 0; x < img.W; x++ {
			i := (y*img.W + x) * 3
			a := 0
			if x >= img.W/4 {
				a = min(255, (x-img.W/4)*255/(img.W/2))
			}
			m.SetNRGBA(x, y, color.NRGBA{img.Pix[i], img.Pix[i+1], img.Pix[i+2], uint8(a)})
		}
	}
	p := filepath.Join(t.TempDir(), "alpha.png")
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pilDecode runs testdata/webp/pil_decode.py with Debian's Python and
// Pillow on the files, which writes PATH.rgb and PATH.crop.rgb for each, and
// returns Pillow's mode of each file. A missing Pillow fails the test: make
// deps installs python3-pil.
func pilDecode(t *testing.T, paths []string) map[string]string {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import PIL.WebPImagePlugin").Run(); err != nil {
		t.Fatalf("Debian's Pillow is missing (%s -c 'import PIL': %v): run `make deps` (scripts/deps.sh installs python3-pil)", python, err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "webp", "pil_decode.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, append([]string{script}, paths...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pil_decode.py: %v\n%s", err, stderr.Bytes())
	}
	modes := map[string]string{}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var r struct {
			Path, Mode, Pillow string
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("pil_decode.py printed %q: %v", line, err)
		}
		if r.Pillow != "9.4.0" {
			t.Fatalf("Pillow %s, want 9.4.0 (the version of the shared references)", r.Pillow)
		}
		modes[r.Path] = r.Mode
	}
	return modes
}

// TestWebPMatchesPillow: petbreed's WebP pixels, and the torchvision crop
// transform of them, against Pillow 9.4's (libwebp's) for WebPs made from
// the shared photos at test time, and for the tiny fixtures.
func TestWebPMatchesPillow(t *testing.T) {
	dir := t.TempDir()
	alpha := alphaPNG(t)
	paths := make([]string, len(webpCases))
	for i, c := range webpCases {
		src := alpha
		if c.src != nil {
			src = testassets.Path(t, c.src...)
		}
		paths[i] = filepath.Join(dir, c.name+".webp")
		cwebpTo(t, paths[i], src, c.args...)
	}
	for _, f := range webpFixtures {
		p := filepath.Join(dir, f.file)
		if err := os.WriteFile(p, readWebPFixture(t, f.file), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	modes := pilDecode(t, paths)
	for i, p := range paths {
		c := webpCase{name: filepath.Base(p)}
		if i < len(webpCases) {
			c = webpCases[i]
		} else {
			c.mode = webpFixtures[i-len(webpCases)].mode
		}
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(p + ".rgb")
			if err != nil {
				t.Fatal(err)
			}
			img, info, err := Decode(data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if modes[p] != c.mode || info.Mode != c.mode {
				t.Errorf("mode: Pillow %s, petbreed %s, want %s", modes[p], info.Mode, c.mode)
			}
			if len(img.Pix) != len(want) {
				t.Fatalf("%dx%d: %d bytes, Pillow's has %d", img.W, img.H, len(img.Pix), len(want))
			}
			mad, maxd := webpDiff(img.Pix, want)
			t.Logf("%dx%d %s: decoded vs Pillow: mean abs diff %.4f, max %d", img.W, img.H, info.Mode, mad, maxd)
			if maxd != 0 {
				t.Errorf("decoded pixels differ from Pillow's: mean %.4f, max %d", mad, maxd)
			}
			crop, err := Apply(img, petbreed.DefaultPreprocess())
			if err != nil {
				t.Fatal(err)
			}
			wantCrop, err := os.ReadFile(p + ".crop.rgb")
			if err != nil {
				t.Fatal(err)
			}
			if len(crop.Pix) != len(wantCrop) {
				t.Fatalf("crop transform: %d bytes, Pillow's %d", len(crop.Pix), len(wantCrop))
			}
			mad, maxd = webpDiff(crop.Pix, wantCrop)
			t.Logf("crop transform vs Pillow+torchvision: mean abs diff %.4f, max %d", mad, maxd)
			if maxd != 0 {
				t.Errorf("crop transform differs from Pillow's: mean %.4f, max %d", mad, maxd)
			}
		})
	}
}

// webpDiff is the mean and the largest absolute difference of two samples.
func webpDiff(a, b []uint8) (mean float64, maxd int) {
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
		maxd = max(maxd, d)
	}
	return float64(sum) / float64(max(1, len(a))), maxd
}

// TestWebPYUVPlanesMatchLibwebp: golang.org/x/image/vp8's Y, U and V planes
// are libwebp's to the bit (dwebp -yuv writes them flat: Y, then U, then V),
// so the colour conversion is all that could differ from Pillow.
func TestWebPYUVPlanesMatchLibwebp(t *testing.T) {
	dwebp, err := exec.LookPath("dwebp")
	if err != nil {
		t.Fatal("dwebp not installed: run `make deps` (scripts/deps.sh installs Debian's webp package)")
	}
	dir := t.TempDir()
	alpha := alphaPNG(t)
	for _, c := range webpCases {
		if c.args[0] == "-lossless" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			src := alpha
			if c.src != nil {
				src = testassets.Path(t, c.src...)
			}
			p := filepath.Join(dir, c.name+".webp")
			cwebpTo(t, p, src, c.args...)
			if out, err := exec.Command(dwebp, "-quiet", "-yuv", p, "-o", p+".yuv").CombinedOutput(); err != nil {
				t.Fatalf("dwebp: %v\n%s", err, out)
			}
			want, err := os.ReadFile(p + ".yuv")
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(p)
			m, err := webp.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			var yc *image.YCbCr
			var a *image.NYCbCrA
			switch m := m.(type) {
			case *image.YCbCr:
				yc = m
			case *image.NYCbCrA:
				yc, a = &m.YCbCr, m
			default:
				t.Fatalf("decoded to %T", m)
			}
			w, h := yc.Rect.Dx(), yc.Rect.Dy()
			cw, ch := (w+1)/2, (h+1)/2
			var got []uint8
			for y := 0; y < h; y++ {
				got = append(got, yc.Y[y*yc.YStride:y*yc.YStride+w]...)
			}
			for _, plane := range [][]uint8{yc.Cb, yc.Cr} {
				for y := 0; y < ch; y++ {
					got = append(got, plane[y*yc.CStride:y*yc.CStride+cw]...)
				}
			}
			if a != nil { // then the alpha plane
				for y := 0; y < h; y++ {
					got = append(got, a.A[y*a.AStride:y*a.AStride+w]...)
				}
			}
			if !bytes.Equal(got, want) {
				mad, maxd := webpDiff(got, want[:min(len(want), len(got))])
				t.Errorf("%dx%d: YUV planes (%d bytes) differ from libwebp's (%d): mean %.4f, max %d", w, h, len(got), len(want), mad, maxd)
			}
		})
	}
}

// webpFixtures are tiny WebPs made by cwebp from synthetic gradients
// (testdata/webp): the fuzz seeds and the edge cases below.
var webpFixtures = []struct {
	file       string
	w, h       int
	mode, kind string
}{
	{"lossy_2x2.webp", 2, 2, "RGB", "VP8 "},
	{"lossy_5x3.webp", 5, 3, "RGB", "VP8 "},
	{"lossy_alpha_5x3.webp", 5, 3, "RGBA", "VP8X"},
	{"lossless_alpha_5x3.webp", 5, 3, "RGBA", "VP8L"},
}

func readWebPFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webp", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestDecodeWebPFixtures: size, mode and chunk kind of each fixture, and
// every truncation of it fails with ErrCorrupt or ErrUnsupported, never
// with a panic or a half image.
func TestDecodeWebPFixtures(t *testing.T) {
	for _, f := range webpFixtures {
		t.Run(f.file, func(t *testing.T) {
			b := readWebPFixture(t, f.file)
			if got := string(b[12:16]); got != f.kind {
				t.Fatalf("first chunk %q, want %q", got, f.kind)
			}
			img, info, err := Decode(b, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if img.W != f.w || img.H != f.h || info.Mode != f.mode || info.Format != FormatWebP {
				t.Errorf("%dx%d %s %s, want %dx%d %s webp", img.W, img.H, info.Mode, info.Format, f.w, f.h, f.mode)
			}
			for n := 0; n < len(b); n++ {
				_, _, err := Decode(b[:n], DecodeOptions{})
				if err == nil || !(errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupported)) ||
					strings.Contains(err.Error(), "decoder failed") {
					t.Errorf("first %d bytes: %v", n, err)
				}
			}
		})
	}
}

func TestWebPHasAlpha(t *testing.T) {
	riff := func(chunks ...string) []byte {
		return []byte("RIFF\x00\x00\x00\x00WEBP" + strings.Join(chunks, ""))
	}
	chunk := func(fourcc, data string) string {
		n := len(data)
		s := fourcc + string([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}) + data
		if n%2 == 1 {
			s += "\x00"
		}
		return s
	}
	for _, c := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"vp8", riff(chunk("VP8 ", "xxxx")), false},
		{"vp8l opaque", riff(chunk("VP8L", "\x2f\x00\x00\x00\x00")), false},
		{"vp8l alpha bit", riff(chunk("VP8L", "\x2f\x00\x00\x00\x10")), true},
		{"vp8x alpha flag, vp8", riff(chunk("VP8X", "\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00"), chunk("ALPH", "a"), chunk("VP8 ", "x")), true},
		{"vp8x no flag", riff(chunk("VP8X", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), chunk("VP8 ", "x")), false},
		{"vp8x flag, vp8l without alpha", riff(chunk("VP8X", "\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00"), chunk("VP8L", "\x2f\x00\x00\x00\x00")), false},
		{"truncated chunk", riff("VP8L\xff\xff\x00\x00\x2f"), false},
		{"header only", riff(), false},
	} {
		if got := webpHasAlpha(c.b); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// FuzzDecodeWebP: any bytes after a WebP signature decode to an image of the
// header's size or fail with ErrCorrupt, ErrUnsupported or ErrPixelLimit,
// never through the decoder's panic recovery.
func FuzzDecodeWebP(f *testing.F) {
	for _, fx := range webpFixtures {
		f.Add(readWebPFixture(f, fx.file))
	}
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "))
	opt := DecodeOptions{MaxPixels: 1 << 20, IgnoreOrientation: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		img, _, err := Decode(b, opt)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrPixelLimit) {
				t.Fatalf("error wraps none of the sentinels: %v", err)
			}
			if strings.Contains(err.Error(), "decoder failed") {
				t.Fatalf("decoder panicked: %v", err)
			}
			return
		}
		_, w, h, err := DecodeConfig(b)
		if err != nil || img.W != w || img.H != h || len(img.Pix) != 3*w*h {
			t.Fatalf("decoded %dx%d (%d bytes), header %dx%d (%v)", img.W, img.H, len(img.Pix), w, h, err)
		}
	})
}

// BenchmarkDecodeWebP: decoding a 500x375 photo (Abyssinian_105) as lossy
// WebP at quality 90, and lossless.
func BenchmarkDecodeWebP(b *testing.B) {
	src := testassets.Path(b, "pets-3breeds", "images", "Abyssinian_105.jpg")
	for _, c := range []struct {
		name string
		args []string
	}{{"lossy_q90", []string{"-q", "90"}}, {"lossless", []string{"-lossless"}}} {
		data := cwebp(b, src, c.args...)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Decode(data, DecodeOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWebPYUVToRGB: the colour conversion alone (fancy upsampling and
// fixed-point BT.601) of the 500x375 lossy photo's planes.
func BenchmarkWebPYUVToRGB(b *testing.B) {
	data := cwebp(b, testassets.Path(b, "pets-3breeds", "images", "Abyssinian_105.jpg"), "-q", "90")
	m, err := webp.Decode(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := webpYUVToRGB(m.(*image.YCbCr)); err != nil {
			b.Fatal(err)
		}
	}
}
