package quantize

import (
	"context"
	"fmt"
	"testing"
	"time"

	"petbreed/internal/onnxrt"
	"petbreed/internal/testassets"
)

// BenchmarkInference compares the fp32 twin, its quantization by this
// package (minmax on 32 pets images, per-channel, reduced range), the zoo's
// int8 model and this package's uint8-weight variant (ONNX Runtime's u8u8
// kernels), at batch 1 and 32. Each iteration runs every model once, in
// turn, so that the load of a shared machine weighs on all of them alike:
// the ratios are the figures to read.
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
	names := []string{"fp32", "int8", "zoo", "u8u8"}
	var sessions []*onnxrt.Session
	for i, m := range [][]byte{fp32, ours, zoo, u8u8} {
		s, err := onnxrt.OpenData(names[i], m, onnxrt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		sessions = append(sessions, s)
	}
	for _, n := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch%d", n), func(b *testing.B) {
			in := x[:n*3*224*224]
			shape := []int64{int64(n), 3, 224, 224}
			spent := make([]time.Duration, len(sessions))
			for _, s := range sessions { // warm-up
				if _, err := s.Run(in, shape); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for k, s := range sessions {
					t0 := time.Now()
					if _, err := s.Run(in, shape); err != nil {
						b.Fatal(err)
					}
					spent[k] += time.Since(t0)
				}
			}
			rate := make([]float64, len(spent))
			for k, d := range spent {
				rate[k] = float64(n*b.N) / d.Seconds()
				b.ReportMetric(rate[k], names[k]+"-img/s")
			}
			b.ReportMetric(rate[1]/rate[0], "int8/fp32")
			b.ReportMetric(rate[1]/rate[2], "int8/zoo")
		})
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
