package pipeline

import (
	"fmt"
	"math"
	"os"

	"petbreed/internal/classify"
	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/imaging"
	"petbreed/internal/onnx"
	"petbreed/internal/train"
)

// exportTolerance is how far the exported model's probabilities may be from
// the Go head's on the same features (float32 sums in another order).
const exportTolerance = 1e-4

// quantizedCropTolerance is exportTolerance for an int8 backbone with crop
// views averaged in the graph.
const quantizedCropTolerance = 0.05

// verifyExport checks, before a model is registered, that the exported ONNX
// file run on real images gives the probabilities the trained head gives on
// the backbone's features of the same images.
// With test-time views (tta), the model answers the mean over the image
// and its views, made here by package features' Go reference.
func verifyExport(modelPath string, head *train.Head, ext *features.Extractor, samples []dataset.Sample, tta []onnx.TTAView) error {
	n := min(len(samples), 8)
	tl := ext.TensorLen()
	batch := make([]float32, 0, n*tl)
	others := make([][]float32, len(tta)) // the test-time views' inputs
	view := make([]float32, tl)
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
		for i, v := range tta {
			if err := features.View(v.Name).Apply(t, view, ext.Preprocess().Size); err != nil {
				return fmt.Errorf("verify export: %w", err)
			}
			others[i] = append(others[i], view...)
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
	tolerance := exportTolerance
	for i, v := range tta {
		fv, err := ext.Run(others[i], n)
		if err != nil {
			return err
		}
		views = append(views, fv)
		// A quantized backbone turns the float rounding between ONNX
		// Resize and the Go reference into a few 0.01 (onnx's
		// TestExportTTAORT).
		if v.Crop > 0 && ext.Features().Quantized {
			tolerance = quantizedCropTolerance
		}
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
	if worst > tolerance {
		return fmt.Errorf("verify export: the exported model differs from the trained head by %.3g (limit %g)", worst, tolerance)
	}
	return nil
}
