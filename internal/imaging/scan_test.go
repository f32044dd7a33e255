package imaging

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"petbreed/internal/imaging/jpegtest"
	"petbreed/internal/testassets"
)

// smoothGrey is a deterministic w×h grey image of gentle gradients, cheap to
// compress.
func smoothGrey(w, h int) []byte {
	pix := make([]byte, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			pix[y*w+x] = uint8((x*3 + y*5 + (x*y)>>9) >> 4)
		}
	}
	return pix
}

// blockyGrey is a w×h grey image flat within each 8x8 block: every AC
// coefficient is zero, so an AC scan takes a few bytes.
func blockyGrey(w, h int) []byte {
	pix := make([]byte, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			pix[y*w+x] = uint8(x/8*3 + y/8*5)
		}
	}
	return pix
}

// manyScansJPEG is the attack the scan limit exists for: a 2048x2048
// progressive JPEG of a few hundred KB whose last scan (a few bytes of
// end-of-band runs) is repeated 20,000 times. Each scan is a pass over the
// image's 65,536 blocks: without a limit libjpeg spends many seconds on it
// (minutes at 4096x4096).
func manyScansJPEG(t testing.TB) []byte {
	t.Helper()
	const side, copies = 2048, 20000
	script := []jpegtest.Scan{{Comp: -1}, {Comp: 0, Ss: 1, Se: 62}, {Comp: 0, Ss: 63, Se: 63}}
	b, err := jpegtest.Encode(blockyGrey(side, side), side, side, 1, 90, jpegtest.Script, script)
	if err != nil {
		t.Fatal(err)
	}
	b, err = jpegtest.RepeatScan(b, 2, copies)
	if err != nil {
		t.Fatal(err)
	}
	if n := jpegtest.ScanCount(b); n != copies+3 {
		t.Fatalf("the test file has %d scans, want %d", n, copies+3)
	}
	return b
}

func TestJPEGScanLimit(t *testing.T) {
	many := manyScansJPEG(t)
	t.Logf("%d scans in %d bytes", jpegtest.ScanCount(many), len(many))
	start := time.Now()
	img, _, err := Decode(many, DecodeOptions{})
	took := time.Since(start)
	if !errors.Is(err, ErrTooManyScans) || img != nil {
		t.Fatalf("default limit: err = %v (after %v), want ErrTooManyScans", err, took)
	}
	if !strings.Contains(err.Error(), "too many scans: more than 100") {
		t.Errorf("error %q does not name the limit", err)
	}
	// Without the limit the decode takes 40 s or more here; the first 100
	// scans take about 0.1 s (a generous bound for a loaded machine).
	if took > 10*time.Second {
		t.Errorf("refusing took %v: the limit should stop libjpeg after 100 scans", took)
	}
	t.Logf("refused after %v: %v", took, err)

	// libjpeg's own encoder with the longest script it accepts: 704 scans.
	const side = 256
	grey := smoothGrey(side, side)
	valid, err := jpegtest.Encode(grey, side, side, 1, 90, jpegtest.Script, jpegtest.ManyScans(1))
	if err != nil {
		t.Fatal(err)
	}
	base, err := jpegtest.Encode(grey, side, side, 1, 90, jpegtest.Baseline, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := Decode(base, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := jpegtest.ScanCount(valid)
	tests := []struct {
		name string
		max  int
		err  error
	}{
		{"default", 0, ErrTooManyScans},
		{"no limit", -1, nil},
		{"limit = scans", n, nil},
		{"limit = scans-1", n - 1, ErrTooManyScans},
		{"limit 1", 1, ErrTooManyScans},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, _, err := Decode(valid, DecodeOptions{MaxScans: tt.max})
			if !errors.Is(err, tt.err) {
				t.Fatalf("%d scans, MaxScans %d: err = %v, want %v", n, tt.max, err, tt.err)
			}
			if err == nil && !bytes.Equal(img.Pix, want.Pix) {
				t.Error("the 704-scan file decodes differently from the baseline file")
			}
		})
	}
}

// TestProgressiveDecodesIdentically: progression only reorders the same
// quantised coefficients, so baseline, libjpeg's default progressive script
// and a file with a repeated first scan decode to the same pixels.
func TestProgressiveDecodesIdentically(t *testing.T) {
	photo, _, err := Decode(testassets.Read(t, "photos", "chelsea.png"), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	enc := func(p jpegtest.Progression) []byte {
		b, err := jpegtest.Encode(photo.Pix, photo.W, photo.H, 3, 90, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base, prog := enc(jpegtest.Baseline), enc(jpegtest.Simple)
	repeated, err := jpegtest.RepeatScan(prog, 1, 50)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := Decode(base, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"progressive": prog, "repeated scan": repeated} {
		got, _, err := Decode(b, DecodeOptions{})
		if err != nil {
			t.Fatalf("%s (%d scans): %v", name, jpegtest.ScanCount(b), err)
		}
		if !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("%s (%d scans) decodes differently from baseline", name, jpegtest.ScanCount(b))
		}
	}
}

func TestDecodeContext(t *testing.T) {
	t.Run("deadline stops libjpeg", func(t *testing.T) {
		many := manyScansJPEG(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		img, _, err := DecodeContext(ctx, many, DecodeOptions{MaxScans: -1})
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) || img != nil {
			t.Fatalf("err = %v after %v, want a deadline error", err, took)
		}
		if took > time.Second {
			t.Errorf("stopped after %v, want within a second of the 200 ms deadline", took)
		}
		t.Logf("stopped after %v: %v", took, err)
	})

	t.Run("cancelled before start", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, name := range []string{"cat_720p.jpg", "chelsea.png", "grace_hopper.bmp"} {
			start := time.Now()
			img, _, err := DecodeContext(ctx, testassets.Read(t, "photos", name), DecodeOptions{})
			if !errors.Is(err, context.Canceled) || img != nil {
				t.Errorf("%s: err = %v, want context.Canceled", name, err)
			}
			if took := time.Since(start); took > 50*time.Millisecond {
				t.Errorf("%s: took %v to refuse", name, took)
			}
		}
	})

	t.Run("deadline stops a Go decoder", func(t *testing.T) {
		big := bigPNG(t, 2000, 2000)
		start := time.Now()
		if _, _, err := Decode(big, DecodeOptions{}); err != nil {
			t.Fatal(err)
		}
		full := time.Since(start)
		ctx, cancel := context.WithTimeout(context.Background(), full/10)
		defer cancel()
		start = time.Now()
		_, _, err := DecodeContext(ctx, big, DecodeOptions{})
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want a deadline error", err)
		}
		if took > full/2 {
			t.Errorf("stopped after %v; the whole decode takes %v", took, full)
		}
		t.Logf("full decode %v, stopped after %v", full, took)
	})

	t.Run("background context decodes", func(t *testing.T) {
		data := testassets.Read(t, "photos", "cat_720p.jpg")
		want, _, err := Decode(data, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		got, _, err := DecodeContext(ctx, data, DecodeOptions{})
		if err != nil || !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("with a live context: err %v, same pixels %v", err, err == nil && bytes.Equal(got.Pix, want.Pix))
		}
	})
}
