package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"petbreed/internal/classify"
	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/onnx"
	"petbreed/internal/pipeline/pipelinetest"
	"petbreed/internal/testassets"
)

// TestTTAStudy measures what test-time views buy: the default pipeline's
// champion (int8, pets-3breeds) exported again with each set of views, its
// accuracy on the test split through ClassifyFiles and the time per image.
// Run with PB_TTA_STUDY=1 (about two minutes); figures in docs/training.md.
func TestTTAStudy(t *testing.T) {
	if os.Getenv("PB_TTA_STUDY") == "" {
		t.Skip("set PB_TTA_STUDY=1")
	}
	t.Cleanup(pipelinetest.Cleanup)
	sum := pipelinetest.Champion(t)
	champ, err := os.ReadFile(sum.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := onnx.ReadInitializer(champ, onnx.ExportWeight)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := onnx.ReadInitializer(champ, onnx.ExportBias)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := wt.Float32s()
	b, _ := bt.Float32s()
	backbone := testassets.Read(t, "backbone", "mobilenetv2-12-int8.onnx")
	f, err := onnx.FindFeatures(backbone)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := onnx.ParseInfo(champ)
	ds, err := dataset.Load(testassets.Path(t, "pets-3breeds"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, s := range ds.Test {
		paths = append(paths, s.Path)
	}
	for _, set := range [][]features.View{
		nil,
		{features.Flipped},
		{features.Flipped, features.Center192, features.Center192Flipped},
		{features.Flipped, features.Center192, features.Center192Flipped, features.TopLeft192, features.TopRight192, features.BottomLeft192, features.BottomRight192},
	} {
		var views []onnx.TTAView
		for _, v := range set {
			s, _ := v.Spec()
			views = append(views, onnx.TTAView{Name: string(v), Crop: s.Crop, X: s.X, Y: s.Y, Flip: s.Flip})
		}
		model, err := onnx.ExportWith(backbone, f, w, b, len(b), info.Metadata, onnx.ExportOptions{PetScore: true, TTA: views})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "model.onnx")
		if err := os.WriteFile(p, model, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := classify.Open(p, classify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		right, i := 0, 0
		start := time.Now()
		err = c.ClassifyFiles(context.Background(), paths, classify.FilesOptions{TopK: 1}, func(r classify.Result) {
			if r.Err == nil && r.Predictions[0].Index == ds.Test[i].Label {
				right++
			}
			i++
		})
		took := time.Since(start)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("views %v: test accuracy %d/%d = %.2f%%, %.1f ms/image (ClassifyFiles, batch 32)",
			append([]features.View{features.Original}, set...), right, len(paths), 100*float64(right)/float64(len(paths)),
			float64(took.Milliseconds())/float64(len(paths)))
	}
}
