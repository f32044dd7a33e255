package report

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// petLabels are the 37 Oxford-IIIT Pet breeds, long names included.
var petLabels = []string{
	"Abyssinian", "American Bulldog", "American Pit Bull Terrier", "Basset Hound",
	"Beagle", "Bengal", "Birman", "Bombay", "Boxer", "British Shorthair",
	"Chihuahua", "Egyptian Mau", "English Cocker Spaniel", "English Setter",
	"German Shorthaired", "Great Pyrenees", "Havanese", "Japanese Chin",
	"Keeshond", "Leonberger", "Maine Coon", "Miniature Pinscher", "Newfoundland",
	"Persian", "Pomeranian", "Pug", "Ragdoll", "Russian Blue", "Saint Bernard",
	"Samoyed", "Scottish Terrier", "Shiba Inu", "Siamese", "Sphynx",
	"Staffordshire Bull Terrier", "Wheaten Terrier", "Yorkshire Terrier",
}

// petConfusion is a plausible 37-class test-set matrix: mostly right, a few
// confusions between neighbours, one class with no samples at all.
func petConfusion() [][]int {
	n := len(petLabels)
	m := make([][]int, n)
	for i := range m {
		m[i] = make([]int, n)
		if i == 20 { // no test samples for this class
			continue
		}
		m[i][i] = 80 + (i*7)%20
		m[i][(i+1)%n] = (i * 3) % 11
		m[i][(i+5)%n] = i % 4
	}
	m[2][34] = 17 // pit bull vs staffordshire, the classic confusion
	m[34][2] = 12
	return m
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	return img
}

func distinctColours(img image.Image) int {
	seen := map[color.RGBA]bool{}
	if rgba, ok := img.(*image.RGBA); ok { // fast path: what png.Decode returns here
		for i := 0; i+3 < len(rgba.Pix); i += 4 {
			p := rgba.Pix[i : i+4 : i+4]
			seen[color.RGBA{p[0], p[1], p[2], p[3]}] = true
		}
		return len(seen)
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, a := img.At(x, y).RGBA()
			seen[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bb >> 8), uint8(a >> 8)}] = true
		}
	}
	return len(seen)
}

func luma(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	return 0.2126*float64(r>>8) + 0.7152*float64(g>>8) + 0.0722*float64(b>>8)
}

func sampleCurves() (loss, valLoss, acc, valAcc []Point) {
	trL := []float64{2.9, 1.6, 1.05, 0.82, 0.7, 0.61, 0.55, 0.5, 0.47, 0.45, 0.43, 0.41}
	vaL := []float64{2.1, 1.25, 0.95, 0.83, 0.78, 0.76, 0.75, 0.75, 0.76, 0.77, 0.78, 0.8}
	trA := []float64{0.31, 0.58, 0.7, 0.76, 0.8, 0.83, 0.85, 0.87, 0.88, 0.89, 0.9, 0.91}
	vaA := []float64{0.45, 0.66, 0.73, 0.76, 0.78, 0.79, 0.8, 0.8, 0.81, 0.8, 0.81, 0.8}
	for i := range trL {
		e := i + 1
		loss = append(loss, Point{e, trL[i]})
		valLoss = append(valLoss, Point{e, vaL[i]})
		acc = append(acc, Point{e, trA[i]})
		valAcc = append(valAcc, Point{e, vaA[i]})
	}
	return
}

// TestWriteSamples writes one image of each kind (3 classes) and a 37-class
// confusion matrix into a temp dir, and also into $REPORT_PNG_DIR when set,
// so the images can be looked at.
func TestWriteSamples(t *testing.T) {
	dirs := []string{t.TempDir()}
	if d := os.Getenv("REPORT_PNG_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	loss, valLoss, acc, valAcc := sampleCurves()
	lossPNG, err := Curves("Loss", "cross-entropy loss", loss, valLoss, false, 800, 500)
	if err != nil {
		t.Fatal(err)
	}
	accPNG, err := Curves("Accuracy", "accuracy", acc, valAcc, true, 800, 500)
	if err != nil {
		t.Fatal(err)
	}
	cm3, err := ConfusionPNG([][]int{{50, 3, 0}, {7, 38, 5}, {1, 2, 44}}, []string{"cat", "dog", "bird"})
	if err != nil {
		t.Fatal(err)
	}
	cm37, err := ConfusionPNG(petConfusion(), petLabels)
	if err != nil {
		t.Fatal(err)
	}
	long3, err := ConfusionPNG([][]int{{40, 9, 1}, {14, 30, 0}, {2, 0, 48}},
		[]string{"American Pit Bull Terrier", "Staffordshire Bull Terrier", "Yorkshire Terrier"})
	if err != nil {
		t.Fatal(err)
	}
	one, err := ConfusionPNG([][]int{{12345}}, []string{"only"})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"report-confusion-3long.png": long3, "report-confusion-1.png": one,
		"report-loss.png": lossPNG, "report-accuracy.png": accPNG,
		"report-confusion-3.png": cm3, "report-confusion-37.png": cm37,
	}
	for _, dir := range dirs {
		for name, b := range files {
			decodePNG(t, b)
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
