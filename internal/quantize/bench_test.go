package quantize

import (
	"context"
	"testing"

	"petbreed/internal/onnxrt"
	"petbreed/internal/testassets"
)

// BenchmarkInference compares the fp32 twin, its quantization by this
// package (minmax on 32 pets images, per-channel, reduced range) and the
// zoo's int8 model, at batch 1 and 32, in one run.
func BenchmarkInference(b *testing.B) {
	fp32 := testassets.Read(b, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	zoo := testassets.Read(b, "backbone", "mobilenetv2-12-int8.onnx")
	ours, _, err := Quantize(context.Background(), fp32, petImages(b, 0, 19, 32), Options{})
	if err != nil {
		b.Fatal(err)
	}
	x, _ := batchOf(b, petImages(b, 3, 17, 32))
	for _, m := range []struct {
		name  string
		model []byte
	}{{"fp32", fp32}, {"petbreed-int8", ours}, {"zoo-int8", zoo}} {
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
