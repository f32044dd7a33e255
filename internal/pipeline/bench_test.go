package pipeline

import (
	"context"
	"path/filepath"
	"testing"

	"petbreed/internal/testassets"
)

// BenchmarkPipeline is the whole default pipeline on pets-3breeds (598
// annotated images, the four default experiments, refit, test evaluation,
// export, registration) with the shared int8 backbone. Goals: under 10 s
// from a cold feature cache, under 3 s with the features cached.
func BenchmarkPipeline(b *testing.B) {
	run := func(b *testing.B, cache string) {
		_, err := Run(context.Background(), Options{
			Data:     testassets.Path(b, "pets-3breeds"),
			Backbone: testassets.Path(b, "backbone", "mobilenetv2-12-int8.onnx"),
			Config:   DefaultConfig(),
			Tracking: filepath.Join(b.TempDir(), "mlruns"),
			CacheDir: cache,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			run(b, b.TempDir())
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/pipeline")
	})
	b.Run("cached", func(b *testing.B) {
		cache := b.TempDir()
		run(b, cache) // fill the cache
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			run(b, cache)
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/pipeline")
	})
}
