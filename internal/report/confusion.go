package report

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"
	"unicode/utf8"

	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// MaxConfusionClasses is the largest class count ConfusionPNG draws.
const MaxConfusionClasses = 1000

// maxLabelRunes is where long class names are cut (with "…") in the image.
const maxLabelRunes = 32

// blues is matplotlib's "Blues" colour map (9 anchors, white to dark blue),
// the one scikit-learn's ConfusionMatrixDisplay uses.
var blues = []color.RGBA{
	hexColor("#f7fbff"), hexColor("#deebf7"), hexColor("#c6dbef"),
	hexColor("#9ecae1"), hexColor("#6baed6"), hexColor("#4292c6"),
	hexColor("#2171b5"), hexColor("#08519c"), hexColor("#08306b"),
}

var (
	cellLineColor  = color.RGBA{R: 0xd0, G: 0xd0, B: 0xd0, A: 0xff}
	zeroCountColor = color.RGBA{R: 0xb0, G: 0xb0, B: 0xb0, A: 0xff}
)

// bluesAt maps v in [0, 1] onto the Blues colour map (linear between anchors).
func bluesAt(v float64) color.RGBA {
	if !(v > 0) {
		return blues[0]
	}
	if v >= 1 {
		return blues[len(blues)-1]
	}
	f := v * float64(len(blues)-1)
	i := int(f)
	t := f - float64(i)
	a, b := blues[i], blues[i+1]
	mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + t*(float64(y)-float64(x)))) }
	return color.RGBA{R: mix(a.R, b.R), G: mix(a.G, b.G), B: mix(a.B, b.B), A: 255}
}

// isDark reports whether black text would be hard to read on c.
func isDark(c color.RGBA) bool {
	lum := 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)
	return lum < 0.5*255
}

// ConfusionPNG draws a confusion matrix (confusion[true][predicted] counts)
// as a heat map in the style of scikit-learn's ConfusionMatrixDisplay:
// true classes as rows top to bottom, predicted classes as columns left to
// right (names rotated 45°), the count written in each cell (white on dark
// cells, black on light ones, zeros in light grey), and a colour bar. The
// colour is the row-normalised value count/row total (the recall of the true
// class), so classes of different sizes compare; an empty row stays white.
// The title gives the overall accuracy and sample count.
//
// The image size follows from the class count and the class names, see
// ConfusionSize: cells are 660/n px, at most 110 (up to 6 classes) and at
// least 34 (from 20 classes; 37 classes give a 1258 px grid and, with the
// Oxford-IIIT Pet names, a 1575×1473 image); beyond 117 classes the grid is
// held at 4000 px, the counts are left out once cells are under 14 px and
// the names under 8 px.
// Fonts scale with the cells. Names longer than 32 characters are shortened
// with "…".
//
// It returns an error, never panics, on a non-square, empty or negative
// matrix, a label count that differs from the class count, or more than
// MaxConfusionClasses classes.
func ConfusionPNG(confusion [][]int, labels []string) ([]byte, error) {
	img, _, err := renderConfusion(confusion, labels)
	if err != nil {
		return nil, err
	}
	return encodePNG(img)
}

// ConfusionSize returns the pixel size of the image ConfusionPNG draws for
// these class labels.
func ConfusionSize(labels []string) (w, h int) {
	l := confusionLayout(labels)
	return l.W, l.H
}

// cmLayout is the geometry of a confusion-matrix image, in pixels with the
// origin at the top left (the canvas is drawn at 72 DPI: 1 pt = 1 px).
type cmLayout struct {
	n            int
	W, H         int
	cell         int
	gridX, gridY int // top-left corner of the cell grid
	labels       []string
	labelSize    vg.Length
	countSize    vg.Length
	axisSize     vg.Length
	titleSize    vg.Length
	tickLen      float64
	xLabelAngle  float64 // 0 (centred under the column) or 45°
	xLabelOffset float64 // from the grid bottom to the x-label anchors
	cbarX, cbarW int
	cbarCaption  bool
	pad          float64
}

// xLabelStyle sets the column-name angle from the widest name and returns
// the style to draw the names with.
func (l *cmLayout) xLabelStyle(maxLW float64) text.Style {
	xs := sty(l.labelSize, false, color.Black)
	if maxLW <= 0.92*float64(l.cell) {
		l.xLabelAngle = 0
		l.xLabelOffset = l.tickLen + 3
		xs.XAlign, xs.YAlign = draw.XCenter, draw.YTop
		return xs
	}
	l.xLabelAngle = math.Pi / 4
	l.xLabelOffset = l.tickLen + 3 + 0.4*float64(l.labelSize)
	xs.Rotation = l.xLabelAngle
	xs.XAlign, xs.YAlign = draw.XRight, draw.YCenter
	return xs
}

// cellRect is the pixel rectangle of cell [i][j] (true i, predicted j).
func (l cmLayout) cellRect(i, j int) image.Rectangle {
	x := l.gridX + j*l.cell
	y := l.gridY + i*l.cell
	return image.Rect(x, y, x+l.cell, y+l.cell)
}

func (l cmLayout) gridSize() int { return l.n * l.cell }

const (
	cbarCaptionText = "share of true class (recall)"
	xAxisText       = "Predicted label"
	yAxisText       = "True label"
)

func sty(f vg.Length, bold bool, c color.Color) text.Style {
	if bold {
		return textStyle(sansBold, f, c)
	}
	return textStyle(sans, f, c)
}

func shorten(s string) string {
	if utf8.RuneCountInString(s) <= maxLabelRunes {
		return s
	}
	r := []rune(s)
	return string(r[:maxLabelRunes-1]) + "…"
}

// cellSizeFor returns the cell side in pixels for n classes.
func cellSizeFor(n int) int {
	cell := 660 / max(n, 1)
	cell = min(max(cell, 34), 110)
	if n*cell > 4000 { // very many classes: keep the image bounded
		cell = max(4000/n, 4)
	}
	return cell
}

// confusionLayout computes the geometry for these labels.
func confusionLayout(labels []string) cmLayout {
	n := len(labels)
	l := cmLayout{n: n, cell: cellSizeFor(n), pad: 14, tickLen: 4}
	cell := float64(l.cell)
	l.labelSize = vg.Length(math.Min(math.Max(cell*0.40, 7), 15))
	l.axisSize = 15
	l.titleSize = 18
	l.countSize = vg.Length(math.Min(cell*0.36, 22))

	l.labels = make([]string, n)
	ls := sty(l.labelSize, false, color.Black)
	var maxLW float64
	for i, s := range labels {
		l.labels[i] = shorten(s)
		maxLW = math.Max(maxLW, float64(ls.Width(l.labels[i])))
	}
	axisH := float64(sty(l.axisSize, false, color.Black).Height(yAxisText))
	titleH := float64(sty(l.titleSize, true, color.Black).Height("Cg"))

	// Left: the rotated axis title, then right-aligned row names and ticks.
	left := l.pad + axisH + 10 + maxLW + l.tickLen + 4
	// Bottom: column names centred under their columns when they all fit,
	// else rotated 45° and hanging down-left from their anchors.
	xs := l.xLabelStyle(maxLW)
	var drop float64
	for j, s := range l.labels {
		r := xs.Rectangle(s)
		drop = math.Max(drop, -float64(r.Min.Y))
		// The name of column j must not leave the image on the left.
		need := l.pad - (float64(j)+0.5)*cell - float64(r.Min.X)
		left = math.Max(left, need)
	}
	bottom := l.xLabelOffset + drop + 12 + axisH + l.pad
	top := l.pad + titleH + 14

	// Right: colour bar, its tick labels and caption.
	grid := float64(l.gridSize())
	tickW := float64(sty(l.labelSize, false, color.Black).Width("100%"))
	l.cbarW = 18
	right := 24 + float64(l.cbarW) + l.tickLen + 4 + tickW + l.pad
	capSty := sty(l.labelSize, false, color.Black)
	if float64(capSty.Width(cbarCaptionText)) <= grid {
		l.cbarCaption = true
		right += 8 + float64(capSty.Height(cbarCaptionText))
	}

	l.gridX = int(math.Ceil(left))
	l.gridY = int(math.Ceil(top))
	l.cbarX = l.gridX + l.gridSize() + 24
	l.W = int(math.Ceil(float64(l.gridX) + grid + right))
	l.H = int(math.Ceil(float64(l.gridY) + grid + bottom))
	// Title and x-axis title must fit even over a narrow grid.
	titleW := float64(sty(l.titleSize, true, color.Black).Width(confusionTitle(1, 1000000)))
	l.W = max(l.W, int(math.Ceil(titleW+2*l.pad)))
	return l
}

func confusionTitle(acc float64, total int) string {
	return fmt.Sprintf("Confusion matrix (accuracy %.1f%%, %d samples)", 100*acc, total)
}

// renderConfusion draws the matrix and returns the image and its layout.
func renderConfusion(confusion [][]int, labels []string) (image.Image, cmLayout, error) {
	if err := CheckConfusion(confusion, labels); err != nil {
		return nil, cmLayout{}, err
	}
	if len(labels) > MaxConfusionClasses {
		return nil, cmLayout{}, fmt.Errorf("report: %d classes, at most %d can be drawn", len(labels), MaxConfusionClasses)
	}
	l := confusionLayout(labels)
	var img image.Image
	err := safely("draw confusion matrix", func() error {
		c := newCanvas(l.W, l.H, 72)
		drawConfusion(draw.New(c), l, confusion)
		img = c.Image()
		return nil
	})
	if err != nil {
		return nil, cmLayout{}, err
	}
	return img, l, nil
}

func drawConfusion(dc draw.Canvas, l cmLayout, confusion [][]int) {
	H := float64(l.H)
	// at converts top-left pixel coordinates to canvas points (y up).
	at := func(x, y float64) vg.Point { return vg.Point{X: vg.Length(x), Y: vg.Length(H - y)} }
	rect := func(x0, y0, x1, y1 float64, c color.Color) {
		dc.FillPolygon(c, []vg.Point{at(x0, y0), at(x1, y0), at(x1, y1), at(x0, y1)})
	}
	line := func(w vg.Length, c color.Color, x0, y0, x1, y1 float64) {
		dc.StrokeLine2(draw.LineStyle{Color: c, Width: w}, at(x0, y0).X, at(x0, y0).Y, at(x1, y1).X, at(x1, y1).Y)
	}

	n, cell := l.n, float64(l.cell)
	gx, gy, gs := float64(l.gridX), float64(l.gridY), float64(l.gridSize())
	s := Summarize(confusion, l.labels)

	// Cells, coloured by the row-normalised count.
	for i := range n {
		for j := range n {
			r := l.cellRect(i, j)
			v := ratio(float64(confusion[i][j]), float64(s.Rows[i].Support))
			rect(float64(r.Min.X), float64(r.Min.Y), float64(r.Max.X), float64(r.Max.Y), bluesAt(v))
		}
	}
	// Thin cell borders (half-pixel offsets keep 1 px lines crisp), then a frame.
	if cell >= 12 {
		for k := 1; k < n; k++ {
			o := float64(k)*cell + 0.5
			line(1, cellLineColor, gx+o, gy, gx+o, gy+gs)
			line(1, cellLineColor, gx, gy+o, gx+gs, gy+o)
		}
	}
	frame := []vg.Point{at(gx+0.5, gy+0.5), at(gx+gs-0.5, gy+0.5), at(gx+gs-0.5, gy+gs-0.5), at(gx+0.5, gy+gs-0.5), at(gx+0.5, gy+0.5)}
	dc.StrokeLines(draw.LineStyle{Color: color.Black, Width: 1}, frame)

	// Counts, sized to fit the widest one.
	if cell >= 14 {
		maxCount := 0
		for i := range n {
			for j := range n {
				maxCount = max(maxCount, confusion[i][j])
			}
		}
		size := l.countSize
		if w := sty(size, false, color.Black).Width(strconv.Itoa(maxCount)); float64(w) > 0.84*cell {
			size = vg.Length(float64(size) * 0.84 * cell / float64(w))
		}
		for i := range n {
			for j := range n {
				r := l.cellRect(i, j)
				v := ratio(float64(confusion[i][j]), float64(s.Rows[i].Support))
				col := color.Color(color.Black)
				switch {
				case confusion[i][j] == 0:
					col = zeroCountColor
				case isDark(bluesAt(v)):
					col = color.White
				}
				ts := sty(size, i == j && confusion[i][j] > 0, col)
				ts.XAlign, ts.YAlign = draw.XCenter, draw.YCenter
				cx := float64(r.Min.X+r.Max.X) / 2
				cy := float64(r.Min.Y+r.Max.Y) / 2
				dc.FillText(ts, at(cx, cy), strconv.Itoa(confusion[i][j]))
			}
		}
	}

	// Row names (true classes) and column names (predicted classes).
	ys := sty(l.labelSize, false, color.Black)
	ys.XAlign, ys.YAlign = draw.XRight, draw.YCenter
	xs := ys
	xs.Rotation = l.xLabelAngle
	if l.xLabelAngle == 0 {
		xs.XAlign, xs.YAlign = draw.XCenter, draw.YTop
	}
	tick := draw.LineStyle{Color: color.Black, Width: 1}
	for k, name := range l.labels {
		if l.cell < 8 { // hundreds of classes: names would overlap
			break
		}
		c := float64(k)*cell + cell/2
		line(tick.Width, tick.Color, gx-l.tickLen, gy+c, gx, gy+c)
		dc.FillText(ys, at(gx-l.tickLen-4, gy+c), name)
		line(tick.Width, tick.Color, gx+c, gy+gs, gx+c, gy+gs+l.tickLen)
		dc.FillText(xs, at(gx+c, gy+gs+l.xLabelOffset), name)
	}

	// Axis titles and the plot title.
	as := sty(l.axisSize, false, color.Black)
	as.XAlign, as.YAlign = draw.XCenter, draw.YBottom
	xcenter := math.Max(gx+gs/2, l.pad+float64(as.Width(xAxisText))/2)
	dc.FillText(as, at(xcenter, H-l.pad), xAxisText)
	ya := as
	ya.Rotation = math.Pi / 2
	ya.YAlign = draw.YTop
	dc.FillText(ya, at(l.pad, gy+gs/2), yAxisText)

	ts := sty(l.titleSize, true, color.Black)
	ts.XAlign, ts.YAlign = draw.XCenter, draw.YTop
	title := confusionTitle(s.Accuracy, s.Total)
	tw := float64(ts.Width(title))
	tx := gx + gs/2
	tx = math.Max(tx, l.pad+tw/2)
	tx = math.Min(tx, float64(l.W)-l.pad-tw/2)
	dc.FillText(ts, at(tx, l.pad), title)

	// Colour bar: one row of pixels per step, 0% at the bottom.
	bx, bw := float64(l.cbarX), float64(l.cbarW)
	for y := 0; y < l.gridSize(); y++ {
		v := 1 - (float64(y)+0.5)/gs
		rect(bx, gy+float64(y), bx+bw, gy+float64(y+1), bluesAt(v))
	}
	bar := []vg.Point{at(bx+0.5, gy+0.5), at(bx+bw-0.5, gy+0.5), at(bx+bw-0.5, gy+gs-0.5), at(bx+0.5, gy+gs-0.5), at(bx+0.5, gy+0.5)}
	dc.StrokeLines(tick, bar)
	bs := sty(l.labelSize, false, color.Black)
	bs.XAlign, bs.YAlign = draw.XLeft, draw.YCenter
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		y := gy + gs - f*gs
		line(1, color.Black, bx+bw, y, bx+bw+l.tickLen, y)
		dc.FillText(bs, at(bx+bw+l.tickLen+4, y), fmt.Sprintf("%d%%", int(f*100)))
	}
	if l.cbarCaption {
		cs := bs
		cs.Rotation = math.Pi / 2
		cs.XAlign, cs.YAlign = draw.XCenter, draw.YTop
		tickW := float64(bs.Width("100%"))
		dc.FillText(cs, at(bx+bw+l.tickLen+4+tickW+8, gy+gs/2), cbarCaptionText)
	}
}
