package features

import (
	"context"
	"testing"

	"petbreed/internal/dataset"
	"petbreed/internal/testassets"
)

// The fp32 path: the twin of the zoo's fp32 MobileNetV2, whose features are
// the float tensor 472 (no dequantization).

func TestFP32TwinFeatures(t *testing.T) {
	e, err := NewExtractor(testassets.Path(t, "backbone", "mobilenetv2-12-fp32-twin.onnx"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	f := e.Features()
	if f.Tensor != "472" || f.Quantized || f.Dim != 1280 {
		t.Fatalf("features %+v, want the float tensor 472 of 1280", f)
	}
	ds := pets(t)
	c, err := OpenCache(t.TempDir(), e)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compute(context.Background(), e, c, ds.Test[:4], Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Pooled ReLU6 activations: non-negative, at most 6, not all zero.
	var sum float64
	for _, v := range r.X[Original] {
		if v < 0 || v > 6 {
			t.Fatalf("feature %v outside [0,6]", v)
		}
		sum += float64(v)
	}
	if sum == 0 || len(r.X[Original]) != 4*1280 {
		t.Errorf("%d features summing to %v", len(r.X[Original]), sum)
	}
}

// BenchmarkComputeBackbones is BenchmarkComputePets for both backbones in
// one run, each iteration computing the 598 images with each (cold cache):
// images/s of the int8 model and of the fp32 twin.
func BenchmarkComputeBackbones(b *testing.B) {
	ds := pets(b)
	all := append(append([]dataset.Sample{}, ds.TrainVal...), ds.Test...)
	names := []string{"int8", "fp32"}
	var exts []*Extractor
	for _, p := range []string{"mobilenetv2-12-int8.onnx", "mobilenetv2-12-fp32-twin.onnx"} {
		e, err := NewExtractor(testassets.Path(b, "backbone", p), 0)
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		exts = append(exts, e)
	}
	rate := make([]float64, len(exts))
	for i := 0; i < b.N; i++ {
		for j, e := range exts {
			c, err := OpenCache(b.TempDir(), e)
			if err != nil {
				b.Fatal(err)
			}
			r, err := Compute(context.Background(), e, c, all, Options{})
			if err != nil {
				b.Fatal(err)
			}
			rate[j] += r.Stats.PerSecond()
		}
	}
	for j, n := range names {
		b.ReportMetric(rate[j]/float64(b.N), n+"-images/s")
	}
}
