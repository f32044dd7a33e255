package pipeline

import (
	"fmt"
	"math"
	"os"

	"petbreed/internal/classify"
	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/imaging"
	"petbreed/internal/train"
)

// exportTolerance is how far the exported model's probabilities may be from
// the Go head's on the same features (float32 sums in another order).
const exportTolerance = 1e-4

// verifyExport checks, before a model is registered, that the exported ONNX
// file run on real images gives the probabilities the trained head gives on
// the backbone's features of the same images.
// With test-time views (tta), the model answers the mean over the image
// and its mirror.
func verifyExport(modelPath string, head *train.Head, ext *features.Extractor, samples []dataset.Sample, tta []string) error {
	n := min(len(samples), 8)
	tl := ext.TensorLen()
	batch := make([]float32, 0, n*tl)
	var mirror []float32
	t := make([]float32, tl)
	for _, s := range samples {
		if len(batch) == n*tl {
			break
		}
		data, err := os.ReadFile(s.Path)
		if err != nil {
			continue
		}
		img, _, err := imaging.Decode(data, imaging.DecodeOptions{})
		if err != nil {
			continue
		}
		if err := ext.Prepare(img, false, t); err != nil {
			return err
		}
		batch = append(batch, t...)
		if len(tta) > 0 { // the mirror, the one test-time view (onnx.TTAViews)
			if err := ext.Prepare(img, true, t); err != nil {
				return err
			}
			mirror = append(mirror, t...)
		}
	}
	n = len(batch) / tl
	if n == 0 {
		return fmt.Errorf("verify export: no test image could be read")
	}
	feats, err := ext.Run(batch, n)
	if err != nil {
		return err
	}
	views := [][]float32{feats}
	if len(tta) > 0 {
		fm, err := ext.Run(mirror, n)
		if err != nil {
			return err
		}
		views = append(views, fm)
	}
	want := ttaProbabilities(head.Probabilities, views, n)
	c, err := classify.Open(modelPath, classify.Options{})
	if err != nil {
		return fmt.Errorf("verify export: %w", err)
	}
	defer c.Close()
	got, err := c.Run(batch, n)
	if err != nil {
		return fmt.Errorf("verify export: %w", err)
	}
	classes := len(want) / n
	var worst float64
	for i := range got {
		for j, p := range got[i] {
			worst = math.Max(worst, math.Abs(float64(p)-float64(want[i*classes+j])))
		}
	}
	if worst > exportTolerance {
		return fmt.Errorf("verify export: the exported model differs from the trained head by %.3g (limit %g)", worst, exportTolerance)
	}
	return nil
}
