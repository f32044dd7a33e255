package report

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Point is one value of a series at an epoch.
type Point struct {
	Epoch int     `json:"epoch"`
	Value float64 `json:"value"`
}

// Bounds of the Curves image size, in pixels.
const (
	MinCurvesWidth  = 200
	MinCurvesHeight = 150
)

// Series colours (matplotlib's tab10 blue and orange) and marker shapes.
var (
	trainColor = hexColor("#1f77b4")
	valColor   = hexColor("#ff7f0e")
	gridColor  = color.RGBA{R: 0xdd, G: 0xdd, B: 0xdd, A: 0xff}
)

// Curves draws the train and validation series of one metric against the
// epoch as a w×h pixel PNG: titled, with axis labels ("Epoch" and ylabel),
// a legend, a light grid, lines with markers (circles and a solid line for
// train, triangles and a dashed line for validation). The y range is padded by 8% of the data span (clamped at 0
// for non-negative data, and at 100% when percent is set and the data fit).
// With percent, values are taken as fractions and multiplied by 100, and the
// y tick labels carry a "%" sign.
//
// Points are drawn in epoch order (the inputs are not modified). Non-finite
// values (a diverged loss) are skipped. val may be empty (then only train is
// drawn); it is an error if train, or a non-empty val, has no finite point, or if w or h is outside [MinCurvesWidth|MinCurvesHeight, 10000].
// The fonts scale with the image: a 800×500 image is drawn at 96 DPI.
func Curves(title, ylabel string, train, val []Point, percent bool, w, h int) ([]byte, error) {
	if w < MinCurvesWidth || h < MinCurvesHeight || w > maxSide || h > maxSide {
		return nil, fmt.Errorf("report: curves size %dx%d out of range [%dx%d, %dx%d]",
			w, h, MinCurvesWidth, MinCurvesHeight, maxSide, maxSide)
	}
	scale := 1.0
	if percent {
		scale = 100
	}
	tr, err := seriesXYs("train", train, scale)
	if err != nil {
		return nil, err
	}
	// A run without validation (a refit on all the training data) has
	// only the train series.
	var va plotter.XYs
	if len(val) > 0 {
		if va, err = seriesXYs("validation", val, scale); err != nil {
			return nil, err
		}
	}

	var out []byte
	err = safely("draw curves", func() error {
		dpi := curvesDPI(w, h)
		// Canvas size in points, for the tick densities.
		wPt, hPt := float64(w)*72/float64(dpi), float64(h)*72/float64(dpi)
		p, err := curvesPlot(title, ylabel, tr, va, percent, wPt, hPt)
		if err != nil {
			return err
		}
		c := newCanvas(w, h, dpi)
		// A margin around the plot so nothing touches the image border.
		p.Draw(draw.Crop(draw.New(c), 6, -12, 4, -6))
		out, err = encodePNG(c.Image())
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// curvesDPI scales text and lines with the image: 96 DPI for 800×500,
// proportionally more (or less, down to 72) otherwise.
func curvesDPI(w, h int) int {
	s := math.Min(float64(w)/800, float64(h)/500)
	s = math.Max(0.75, math.Min(s, 4))
	return int(math.Round(96 * s))
}

// seriesXYs copies the finite points of s, sorted by epoch, scaling values.
func seriesXYs(name string, s []Point, scale float64) (plotter.XYs, error) {
	if len(s) == 0 {
		return nil, fmt.Errorf("report: %s series is empty", name)
	}
	xys := make(plotter.XYs, 0, len(s))
	for _, pt := range s {
		v := pt.Value * scale
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		xys = append(xys, plotter.XY{X: float64(pt.Epoch), Y: v})
	}
	if len(xys) == 0 {
		return nil, fmt.Errorf("report: %s series has no finite value", name)
	}
	sort.SliceStable(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
	return xys, nil
}

func curvesPlot(title, ylabel string, tr, va plotter.XYs, percent bool, wPt, hPt float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sansBold
	p.Title.TextStyle.Font.Size = 13
	p.Title.Padding = 6
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = sans
		ax.Label.TextStyle.Font.Size = 11
		ax.Tick.Label.Font = sans
		ax.Tick.Label.Font.Size = 9
	}
	p.X.Label.Text = "Epoch"
	p.Y.Label.Text = ylabel
	clamp := func(v float64, lo, hi int) int { return min(max(int(v), lo), hi) }
	p.X.Tick.Marker = epochTicks(clamp(wPt/45, 3, 15))
	suffix := ""
	if percent {
		suffix = "%"
	}
	p.Y.Tick.Marker = niceTicks(clamp(hPt/45, 3, 10), suffix)
	// The ranges are padded below, so the axes can meet at the corner.
	p.X.Padding, p.Y.Padding = 0, 0

	grid := plotter.NewGrid()
	grid.Vertical.Color = gridColor
	grid.Horizontal.Color = gridColor
	grid.Vertical.Width = vg.Points(0.5)
	grid.Horizontal.Width = vg.Points(0.5)
	p.Add(grid)

	type series struct {
		name  string
		xys   plotter.XYs
		col   color.Color
		glyph draw.GlyphDrawer
		dash  []vg.Length
	}
	for _, s := range []series{
		{"train", tr, trainColor, draw.CircleGlyph{}, nil},
		{"validation", va, valColor, draw.PyramidGlyph{}, []vg.Length{vg.Points(5), vg.Points(2.5)}},
	} {
		if len(s.xys) == 0 {
			continue
		}
		line, pts, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			return nil, fmt.Errorf("report: %s series: %w", s.name, err)
		}
		line.Color = s.col
		line.Width = vg.Points(1.6)
		line.Dashes = s.dash
		pts.Color = s.col
		pts.Shape = s.glyph
		pts.Radius = vg.Points(2.6)
		if len(s.xys) > 60 { // dense series: markers would form a band
			pts.Radius = vg.Points(1.4)
		}
		p.Add(line, pts)
		p.Legend.Add(s.name, line, pts)
	}

	// Axis ranges: x padded so end markers are not cut, y padded by 8%.
	xmin, xmax := tr[0].X, tr[len(tr)-1].X
	if len(va) > 0 {
		xmin, xmax = math.Min(xmin, va[0].X), math.Max(xmax, va[len(va)-1].X)
	}
	xpad := math.Max(0.3, 0.03*(xmax-xmin))
	p.X.Min, p.X.Max = xmin-xpad, xmax+xpad
	p.Y.Min, p.Y.Max = yRange(tr, va, percent)
	if math.IsInf(p.Y.Max-p.Y.Min, 0) || math.IsInf(p.X.Max-p.X.Min, 0) {
		return nil, fmt.Errorf("report: values too large to plot (y from %g to %g)", p.Y.Min, p.Y.Max)
	}

	p.Legend.TextStyle.Font = sans
	p.Legend.TextStyle.Font.Size = 10
	p.Legend.ThumbnailWidth = vg.Points(28)
	p.Legend.Top, p.Legend.Left = legendCorner(p, tr, va)
	p.Legend.XOffs = vg.Points(-6)
	if p.Legend.Left {
		p.Legend.XOffs = vg.Points(6)
	}
	p.Legend.YOffs = vg.Points(-5)
	if !p.Legend.Top {
		p.Legend.YOffs = vg.Points(5)
	}
	return p, nil
}

// yRange returns the padded y range of both series.
func yRange(tr, va plotter.XYs, percent bool) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range []plotter.XYs{tr, va} {
		for _, xy := range s {
			lo = math.Min(lo, xy.Y)
			hi = math.Max(hi, xy.Y)
		}
	}
	span := hi - lo
	pad := 0.08 * span
	if hi == lo { // a flat series: centre it in a ±10% band (±0.5 around 0)
		pad = math.Abs(hi) * 0.1
		if pad == 0 {
			pad = 0.5
		}
	}
	dlo, dhi := lo, hi
	lo, hi = lo-pad, hi+pad
	if dlo >= 0 && lo < 0 {
		lo = 0
	}
	if percent && dhi <= 100 && hi > 100 {
		hi = 100
	}
	if hi <= lo { // all values 0 (or 100%) with clamping: reopen the range
		hi, lo = dhi+pad, dlo-pad
	}
	return lo, hi
}

// legendCorner picks the plot corner whose region holds the fewest data
// points (top right on ties), so the legend does not hide the curves.
func legendCorner(p *plot.Plot, tr, va plotter.XYs) (top, left bool) {
	type corner struct{ top, left bool }
	corners := []corner{{true, false}, {false, false}, {true, true}, {false, true}}
	best, bestN := corners[0], math.MaxInt
	for _, c := range corners {
		n := 0
		for _, s := range []plotter.XYs{tr, va} {
			for _, xy := range s {
				nx := (xy.X - p.X.Min) / (p.X.Max - p.X.Min)
				ny := (xy.Y - p.Y.Min) / (p.Y.Max - p.Y.Min)
				inX := nx >= 0.55
				if c.left {
					inX = nx <= 0.45
				}
				inY := ny >= 0.6
				if !c.top {
					inY = ny <= 0.4
				}
				if inX && inY {
					n++
				}
			}
		}
		if n < bestN {
			best, bestN = c, n
		}
	}
	return best.top, best.left
}

// epochTicks returns a ticker labelling whole epochs, at most maxLabels of
// them (steps 1, 2, 5, 10, 20, 50, …), with unlabelled minor ticks on the
// epochs in between.
func epochTicks(maxLabels int) plot.TickerFunc {
	return func(min, max float64) []plot.Tick {
		lo, hi := math.Ceil(min), math.Floor(max)
		if !(hi >= lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
			return nil
		}
		count := hi - lo + 1
		step := 1.0
	search:
		for mult := 1.0; ; mult *= 10 {
			for _, m := range []float64{1, 2, 5} {
				step = m * mult
				if count/step <= float64(maxLabels) {
					break search
				}
			}
		}
		var ticks []plot.Tick
		if step > 1 && count <= 200 {
			for e := lo; e <= hi; e++ {
				if math.Mod(e, step) != 0 {
					ticks = append(ticks, plot.Tick{Value: e}) // minor
				}
			}
		}
		for e := math.Ceil(lo/step)*step + 0; e <= hi; e += step { // +0 turns -0 into 0
			ticks = append(ticks, plot.Tick{Value: e, Label: strconv.FormatFloat(e, 'f', -1, 64)})
		}
		return ticks
	}
}

// niceTicks returns a ticker with at most about target labelled ticks at
// round values (steps 1, 2, 2.5, 5 × 10^k), each label followed by suffix.
func niceTicks(target int, suffix string) plot.TickerFunc {
	return func(min, max float64) []plot.Tick {
		span := max - min
		if !(span > 0) || math.IsInf(span, 0) {
			return []plot.Tick{{Value: min, Label: strconv.FormatFloat(min, 'g', 4, 64) + suffix}}
		}
		mag := math.Pow(10, math.Floor(math.Log10(span/float64(target))))
		step := 0.0
		for _, m := range []float64{1, 2, 2.5, 5, 10} {
			if step = m * mag; span/step <= float64(target) {
				break
			}
		}
		decimals := 0 // the fewest that show the step exactly
		for scaled := step; decimals < 12 && math.Abs(scaled-math.Round(scaled)) > 1e-6*scaled; decimals++ {
			scaled *= 10
		}
		first := math.Ceil(min/step - 1e-9)
		var ticks []plot.Tick
		for k := first; k*step <= max+step*1e-9; k++ {
			v := k * step
			if math.Abs(v) < step*1e-9 {
				v = 0
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64) + suffix})
		}
		return ticks
	}
}
