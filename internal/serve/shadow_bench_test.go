package serve

import (
	"context"
	"fmt"
	"testing"
	"time"

	"petbreed/internal/loadgen"
)

// BenchmarkShadow measures the primary's latency and throughput at c=1
// and c=32 with one model; with a second real version of the same backbone
// as a full shadow (every request copied; a copy dropped when the server is
// busy) on the shared backbone (its head only) and apart (its own model on
// one ONNX Runtime thread, or two); and with a 50/50 split of the two, shared
// and apart. Each iteration is one bounded load run of 8 x c requests on
// loopback; the split, without a unit, is a weighted random choice.
//
//	go test -run XXX -bench BenchmarkShadow -benchtime 5x ./internal/serve/
func BenchmarkShadow(b *testing.B) {
	dir, _ := twoVersions(b)
	img := petImage(b, "Bengal_10.jpg")
	champion := ModelSpec{Name: "champion", URI: "models:/pet-breed@champion", Weight: 1}
	shadow := ModelSpec{Name: "shadow", URI: "models:/pet-breed@challenger", Shadow: true}
	challenger := ModelSpec{Name: "shadow", URI: "models:/pet-breed@challenger", Weight: 1}
	for _, mode := range []struct {
		name    string
		models  []ModelSpec
		threads int
		apart   bool
	}{
		{"one", []ModelSpec{champion}, 1, false},
		{"shadow", []ModelSpec{champion, shadow}, 1, false},
		{"shadow-apart", []ModelSpec{champion, shadow}, 1, true},
		{"shadow-apart-t2", []ModelSpec{champion, shadow}, 2, true},
		{"split", []ModelSpec{champion, challenger}, 1, false},
		{"split-apart", []ModelSpec{champion, challenger}, 1, true},
	} {
		ts := startAll(b, Config{Models: mode.models, TrackingURI: dir, ShadowThreads: mode.threads, SeparateBackbones: mode.apart})
		hasShadow := len(mode.models) > 1 && mode.models[1].Shadow
		for _, c := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/c=%d", mode.name, c), func(b *testing.B) {
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
				if hasShadow {
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
