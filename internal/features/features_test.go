package features

import (
	"context"
	"testing"

	"petbreed/internal/dataset"
	"petbreed/internal/testassets"
)

func openExtractor(t testing.TB) *Extractor {
	t.Helper()
	e, err := NewExtractor(testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func pets(t testing.TB) *dataset.Dataset {
	t.Helper()
	ds, err := dataset.Load(testassets.Path(t, "pets-3breeds"))
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// BenchmarkComputePets is the feature pipeline end to end on the 598
// annotated pets-3breeds images (read, hash, decode, crop, tensor, int8
// backbone at batch 32), cold cache, one view. Goal: at least 200 images/s,
// and at least half of what the model alone does at batch 32
// (BenchmarkRunBatch32 in internal/onnxrt).
func BenchmarkComputePets(b *testing.B) {
	e := openExtractor(b)
	ds := pets(b)
	all := append(append([]dataset.Sample{}, ds.TrainVal...), ds.Test...)
	var rate float64
	for i := 0; i < b.N; i++ {
		c, err := OpenCache(b.TempDir(), e)
		if err != nil {
			b.Fatal(err)
		}
		r, err := Compute(context.Background(), e, c, all, Options{})
		if err != nil {
			b.Fatal(err)
		}
		rate += r.Stats.PerSecond()
	}
	b.ReportMetric(rate/float64(b.N), "images/s")
}
