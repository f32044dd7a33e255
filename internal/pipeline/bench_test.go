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
func BenchmarkPipeline(b *testing.B) { benchPipeline(b, DefaultConfig()) }

// BenchmarkPipelinePrevious is the default configuration before issue 13
// (the original three recipes and flip_wd_es, all selected by the
// validation split, orig and flip views), to compare with in one run.
func BenchmarkPipelinePrevious(b *testing.B) { benchPipeline(b, previousConfig()) }

// previousConfig is the default configuration before issue 13.
func previousConfig() Config {
	c := DefaultConfig()
	c.Recipes = c.Recipes[:4]
	for i := range c.Recipes {
		c.Recipes[i].Baseline = false
	}
	c.CVBelow = 0
	return c
}

func benchPipeline(b *testing.B, cfg Config) {
	run := func(b *testing.B, cache string) {
		_, err := Run(context.Background(), Options{
			Data:     testassets.Path(b, "pets-3breeds"),
			Backbone: testassets.Path(b, "backbone", "mobilenetv2-12-int8.onnx"),
			Config:   cfg,
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
