package imaging

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"petbreed/internal/testassets"
)

// cwebp converts a shared photo to WebP with libwebp's encoder (Debian's
// webp package, installed by make test).
func cwebp(t *testing.T, src string, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("cwebp")
	if err != nil {
		t.Skip("cwebp not installed (scripts/deps.sh installs it)")
	}
	out := filepath.Join(t.TempDir(), "out.webp")
	cmd := exec.Command(bin, append(append(args, "-quiet", src, "-o"), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cwebp: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
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
