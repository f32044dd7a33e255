package quantize

import (
	"context"
	"testing"

	"petbreed/internal/onnxrt"
	"petbreed/internal/testassets"
)

// BenchmarkInference compares the fp32 twin, its quantization by this
// package (minmax on 32 pets images, per-channel, reduced range), the zoo's
// int8 model and this package's uint8-weight variant (ONNX Runtime's u8u8
// kernels), at batch 1 and 32, in one run.
func BenchmarkInference(b *testing.B) {
	fp32 := testassets.Read(b, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	zoo := testassets.Read(b, "backbone", "mobilenetv2-12-int8.onnx")
	ours, _, err := Quantize(context.Background(), fp32, petImages(b, 0, 19, 32), Options{})
	if err != nil {
		b.Fatal(err)
	}
	u8u8, _, err := Quantize(context.Background(), fp32, petImages(b, 0, 19, 32), Options{Uint8Weights: true, FullRange: true})
	if err != nil {
		b.Fatal(err)
	}
	x, _ := batchOf(b, petImages(b, 3, 17, 32))
	for _, m := range []struct {
		name  string
		model []byte
	}{{"fp32", fp32}, {"petbreed-int8", ours}, {"zoo-int8", zoo}, {"petbreed-u8u8", u8u8}} {
		s, err := onnxrt.OpenData(m.name, m.model, onnxrt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{1, 32} {
			b.Run(m.name+"/batch"+map[int]string{1: "1", 32: "32"}[n], func(b *testing.B) {
				in := x[:n*3*224*224]
				shape := []int64{int64(n), 3, 224, 224}
				if _, err := s.Run(in, shape); err != nil { // warm-up
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := s.Run(in, shape); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
			})
		}
		s.Close()
	}
}

// BenchmarkAgreement measures, on 119 pets images the calibration did not
// see, how often a quantization's ImageNet top-1 equals the fp32 twin's:
// the zoo's int8 model, then this package's options (64 calibration
// images). Run it with -benchtime 1x: the metric is the point.
func BenchmarkAgreement(b *testing.B) {
	fp32 := testassets.Read(b, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	x, shape := batchOf(b, petImages(b, 5, 5, 120))
	ref := top1(b, fp32, x, shape)
	cal := petImages(b, 0, 5, 64)
	for _, v := range []struct {
		name string
		opt  *Options
	}{
		{"zoo-int8", nil},
		{"default", &Options{}},
		{"full-range", &Options{FullRange: true}},
		{"uint8-weights", &Options{Uint8Weights: true, FullRange: true}},
		{"per-tensor", &Options{PerTensor: true}},
		{"percentile", &Options{Method: Percentile}},
		{"entropy", &Options{Method: Entropy}},
	} {
		b.Run(v.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				m := testassets.Read(b, "backbone", "mobilenetv2-12-int8.onnx")
				if v.opt != nil {
					var err error
					if m, _, err = Quantize(context.Background(), fp32, cal, *v.opt); err != nil {
						b.Fatal(err)
					}
				}
				got := top1(b, m, x, shape)
				same := 0
				for j := range ref {
					if ref[j] == got[j] {
						same++
					}
				}
				b.ReportMetric(100*float64(same)/float64(len(ref)), "%agree")
			}
		})
	}
}
