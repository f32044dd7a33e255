package onnxrt

import (
	"testing"
	"time"
)

func BenchmarkRunBatch1(b *testing.B)  { benchRun(b, 1) }
func BenchmarkRunBatch32(b *testing.B) { benchRun(b, 32) }

// benchRun runs the real int8 MobileNetV2 on batches of n mid-grey images
// with 2 intra-op threads, reusing one input buffer.
func benchRun(b *testing.B, n int) {
	s, err := Open(modelPath(b), Options{IntraOpThreads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	in := grey(n)
	shape := []int64{int64(n), 3, 224, 224}
	if _, err := s.Run(in, shape); err != nil { // warm up
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if _, err := s.Run(in, shape); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	images := float64(b.N * n)
	b.ReportMetric(images/elapsed.Seconds(), "images/s")
	b.ReportMetric(elapsed.Seconds()*1000/images, "ms/image")
}
