package serve

import (
	"context"
	"fmt"
	"testing"
	"time"

	"petbreed/internal/loadgen"
)

// BenchmarkShadow measures the primary's latency at c=1 and c=32 with one
// model, and with a second real version as a full shadow (every request
// copied; the copies dropped when the server is busy), the shadow on one
// ONNX Runtime thread or two. Each iteration is
// one bounded load run of 8 x c requests on loopback.
//
//	go test -run XXX -bench BenchmarkShadow -benchtime 5x ./internal/serve/
func BenchmarkShadow(b *testing.B) {
	dir, _ := twoVersions(b)
	img := petImage(b, "Bengal_10.jpg")
	// "shadow" runs the shadow on one ONNX Runtime thread (the default),
	// "shadow-t2" on two, as the primary.
	for _, mode := range []string{"one", "shadow", "shadow-t2"} {
		models := []ModelSpec{{Name: "champion", URI: "models:/pet-breed@champion", Weight: 1}}
		threads := 1
		if mode != "one" {
			models = append(models, ModelSpec{Name: "shadow", URI: "models:/pet-breed@challenger", Shadow: true})
		}
		if mode == "shadow-t2" {
			threads = 2
		}
		ts := startAll(b, Config{Models: models, TrackingURI: dir, ShadowThreads: threads})
		for _, c := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/c=%d", mode, c), func(b *testing.B) {
				var p50, p99, rps float64
				var errs int
				answered0, _ := metric(b, ts.URL, `petbreed_model_requests_total{model="shadow",version="2"}`)
				dropped0, _ := metric(b, ts.URL, `petbreed_shadow_dropped_total{model="shadow"}`)
				for range b.N {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					res, err := loadgen.Run(ctx, loadgen.Config{URL: ts.URL + "/api/predict", Body: img,
						Concurrency: c, Requests: 8 * c, Warmup: c})
					cancel()
					if err != nil {
						b.Fatal(err)
					}
					p50 += float64(res.P50.Microseconds()) / 1000
					p99 += float64(res.P99.Microseconds()) / 1000
					rps += res.Throughput
					errs += res.Errors
				}
				n := float64(b.N)
				b.ReportMetric(p50/n, "p50_ms")
				b.ReportMetric(p99/n, "p99_ms")
				b.ReportMetric(rps/n, "req/s")
				b.ReportMetric(float64(errs), "errors")
				if mode != "one" {
					answered, _ := metric(b, ts.URL, `petbreed_model_requests_total{model="shadow",version="2"}`)
					dropped, _ := metric(b, ts.URL, `petbreed_shadow_dropped_total{model="shadow"}`)
					b.ReportMetric((answered-answered0)/n, "shadow_answered/op")
					b.ReportMetric((dropped-dropped0)/n, "shadow_dropped/op")
				}
			})
		}
		ts.stop()
	}
}
