package imaging

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"petbreed"
	"petbreed/internal/testassets"
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
// the shared photos at test time.
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
	modes := pilDecode(t, paths)
	for i, c := range webpCases {
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(paths[i])
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(paths[i] + ".rgb")
			if err != nil {
				t.Fatal(err)
			}
			img, info, err := Decode(data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if modes[paths[i]] != c.mode || info.Mode != c.mode {
				t.Errorf("mode: Pillow %s, petbreed %s, want %s", modes[paths[i]], info.Mode, c.mode)
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
			wantCrop, err := os.ReadFile(paths[i] + ".crop.rgb")
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
