package report

import (
	"bytes"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// countNear counts pixels within tol (per channel) of want.
func countNear(t *testing.T, b []byte, want color.RGBA, tol int) int {
	t.Helper()
	img := decodePNG(t, b)
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			d := func(a uint32, w uint8) int { return abs(int(a>>8) - int(w)) }
			if d(r, want.R) <= tol && d(g, want.G) <= tol && d(bb, want.B) <= tol {
				n++
			}
		}
	}
	return n
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestCurvesPNG(t *testing.T) {
	loss, valLoss, acc, valAcc := sampleCurves()
	for _, tc := range []struct {
		name       string
		train, val []Point
		percent    bool
		w, h       int
	}{
		{"loss", loss, valLoss, false, 800, 500},
		{"accuracy", acc, valAcc, true, 800, 500},
		{"small", loss, valLoss, false, MinCurvesWidth, MinCurvesHeight},
		{"large", acc, valAcc, true, 1600, 1000},
		{"odd size", loss, valLoss, false, 641, 377},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Curves(tc.name, "value", tc.train, tc.val, tc.percent, tc.w, tc.h)
			if err != nil {
				t.Fatal(err)
			}
			img := decodePNG(t, b)
			if got := img.Bounds().Size(); got.X != tc.w || got.Y != tc.h {
				t.Fatalf("size %v, want %dx%d", got, tc.w, tc.h)
			}
			if n := distinctColours(img); n < 20 {
				t.Errorf("only %d distinct colours: blank image?", n)
			}
			// Both series are drawn in their own colours.
			if n := countNear(t, b, trainColor, 40); n < 30 {
				t.Errorf("%d train-coloured pixels", n)
			}
			if n := countNear(t, b, valColor, 40); n < 30 {
				t.Errorf("%d validation-coloured pixels", n)
			}
			// The corner pixels are background.
			if c := img.At(0, 0); luma(c) < 250 {
				t.Errorf("top-left pixel %v, want white", c)
			}
		})
	}
}

func TestCurvesDeterministic(t *testing.T) {
	_, _, acc, valAcc := sampleCurves()
	a, err := Curves("Accuracy", "accuracy", acc, valAcc, true, 800, 500)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Curves("Accuracy", "accuracy", acc, valAcc, true, 800, 500)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same inputs gave different PNG bytes")
	}
	// Input order does not matter (points are drawn in epoch order) and the
	// inputs are not modified.
	rev := make([]Point, len(acc))
	for i, p := range acc {
		rev[len(acc)-1-i] = p
	}
	first := rev[0]
	c, err := Curves("Accuracy", "accuracy", rev, valAcc, true, 800, 500)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, c) {
		t.Error("reversed input gave a different image")
	}
	if rev[0] != first {
		t.Error("input slice was modified")
	}
}

func TestCurvesEdgeSeries(t *testing.T) {
	dir := os.Getenv("REPORT_PNG_DIR")
	for _, tc := range []struct {
		name       string
		train, val []Point
		percent    bool
	}{
		{"one-point", []Point{{1, 0.5}}, []Point{{1, 0.4}}, true},
		{"constant", []Point{{1, 2}, {2, 2}, {3, 2}}, []Point{{1, 2}, {2, 2}}, false},
		{"zeros", []Point{{0, 0}, {1, 0}}, []Point{{0, 0}}, false},
		{"perfect", []Point{{1, 1}, {2, 1}}, []Point{{1, 1}, {2, 1}}, true},
		{"diverged", []Point{{1, 1.2}, {2, math.NaN()}, {3, math.Inf(1)}, {4, 0.9}}, []Point{{1, 1.3}, {4, 1.1}}, false},
		{"negative", []Point{{1, -3}, {2, -1}}, []Point{{1, -2}, {2, 0.5}}, false},
		{"long", longSeries(300, 0), longSeries(300, 0.1), false},
		{"far epochs", []Point{{0, 1}, {1000000, 2}}, []Point{{5, 1.5}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Curves(tc.name, "y", tc.train, tc.val, tc.percent, 640, 400)
			if err != nil {
				t.Fatal(err)
			}
			img := decodePNG(t, b)
			if n := distinctColours(img); n < 10 {
				t.Errorf("only %d distinct colours", n)
			}
			if dir != "" {
				_ = os.WriteFile(filepath.Join(dir, "report-edge-"+strings.ReplaceAll(tc.name, " ", "-")+".png"), b, 0o644)
			}
		})
	}
}

func longSeries(n int, off float64) []Point {
	s := make([]Point, n)
	for i := range s {
		s[i] = Point{i + 1, 2/math.Sqrt(float64(i+1)) + off}
	}
	return s
}

// TestCurvesTrainOnly: a refit run has no validation series.
func TestCurvesTrainOnly(t *testing.T) {
	b, err := Curves("Loss", "loss", []Point{{1, 0.9}, {2, 0.5}, {3, 0.4}}, nil, false, 640, 400)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != 640 {
		t.Fatalf("%v %v", err, img.Bounds())
	}
	// The validation colour appears nowhere.
	for y := 0; y < 400; y++ {
		for x := 0; x < 640; x++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r>>8 == 0xff && g>>8 == 0x7f && bl>>8 == 0x0e {
				t.Fatalf("validation colour at %d,%d", x, y)
			}
		}
	}
}

func TestCurvesErrors(t *testing.T) {
	ok := []Point{{1, 0.5}, {2, 0.6}}
	nan := []Point{{1, math.NaN()}}
	for _, tc := range []struct {
		name       string
		train, val []Point
		w, h       int
		want       string
	}{
		{"empty train", nil, ok, 800, 500, "train series is empty"},
		{"all-NaN val", ok, nan, 800, 500, "validation series has no finite value"},
		{"all NaN", nan, ok, 800, 500, "no finite value"},
		{"zero size", ok, ok, 0, 0, "size"},
		{"negative size", ok, ok, -800, 500, "size"},
		{"too small", ok, ok, 50, 40, "size"},
		{"too large", ok, ok, 20000, 500, "size"},
		{"huge values", []Point{{1, 1e308}, {2, -1e308}}, ok, 800, 500, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Curves("t", "y", tc.train, tc.val, false, tc.w, tc.h)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if b != nil {
				t.Error("image returned with an error")
			}
		})
	}
}

func TestYRange(t *testing.T) {
	for _, tc := range []struct {
		name         string
		tr, va       []Point
		percent      bool
		loMax, hiMin float64 // the range must include [loMax, hiMin]
		loMin, hiMax float64 // and stay within [loMin, hiMax]
	}{
		{"percent", []Point{{1, 0.31}, {2, 0.9}}, []Point{{1, 0.45}}, true, 31, 90, 0, 100},
		{"percent clamps at 100", []Point{{1, 0.5}, {2, 1}}, []Point{{1, 0.6}}, true, 50, 100, 0, 100},
		{"loss clamps at 0", []Point{{1, 0.01}, {2, 3}}, []Point{{1, 1}}, false, 0.01, 3, 0, 3.5},
		{"padded", []Point{{1, 10}, {2, 20}}, []Point{{1, 15}}, false, 9.5, 20.5, 9, 21},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scale := 1.0
			if tc.percent {
				scale = 100
			}
			tr, _ := seriesXYs("train", tc.tr, scale)
			va, _ := seriesXYs("val", tc.va, scale)
			lo, hi := yRange(tr, va, tc.percent)
			if lo > tc.loMax || hi < tc.hiMin || lo < tc.loMin || hi > tc.hiMax {
				t.Errorf("range [%g, %g], want it within [%g, %g] and covering [%g, %g]", lo, hi, tc.loMin, tc.hiMax, tc.loMax, tc.hiMin)
			}
		})
	}
}

func TestTicks(t *testing.T) {
	got := []string{}
	for _, tk := range epochTicks(12)(0.7, 12.3) {
		if tk.Label != "" {
			got = append(got, tk.Label)
		}
	}
	if want := "1 2 3 4 5 6 7 8 9 10 11 12"; strings.Join(got, " ") != want {
		t.Errorf("epoch ticks %q, want %q", got, want)
	}
	got = got[:0]
	for _, tk := range epochTicks(10)(-2, 303) {
		if tk.Label != "" {
			got = append(got, tk.Label)
		}
	}
	if want := "0 50 100 150 200 250 300"; strings.Join(got, " ") != want {
		t.Errorf("epoch ticks %q, want %q", got, want)
	}
	got = got[:0]
	for _, tk := range niceTicks(8, "%")(26.2, 95.8) {
		got = append(got, tk.Label)
	}
	if want := "30% 40% 50% 60% 70% 80% 90%"; strings.Join(got, " ") != want {
		t.Errorf("percent ticks %q, want %q", got, want)
	}
	got = got[:0]
	for _, tk := range niceTicks(8, "")(0.18, 3.1) {
		got = append(got, tk.Label)
	}
	if want := "0.5 1.0 1.5 2.0 2.5 3.0"; strings.Join(got, " ") != want {
		t.Errorf("loss ticks %q, want %q", got, want)
	}
}
