package report

import (
	"bytes"
	"image"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
)

// cellSample returns the colour luma inside cell [i][j], away from the
// count written at its centre and from the borders.
func cellSample(img image.Image, l cmLayout, i, j int) float64 {
	r := l.cellRect(i, j)
	off := l.cell / 6
	return luma(img.At(r.Min.X+off, r.Min.Y+off))
}

func TestConfusionPNG3(t *testing.T) {
	m := [][]int{{50, 3, 0}, {7, 38, 5}, {1, 2, 44}}
	labels := []string{"cat", "dog", "bird"}
	b, err := ConfusionPNG(m, labels)
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, b)
	w, h := ConfusionSize(labels)
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Fatalf("size %v, want ConfusionSize %dx%d", got, w, h)
	}
	if w < 400 || h < 400 || w > 900 || h > 900 {
		t.Errorf("3-class image is %dx%d, expected about 500x500", w, h)
	}
	if n := distinctColours(img); n < 20 {
		t.Errorf("only %d distinct colours", n)
	}

	_, l, err := renderConfusion(m, labels)
	if err != nil {
		t.Fatal(err)
	}
	if l.cell != 110 {
		t.Errorf("cell %d px, want 110 for 3 classes", l.cell)
	}
	// The large diagonal counts are dark, the empty cell [0][2] is near white,
	// and colours follow the row-normalised value: 7/50 in row 1 is darker
	// than 3/53 in row 0.
	diag, empty := cellSample(img, l, 0, 0), cellSample(img, l, 0, 2)
	if !(diag < 100 && empty > 240) {
		t.Errorf("diagonal luma %.0f, empty cell luma %.0f: want dark and near white", diag, empty)
	}
	if a, b := cellSample(img, l, 1, 0), cellSample(img, l, 0, 1); !(a < b) {
		t.Errorf("row-normalised colour: cell[1][0] luma %.0f should be darker than cell[0][1] %.0f", a, b)
	}
	// The count in a dark cell is written in white, in a light cell in black:
	// the centre region of [0][0] holds white pixels, of [1][0] black ones.
	if lightest, _ := extremes(img, centreOf(l.cellRect(0, 0), l.cell/3)); lightest < 240 {
		t.Errorf("no white text in the dark cell (lightest luma %.0f)", lightest)
	}
	if _, darkest := extremes(img, centreOf(l.cellRect(1, 0), l.cell/3)); darkest > 40 {
		t.Errorf("no black text in the light cell (darkest luma %.0f)", darkest)
	}
	// Short names: written horizontally.
	if l.xLabelAngle != 0 {
		t.Errorf("x labels rotated %.2f rad, want horizontal for short names", l.xLabelAngle)
	}
}

func centreOf(r image.Rectangle, half int) image.Rectangle {
	c := image.Pt((r.Min.X+r.Max.X)/2, (r.Min.Y+r.Max.Y)/2)
	return image.Rect(c.X-half, c.Y-half, c.X+half, c.Y+half)
}

func extremes(img image.Image, r image.Rectangle) (lightest, darkest float64) {
	darkest = 256
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			v := luma(img.At(x, y))
			lightest = math.Max(lightest, v)
			darkest = math.Min(darkest, v)
		}
	}
	return lightest, darkest
}

func TestConfusionPNG37(t *testing.T) {
	m := petConfusion()
	img, l, err := renderConfusion(m, petLabels)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ConfusionPNG(m, petLabels)
	if err != nil {
		t.Fatal(err)
	}
	dec := decodePNG(t, b)
	if dec.Bounds() != img.Bounds() {
		t.Fatalf("decoded bounds %v, rendered %v", dec.Bounds(), img.Bounds())
	}
	w, h := ConfusionSize(petLabels)
	if got := dec.Bounds().Size(); got.X != w || got.Y != h {
		t.Fatalf("size %v, want ConfusionSize %dx%d", got, w, h)
	}
	if l.cell != 34 || w > 2000 || h > 2000 {
		t.Errorf("37 classes: cell %d px, image %dx%d; want 34 px cells and under 2000 px", l.cell, w, h)
	}
	if n := distinctColours(dec); n < 50 {
		t.Errorf("only %d distinct colours", n)
	}
	for i := range m {
		if i == 20 { // empty row: white
			if v := cellSample(dec, l, i, i); v < 240 {
				t.Errorf("empty row %d: diagonal luma %.0f, want white", i, v)
			}
			continue
		}
		if d, z := cellSample(dec, l, i, i), cellSample(dec, l, i, (i+10)%len(m)); !(d < 120 && z > 235) {
			t.Errorf("row %d: diagonal luma %.0f vs empty cell %.0f", i, d, z)
		}
	}
	// Long names are rotated and stay inside the image; the grid, the row
	// names and the colour bar too.
	if l.xLabelAngle == 0 {
		t.Error("long names not rotated")
	}
	checkLayoutInside(t, l)
}

// checkLayoutInside checks that every drawn label lies inside the image and
// that the row names do not run into the grid.
func checkLayoutInside(t *testing.T, l cmLayout) {
	t.Helper()
	W, H := vg.Length(l.W), vg.Length(l.H)
	ys := sty(l.labelSize, false, nil)
	var maxLW float64
	for _, s := range l.labels {
		maxLW = math.Max(maxLW, float64(ys.Width(s)))
	}
	lc := l
	xs := lc.xLabelStyle(maxLW)
	gx, gy, gs := vg.Length(l.gridX), vg.Length(l.gridY), vg.Length(l.gridSize())
	for k, s := range l.labels {
		c := vg.Length(float64(k)*float64(l.cell) + float64(l.cell)/2)
		// Column name: anchor (gx+c, gy+gs+offset) in top-left coordinates;
		// Rectangle is in y-up coordinates around the anchor.
		r := xs.Rectangle(s)
		left, right := gx+c+r.Min.X, gx+c+r.Max.X
		top, bottom := gy+gs+vg.Length(l.xLabelOffset)-r.Max.Y, gy+gs+vg.Length(l.xLabelOffset)-r.Min.Y
		if left < 0 || right > W || top < gy+gs || bottom > H {
			t.Errorf("column name %q spans x %.0f..%.0f y %.0f..%.0f outside %vx%v or into the grid", s, left, right, top, bottom, W, H)
		}
		// Row name: right-aligned at gx-tickLen-4.
		if x := gx - vg.Length(l.tickLen+4) - ys.Width(s); x < 0 {
			t.Errorf("row name %q starts at x=%.0f", s, x)
		}
	}
	if l.cbarX+l.cbarW > l.W || l.gridY+l.gridSize() > l.H {
		t.Error("grid or colour bar outside the image")
	}
}

func TestConfusionLongNames(t *testing.T) {
	labels := []string{
		"American Pit Bull Terrier", "Staffordshire Bull Terrier",
		"A breed with a really very extremely long name that goes on", "X",
	}
	m := [][]int{{9, 1, 0, 0}, {2, 8, 0, 0}, {0, 0, 5, 5}, {0, 0, 0, 1}}
	_, l, err := renderConfusion(m, labels)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.labels[2]; !strings.HasSuffix(got, "…") || len([]rune(got)) != maxLabelRunes {
		t.Errorf("long name shown as %q, want it cut to %d runes with …", got, maxLabelRunes)
	}
	checkLayoutInside(t, l)
	// One class and many classes lay out too.
	for _, n := range []int{1, 2, 10, 150} {
		labels := make([]string, n)
		m := make([][]int, n)
		for i := range labels {
			labels[i] = strings.Repeat("Breed ", 1+i%5)
			m[i] = make([]int, n)
			m[i][i] = 1000 * i
		}
		img, l, err := renderConfusion(m, labels)
		if err != nil {
			t.Fatalf("%d classes: %v", n, err)
		}
		if s := img.Bounds().Size(); s.X > maxSide || s.Y > maxSide {
			t.Errorf("%d classes: %v image", n, s)
		}
		checkLayoutInside(t, l)
	}
}

func TestConfusionDeterministic(t *testing.T) {
	a, err := ConfusionPNG(petConfusion(), petLabels)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ConfusionPNG(petConfusion(), petLabels)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same inputs gave different PNG bytes")
	}
}

func TestConfusionAllZero(t *testing.T) {
	b, err := ConfusionPNG([][]int{{0, 0}, {0, 0}}, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	decodePNG(t, b)
}

func TestConfusionErrors(t *testing.T) {
	big := make([][]int, MaxConfusionClasses+1)
	bigLabels := make([]string, len(big))
	for i := range big {
		big[i] = make([]int, len(big))
	}
	for _, tc := range []struct {
		name   string
		m      [][]int
		labels []string
		want   string
	}{
		{"nil", nil, nil, "empty"},
		{"empty", [][]int{}, []string{}, "empty"},
		{"not square", [][]int{{1, 2, 3}, {4, 5, 6}}, []string{"a", "b"}, "not square"},
		{"ragged", [][]int{{1, 2}, {3}}, []string{"a", "b"}, "not square"},
		{"empty row", [][]int{{}}, []string{"a"}, "not square"},
		{"too few labels", [][]int{{1, 0}, {0, 1}}, []string{"a"}, "labels"},
		{"too many labels", [][]int{{1}}, []string{"a", "b"}, "labels"},
		{"negative", [][]int{{1, -1}, {0, 1}}, []string{"a", "b"}, "negative"},
		{"too many classes", big, bigLabels, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ConfusionPNG(tc.m, tc.labels)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if b != nil {
				t.Error("image returned with an error")
			}
		})
	}
}

func TestBlues(t *testing.T) {
	if bluesAt(0) != blues[0] || bluesAt(1) != blues[len(blues)-1] || bluesAt(math.NaN()) != blues[0] || bluesAt(7) != blues[len(blues)-1] {
		t.Error("colour map ends")
	}
	prev := 256.0
	for v := 0.0; v <= 1; v += 0.05 {
		l := luma(bluesAt(v))
		if l > prev {
			t.Errorf("colour map not darkening at %.2f", v)
		}
		prev = l
	}
	if isDark(bluesAt(0.2)) || !isDark(bluesAt(0.9)) {
		t.Error("text colour threshold")
	}
}
