package mlflowrest

import (
	"os"
	"testing"
	"time"

	"petbreed/internal/testassets"
	"petbreed/internal/testutil/mlflowserver"
	"petbreed/internal/tracking"
)

// BenchmarkResolve resolves models:/NAME@ALIAS of a 14 MB model on a real
// server (sqlite): cold (an empty cache: the alias, MLmodel and the file
// downloaded) and cached (the alias, then the cache entry's sha256 check).
// calls/op is HTTP requests per resolve.
func BenchmarkResolve(b *testing.B) {
	srv := mlflowserver.Start(b, "sqlite")
	c, err := New(srv.URL, Options{CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	exp, err := c.Experiment("bench")
	if err != nil {
		b.Fatal(err)
	}
	w, err := c.CreateRun(exp, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	onnxFile := testassets.Path(b, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	start := time.Now()
	uri, err := w.LogONNXModel("model", onnxFile, tracking.ModelMeta{InputShape: []int64{-1, 3, 224, 224}, OutputShape: []int64{-1, 1000}})
	if err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(onnxFile)
	b.Logf("LogONNXModel of %d bytes: %v", fi.Size(), time.Since(start))
	v, err := c.CreateModelVersion("bench", uri, "")
	if err != nil {
		b.Fatal(err)
	}
	if err := c.SetAlias("bench", "champion", v); err != nil {
		b.Fatal(err)
	}
	b.Run("cold", func(b *testing.B) {
		calls := c.Calls()
		for b.Loop() {
			c.opt.CacheDir = b.TempDir()
			if _, err := c.Resolve("models:/bench@champion"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(c.Calls()-calls)/float64(b.N), "calls/op")
	})
	b.Run("cached", func(b *testing.B) {
		c.opt.CacheDir = b.TempDir()
		if _, err := c.Resolve("models:/bench@champion"); err != nil {
			b.Fatal(err)
		}
		calls := c.Calls()
		for b.Loop() {
			if _, err := c.Resolve("models:/bench@champion"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(c.Calls()-calls)/float64(b.N), "calls/op")
	})
}
