package onnx_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"petbreed/internal/onnx"
	"petbreed/internal/onnxrt"
	"petbreed/internal/testassets"
)

// BenchmarkExportedViews is the cost of the exported model's options, for
// one image a run (a lone request) and batches of 8, one thread: the plain
// model, with the pet score, and with the pet score and the mirror averaged
// in the graph (test-time augmentation: two backbone passes an image). Each
// iteration runs the three models one after the other, so that a busy
// machine slows them alike; the metrics are each one's median ms per image.
func BenchmarkExportedViews(b *testing.B) {
	variants := []struct {
		name string
		opt  onnx.ExportOptions
	}{
		{"plain", onnx.ExportOptions{}},
		{"pet", onnx.ExportOptions{PetScore: true}},
		{"pet+flip", onnx.ExportOptions{PetScore: true, TTA: []onnx.TTAView{onnx.MirrorView()}}},
	}
	if _, err := onnxrt.Load(); err != nil {
		b.Fatal(err)
	}
	for _, backbone := range backbones {
		data := testassets.Read(b, "backbone", backbone)
		f, err := onnx.FindFeatures(data)
		if err != nil {
			b.Fatal(err)
		}
		w, bias := randomHead(f.Dim, 37)
		sessions := make([]*onnxrt.Session, len(variants))
		for i, v := range variants {
			model, err := onnx.ExportWith(data, f, w, bias, 37, nil, v.opt)
			if err != nil {
				b.Fatal(err)
			}
			p := filepath.Join(b.TempDir(), "model.onnx")
			if err := os.WriteFile(p, model, 0o644); err != nil {
				b.Fatal(err)
			}
			if sessions[i], err = onnxrt.Open(p, onnxrt.Options{IntraOpThreads: 1}); err != nil {
				b.Fatal(err)
			}
			defer sessions[i].Close()
		}
		for _, n := range []int{1, 8} {
			images := make([]string, n)
			for i := range images {
				images[i] = testassets.Path(b, "photos", "chelsea.png")
			}
			batch := imageBatch(b, images...)
			shape := []int64{int64(n), 3, 224, 224}
			b.Run(fmt.Sprintf("%s/batch%d", backbone, n), func(b *testing.B) {
				for _, s := range sessions { // warm-up
					if _, err := s.Run(batch, shape); err != nil {
						b.Fatal(err)
					}
				}
				took := make([][]float64, len(sessions))
				for i := 0; i < b.N; i++ {
					for j, s := range sessions {
						start := time.Now()
						if _, err := s.Run(batch, shape); err != nil {
							b.Fatal(err)
						}
						took[j] = append(took[j], float64(time.Since(start).Microseconds())/1000/float64(n))
					}
				}
				for j, v := range variants {
					slices.Sort(took[j])
					b.ReportMetric(took[j][len(took[j])/2], v.name+"-ms/image")
				}
			})
		}
	}
}
