package serve

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"petbreed/internal/ab"
	"petbreed/internal/pipeline"
	"petbreed/internal/serve/protocol"
	"petbreed/internal/testassets"
	"petbreed/internal/tracking"
)

// Several models in one server: two real pipeline-trained versions (the
// default pipeline's champion, and one recipe trained with another seed)
// registered as versions 1 and 2 of pet-breed, aliases champion and
// challenger.

var (
	challengerOnce sync.Once
	challengerSum  *pipeline.Summary
	challengerErr  error
	challengerTmp  string
)

// challengerDir returns the MLflow model folder of a second real model:
// the pipeline's first recipe, seed 7, no refit (trained once per test
// binary, a few seconds; removed by cleanupChallenger).
func challengerDir(t testing.TB) string {
	t.Helper()
	data := testassets.Path(t, "pets-3breeds")
	backbone := testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")
	championDir(t) // the default pipeline first: the champion's features cache is its own
	challengerOnce.Do(func() {
		if challengerTmp, challengerErr = os.MkdirTemp("", "petbreed-serve-challenger-"); challengerErr != nil {
			return
		}
		cfg := pipeline.DefaultConfig()
		cfg.Seed = 7
		cfg.Recipes = cfg.Recipes[:1]
		cfg.Refit = false
		challengerSum, challengerErr = pipeline.Run(context.Background(), pipeline.Options{
			Data: data, Backbone: backbone, Config: cfg,
			Tracking: filepath.Join(challengerTmp, "mlruns"), CacheDir: filepath.Join(challengerTmp, "cache"),
		})
	})
	if challengerErr != nil {
		t.Fatalf("challenger pipeline: %v", challengerErr)
	}
	return filepath.Dir(challengerSum.ModelPath)
}

func cleanupChallenger() {
	if challengerTmp != "" {
		os.RemoveAll(challengerTmp)
	}
}

// twoVersions makes a store with the champion as pet-breed version 1
// (alias champion) and the challenger as version 2 (alias challenger).
func twoVersions(t testing.TB) (string, *tracking.Store) {
	t.Helper()
	chal := challengerDir(t)
	dir, store := newStore(t)
	v, err := store.CreateModelVersion("pet-breed", chal, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetAlias("pet-breed", "challenger", v); err != nil {
		t.Fatal(err)
	}
	return dir, store
}

func twoModels(champion, challenger float64) []ModelSpec {
	return []ModelSpec{
		{Name: "champion", URI: "models:/pet-breed@champion", Weight: champion},
		{Name: "challenger", URI: "models:/pet-breed@challenger", Weight: challenger},
	}
}

// startAll starts a server of several models and waits until each has
// loaded or failed (start waits for the first).
func startAll(t testing.TB, cfg Config) *testServer {
	t.Helper()
	ts := start(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for _, sl := range ts.slots {
		for sl.current() == nil && sl.lastErr.Load() == nil {
			if time.Now().After(deadline) {
				t.Fatalf("model %s not loaded after 30 s", sl.label())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return ts
}

// served reads which model and version answered, from the headers.
func served(r response) (string, string) {
	return r.header.Get(protocol.HeaderModel), r.header.Get(protocol.HeaderVersion)
}

// TestSeveralModels: two real versions side by side, each reachable by
// name and by registered name and version, listed by /api/health, the
// repository index and the statistics; the split's answers say who
// answered, in the headers and the JSON.
func TestSeveralModels(t *testing.T) {
	dir, _ := twoVersions(t)
	ts := startAll(t, Config{Models: twoModels(50, 50), TrackingURI: dir})

	var h healthAnswer
	get(t, ts.URL+"/api/health").json(t, &h)
	if h.Status != "healthy" || len(h.Models) != 2 || h.Split.Weights["champion"] != 50 || h.Split.Shares["challenger"] != 0.5 {
		t.Fatalf("health %+v", h)
	}
	for i, want := range []struct{ name, version string }{{"champion", "1"}, {"challenger", "2"}} {
		if st := h.Models[i]; st.Name != want.name || st.State != "ready" || st.Model == nil || st.Model.Version != want.version {
			t.Errorf("models[%d] = %+v, want %v", i, st, want)
		}
	}

	img := petImage(t, "Bengal_10.jpg")
	infer := func(path string) response {
		body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(img)}}}})
		return post(t, ts.URL+path, body, map[string]string{"Content-Type": "application/json"})
	}
	for _, tt := range []struct{ path, model, version string }{
		{"/v2/models/champion/infer", "champion", "1"},
		{"/v2/models/challenger/infer", "challenger", "2"},
		{"/v2/models/challenger/versions/2/infer", "challenger", "2"},
		{"/v2/models/pet-breed/versions/1/infer", "champion", "1"},
		{"/v2/models/pet-breed/versions/2/infer", "challenger", "2"},
	} {
		r := infer(tt.path)
		a := parseInfer(t, r)
		if m, v := served(r); a.ModelName != tt.model || a.ModelVersion != tt.version || m != tt.model || v != tt.version || a.ID == "" {
			t.Errorf("%s: answer %s/%s id %q, headers %s/%s; want %s/%s", tt.path, a.ModelName, a.ModelVersion, a.ID, m, v, tt.model, tt.version)
		}
	}
	for _, path := range []string{"/v2/models/pet-breed/versions/9/infer", "/v2/models/champion/versions/2/infer", "/v2/models/nope/infer"} {
		if r := infer(path); r.status != 404 {
			t.Errorf("%s: %s, want 404", path, r)
		}
	}
	// Unversioned by registered name: the split, between the two.
	if r := infer("/v2/models/pet-breed/infer"); r.status != 200 {
		t.Errorf("by registered name: %s", r)
	}
	for _, path := range []string{"/v2/models/champion", "/v2/models/challenger/versions/2", "/v2/models/challenger/ready"} {
		if r := get(t, ts.URL+path); r.status != 200 {
			t.Errorf("GET %s: %s", path, r)
		}
	}

	// /api/predict through the split: the JSON and the headers agree, and a
	// unit keeps its model.
	seen := map[string]string{}
	for i := range 20 {
		r := post(t, ts.URL+"/api/predict", img, map[string]string{"X-User-Id": fmt.Sprint("user-", i%4)})
		var a predictAnswer
		r.json(t, &a)
		m, v := served(r)
		if r.status != 200 || a.Model.Name != m || a.Model.Version != v || a.RequestID == "" || a.RequestID != r.header.Get("X-Request-Id") {
			t.Fatalf("predict: %s headers %s/%s", r, m, v)
		}
		key := fmt.Sprint("user-", i%4)
		if prev, ok := seen[key]; ok && prev != m {
			t.Errorf("unit %s moved from %s to %s", key, prev, m)
		}
		seen[key] = m
	}

	// The repository index and Triton's statistics.
	var index []repoEntry
	post(t, ts.URL+"/v2/repository/index", []byte(`{"ready": true}`), nil).json(t, &index)
	if len(index) != 2 || index[0] != (repoEntry{Name: "champion", Version: "1", State: "READY"}) || index[1].Version != "2" {
		t.Errorf("index %+v", index)
	}
	var stats struct {
		ModelStats []tritonModelStat `json:"model_stats"`
	}
	get(t, ts.URL+"/v2/models/stats").json(t, &stats)
	total := int64(0)
	for _, st := range stats.ModelStats {
		total += st.InferenceStats.Success.Count
		if st.InferenceStats.Success.Count > 0 && (st.InferenceStats.Success.Ns <= 0 || st.ExecutionCount < 1 || st.LastInference == 0) {
			t.Errorf("stats %+v", st)
		}
	}
	if len(stats.ModelStats) != 2 || total != 5+1+20 {
		t.Errorf("stats: %d models, %d successes, want 2 and 26: %+v", len(stats.ModelStats), total, stats)
	}
	get(t, ts.URL+"/v2/models/challenger/versions/2/stats").json(t, &stats)
	if len(stats.ModelStats) != 1 || stats.ModelStats[0].Name != "challenger" || stats.ModelStats[0].Version != "2" {
		t.Errorf("challenger's stats %+v", stats)
	}
	if r := get(t, ts.URL+"/v2/models/challenger/versions/7/stats"); r.status != 404 {
		t.Errorf("stats of a version not loaded: %s", r)
	}

	// Per-version metrics.
	for _, name := range []string{`petbreed_model_requests_total{model="champion",version="1"}`,
		`petbreed_model_info{name="challenger",version="2"}`, `petbreed_split_weight{model="challenger"}`} {
		if v, ok := metric(t, ts.URL, name); !ok || v == 0 {
			t.Errorf("%s = %v, %v", name, v, ok)
		}
	}
	r := get(t, ts.URL+"/metrics")
	for _, want := range []string{`petbreed_model_confidence_bucket{model="champion",version="1",le="0.5"}`,
		`petbreed_model_predictions_total{class="Bengal",model="champion",version="1"}`} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("no %s in /metrics", want)
		}
	}
}

// TestModelsReloadAlone: an alias move reloads only its model, and a model
// that fails to load leaves the others serving (and is shown failed).
func TestModelsReloadAlone(t *testing.T) {
	dir, store := twoVersions(t)
	models := append(twoModels(1, 1), ModelSpec{Name: "broken", URI: filepath.Join(corruptModel(t), "model.onnx"), Weight: 1})
	ts := startAll(t, Config{Models: models, TrackingURI: dir, Poll: 20 * time.Millisecond, AdminToken: "tok"})
	var h healthAnswer
	get(t, ts.URL+"/api/health").json(t, &h)
	if h.Status != "healthy" || h.Models[2].State != "failed" || h.Models[2].LastReloadError == nil || h.Models[0].State != "ready" {
		t.Fatalf("health with a broken model: %+v", h)
	}
	if r := post(t, ts.URL+"/v2/models/broken/infer", []byte(`{}`), nil); r.status != 503 {
		t.Errorf("the broken model: %s, want 503", r)
	}
	// The split skips it: every answer from the two that loaded.
	for range 10 {
		r := post(t, ts.URL+"/api/predict", petImage(t, "Abyssinian_10.jpg"), nil)
		if m, _ := served(r); r.status != 200 || m == "broken" {
			t.Fatalf("predict: %s from %q", r, m)
		}
	}
	champLoaded := h.Models[0].Model.Loaded
	// The challenger alias moves to a third version (the champion's model
	// again): only the challenger reloads.
	v, err := store.CreateModelVersion("pet-breed", championDir(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetAlias("pet-breed", "challenger", v); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		get(t, ts.URL+"/api/health").json(t, &h)
		if h.Models[1].Model != nil && h.Models[1].Model.Version == "3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the challenger did not move to version 3: %+v", h.Models)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !h.Models[0].Model.Loaded.Equal(champLoaded) || h.Models[0].Model.Version != "1" {
		t.Errorf("the champion was reloaded too: %+v", h.Models[0].Model)
	}
	// Reload one model by name.
	if r := post(t, ts.URL+"/admin/reload?model=champion", nil, map[string]string{"Authorization": "Bearer tok"}); r.status != 200 {
		t.Errorf("reload champion: %s", r)
	}
	if r := post(t, ts.URL+"/admin/reload?model=nope", nil, map[string]string{"Authorization": "Bearer tok"}); r.status != 404 {
		t.Errorf("reload an unknown model: %s", r)
	}
}

// TestSplitUnderLoad changes the weights while clients keep asking: no
// request fails, and the answers follow the new weights.
func TestSplitUnderLoad(t *testing.T) {
	dir, _ := twoVersions(t)
	ts := startAll(t, Config{Models: twoModels(100, 0), TrackingURI: dir, AdminToken: "tok"})
	img := petImage(t, "Bengal_11.jpg")
	setSplit := func(champ, chal float64) {
		t.Helper()
		body := fmt.Sprintf(`{"weights": {"champion": %v, "challenger": %v}}`, champ, chal)
		if r := post(t, ts.URL+"/admin/split", []byte(body), map[string]string{"Authorization": "Bearer tok"}); r.status != 200 {
			t.Fatalf("split: %s", r)
		}
	}
	var failed, done atomic.Int64
	var counts [2]atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 400; i++ { // bounded: at most 400 each, until stop
				select {
				case <-stop:
					return
				default:
				}
				r := post(t, ts.URL+"/api/predict", img, nil)
				done.Add(1)
				m, _ := served(r)
				switch {
				case r.status != 200:
					failed.Add(1)
					t.Errorf("under a split change: %s", r)
				case m == "champion":
					counts[0].Add(1)
				default:
					counts[1].Add(1)
				}
			}
		})
	}
	for _, w := range [][2]float64{{50, 50}, {0, 100}, {90, 10}, {0, 100}} {
		time.Sleep(150 * time.Millisecond)
		setSplit(w[0], w[1])
	}
	time.Sleep(150 * time.Millisecond)
	before := counts[1].Load()
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || done.Load() < 8 {
		t.Errorf("%d of %d requests failed", failed.Load(), done.Load())
	}
	if counts[0].Load() == 0 || counts[1].Load() == before {
		t.Errorf("champion %d, challenger %d (challenger only at the end: +%d)", counts[0].Load(), counts[1].Load(), counts[1].Load()-before)
	}
	var h healthAnswer
	get(t, ts.URL+"/api/health").json(t, &h)
	if h.Split.Weights["challenger"] != 100 || h.Split.By != "admin" {
		t.Errorf("split %+v", h.Split)
	}
	for _, tt := range []struct {
		body   string
		status int
	}{
		{`{"weights": {"champion": -1}}`, 400},
		{`{"weights": {"champion": 0, "challenger": 0}}`, 400},
		{`{"weights": {"nope": 1}}`, 404},
		{`{"weights": {}}`, 400},
		{`not json`, 400},
	} {
		if r := post(t, ts.URL+"/admin/split", []byte(tt.body), map[string]string{"Authorization": "Bearer tok"}); r.status != tt.status {
			t.Errorf("split %s: %s, want %d", tt.body, r, tt.status)
		}
	}
	if r := post(t, ts.URL+"/admin/split", []byte(`{"weights": {"champion": 1}}`), nil); r.status != 401 {
		t.Errorf("split without the token: %s", r)
	}
}

// TestGuardDropsAFailingChallenger: a challenger whose predictions fail
// (injected) is taken out of the split by the guard, counted and logged;
// the champion goes on answering everything.
func TestGuardDropsAFailingChallenger(t *testing.T) {
	dir, _ := twoVersions(t)
	ts := startAll(t, Config{Models: twoModels(50, 50), TrackingURI: dir,
		Guard: GuardConfig{Window: 40, MinRequests: 10, Interval: time.Hour}}) // checked by hand below
	ts.failInject = func(model string) error {
		if model == "challenger" {
			return errors.New("injected failure")
		}
		return nil
	}
	img := petImage(t, "Abyssinian_11.jpg")
	fails := 0
	for i := range 60 {
		r := post(t, ts.URL+"/api/predict", img, map[string]string{"X-User-Id": fmt.Sprint(i)})
		if r.status != 200 {
			fails++
		}
	}
	if fails == 0 {
		t.Fatal("no injected failure reached a client: the test injects nothing")
	}
	if out := ts.checkGuard(); len(out) != 1 || out[0] != "challenger" {
		t.Fatalf("guard took out %v", out)
	}
	for i := range 30 {
		r := post(t, ts.URL+"/api/predict", img, map[string]string{"X-User-Id": fmt.Sprint(i)})
		if m, _ := served(r); r.status != 200 || m != "champion" {
			t.Fatalf("after the guard: %s from %s", r, m)
		}
	}
	if v, _ := metric(t, ts.URL, `petbreed_canary_guard_trips_total{model="challenger"}`); v != 1 {
		t.Errorf("guard trips %v", v)
	}
	if v, _ := metric(t, ts.URL, `petbreed_model_errors_total{model="challenger",version="2"}`); int(v) != fails {
		t.Errorf("the challenger's errors: %v, want the %d failed answers", v, fails)
	}
	if v, _ := metric(t, ts.URL, `petbreed_model_errors_total{model="champion",version="1"}`); v != 0 {
		t.Errorf("the champion's errors: %v", v)
	}
	if !strings.Contains(ts.logs.String(), "canary guard: challenger taken out") {
		t.Error("no log line")
	}
	var h healthAnswer
	get(t, ts.URL+"/api/health").json(t, &h)
	if h.Split.Weights["challenger"] != 0 || h.Split.By != "guard" {
		t.Errorf("split %+v", h.Split)
	}
	if out := ts.checkGuard(); len(out) != 0 {
		t.Errorf("guard again: %v", out)
	}
}

// recorder is a PredictionLog that keeps the records (the real ab.Log is
// tested in its package and in TestPredictionLogMounted).
type recorder struct {
	mu   sync.Mutex
	recs []ab.Record
}

func (r *recorder) Record(rec ab.Record) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}
func (r *recorder) records() []ab.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ab.Record(nil), r.recs...)
}
func (r *recorder) FeedbackHandler() http.Handler { return http.NotFoundHandler() }
func (r *recorder) ReportHandler() http.Handler   { return http.NotFoundHandler() }

// TestShadow: a shadow gets a copy of every request, its answers are
// recorded, never returned.
func TestShadow(t *testing.T) {
	dir, _ := twoVersions(t)
	rec := &recorder{}
	models := []ModelSpec{{Name: "champion", URI: "models:/pet-breed@champion", Weight: 1},
		{Name: "shadow", URI: "models:/pet-breed@challenger", Shadow: true}}
	ts := startAll(t, Config{Models: models, TrackingURI: dir, PredictionLog: rec})
	const n = 12
	ids := map[string]bool{}
	for i, name := range breedImages[:n] {
		r := post(t, ts.URL+"/api/predict", petImage(t, name), map[string]string{"X-User-Id": fmt.Sprint("u", i)})
		var a predictAnswer
		r.json(t, &a)
		if m, v := served(r); r.status != 200 || m != "champion" || v != "1" || a.Model.Name != "champion" {
			t.Fatalf("answer from %s/%s: %s", m, v, r)
		}
		ids[a.RequestID] = true
	}
	// A V2 request that names the champion is copied and logged too.
	const named = 2
	for i := range named {
		id := fmt.Sprint("v2-", i)
		body, _ := json.Marshal(map[string]any{"id": id, "inputs": []map[string]any{{"name": "image", "datatype": "BYTES",
			"shape": []int{1}, "data": []string{b64(petImage(t, breedImages[i]))}}}})
		if r := post(t, ts.URL+"/v2/models/champion/infer", body, map[string]string{"X-User-Id": id}); r.status != 200 {
			t.Fatalf("V2 by name: %s", r)
		} else {
			ids[r.header.Get("X-Request-Id")] = true
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.records()) < 2*(n+named) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	recs := rec.records()
	var primary, shadow int
	for _, r := range recs {
		if !ids[r.RequestID] || len(r.TopK) == 0 || r.Unit == "" || r.LatencyMS <= 0 {
			t.Errorf("record %+v", r)
		}
		if r.Shadow {
			shadow++
			if r.Model != "shadow" || r.Version != "2" {
				t.Errorf("shadow record %+v", r)
			}
		} else {
			primary++
			if r.Model != "champion" {
				t.Errorf("primary record %+v", r)
			}
		}
	}
	if primary != n+named || shadow != n+named {
		t.Errorf("%d primary and %d shadow records, want %d each", primary, shadow, n+named)
	}
	// The shadow is not reachable through the split.
	var h healthAnswer
	get(t, ts.URL+"/api/health").json(t, &h)
	if !h.Models[1].Shadow || h.Models[1].Share != 0 {
		t.Errorf("shadow in health %+v", h.Models[1])
	}
	if v, _ := metric(t, ts.URL, `petbreed_model_requests_total{model="shadow",version="2"}`); v != n+named {
		t.Errorf("the shadow's requests: %v, want %d", v, n+named)
	}
}

// TestShadowDroppedWhenBusy: with no room for shadows (ShadowMax 1 and
// clients at once), copies are dropped and counted, and every primary
// answer succeeds.
func TestShadowDroppedWhenBusy(t *testing.T) {
	dir, _ := twoVersions(t)
	models := []ModelSpec{{Name: "champion", URI: "models:/pet-breed@champion", Weight: 1},
		{Name: "shadow", URI: "models:/pet-breed@challenger", Shadow: true}}
	ts := startAll(t, Config{Models: models, TrackingURI: dir, ShadowMax: 1, Queue: 8})
	img := petImage(t, "Bengal_12.jpg")
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 6 {
				if r := post(t, ts.URL+"/api/predict", img, nil); r.status != 200 && r.status != 503 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d primary requests failed", failed.Load())
	}
	dropped, _ := metric(t, ts.URL, `petbreed_shadow_dropped_total{model="shadow"}`)
	got, _ := metric(t, ts.URL, `petbreed_model_requests_total{model="shadow",version="2"}`)
	if dropped == 0 || got+dropped > 48 {
		t.Errorf("shadow: %v answered, %v dropped of 48", got, dropped)
	}
}

// TestCompressedBodies: gzip and deflate request bodies are decoded; a
// gzip bomb is 413; answers are gzipped when asked.
func TestCompressedBodies(t *testing.T) {
	ts := start(t, Config{MaxBody: 1 << 20})
	img := petImage(t, "Bengal_13.jpg")
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	zl := func(b []byte) []byte {
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	v2body, _ := json.Marshal(map[string]any{"id": "req-7", "inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(img)}}}})
	for _, tt := range []struct {
		name, path, enc string
		body            []byte
		status          int
	}{
		{"predict gzip", "/api/predict", "gzip", gz(img), 200},
		{"predict deflate", "/api/predict", "deflate", zl(img), 200},
		{"v2 gzip", "/v2/models/pet-breed/infer", "gzip", gz(v2body), 200},
		{"v2 deflate", "/v2/models/pet-breed/infer", "deflate", zl(v2body), 200},
		{"bomb", "/api/predict", "gzip", gz(append(append([]byte{}, img[:16]...), make([]byte, 50<<20)...)), 413},
		{"v2 bomb", "/v2/models/pet-breed/infer", "gzip", gz(bytes.Repeat([]byte(" "), 50<<20)), 413},
		{"corrupt gzip", "/api/predict", "gzip", []byte("not gzip at all"), 400},
		{"brotli", "/api/predict", "br", img, 415},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, ts.URL+tt.path, tt.body, map[string]string{"Content-Encoding": tt.enc})
			if r.status != tt.status {
				t.Fatalf("%s", r)
			}
			if tt.status == 200 && strings.HasPrefix(tt.path, "/v2") {
				if a := parseInfer(t, r); a.ID != "req-7" {
					t.Errorf("id %q", a.ID)
				}
			}
			if tt.status == 413 && ts.budget.inUse() != 0 {
				t.Errorf("%d bytes of the budget held", ts.budget.inUse())
			}
		})
	}
	if len(gz(make([]byte, 50<<20))) > 1<<20 {
		t.Fatal("the bomb is not small")
	}
	// Compressed answers, in the coding the client prefers (Go's client
	// would decode gzip silently: ask by hand).
	for _, tt := range []struct {
		accept, want string
		reader       func(io.Reader) (io.Reader, error)
	}{
		{"gzip", "gzip", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
		{"deflate", "deflate", func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) }},
		{"gzip;q=0.5, deflate", "deflate", func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) }},
		{"br, identity", "", func(r io.Reader) (io.Reader, error) { return r, nil }},
	} {
		req, _ := http.NewRequest("GET", ts.URL+"/openapi.json", nil)
		req.Header.Set("Accept-Encoding", tt.accept)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Content-Encoding"); got != tt.want {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q, want %q", tt.accept, got, tt.want)
		}
		zr, err := tt.reader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		resp.Body.Close()
		if err != nil || !bytes.Equal(b, openapiJSON) {
			t.Errorf("Accept-Encoding %q: %d bytes, %v", tt.accept, len(b), err)
		}
	}
	// An id in every V2 answer: the server's request id when none is sent.
	body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(img)}}}})
	r := post(t, ts.URL+"/v2/models/pet-breed/infer", body, nil)
	if a := parseInfer(t, r); a.ID == "" || a.ID != r.header.Get("X-Request-Id") {
		t.Errorf("id %q, request id %q", a.ID, r.header.Get("X-Request-Id"))
	}
}

// TestModelsFile reads a --models file and refuses bad ones.
func TestModelsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, fmt.Sprint(len(s), ".yaml"))
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	f, err := ReadModelsFile(write("models:\n  - {name: a, uri: a.onnx, weight: 90}\n  - {name: b, uri: b.onnx, weight: 10}\n  - {name: s, uri: s.onnx, shadow: true}\nsplit_header: X-Team\n"))
	if err != nil || len(f.Models) != 3 || f.Models[0].Weight != 90 || !f.Models[2].Shadow || f.SplitHeader != "X-Team" {
		t.Fatalf("%+v, %v", f, err)
	}
	for _, bad := range []string{
		"models: []\n",
		"models:\n  - {uri: a.onnx}\n  - {uri: b.onnx}\n",
		"models:\n  - {name: a, uri: a.onnx}\n  - {name: a, uri: b.onnx}\n",
		"models:\n  - {name: a, uri: a.onnx, weight: -1}\n",
		"models:\n  - {name: a, uri: a.onnx, shadow: true}\n",
		"models:\n  - {name: 'a b', uri: a.onnx}\n",
		"models:\n  - {name: a, uri: a.onnx, wieght: 1}\n",
		"models:\n  - {name: a}\n",
	} {
		if _, err := ReadModelsFile(write(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	for in, want := range map[string]ModelSpec{
		"champion=models:/pet-breed@champion": {Name: "champion", URI: "models:/pet-breed@champion"},
		"models:/pet-breed@champion":          {URI: "models:/pet-breed@champion"},
		"/tmp/a=b.onnx":                       {URI: "/tmp/a=b.onnx"},
		"x.onnx":                              {URI: "x.onnx"},
	} {
		if got := ParseModelFlag(in); got != want {
			t.Errorf("ParseModelFlag(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// TestPredictionLogMounted: with package ab's real log, a split answer is
// recorded under its request id, feedback for it is accepted (and refused
// for an id the log does not know), and the report is served.
func TestPredictionLogMounted(t *testing.T) {
	l, err := ab.Open(filepath.Join(t.TempDir(), "predictions.jsonl"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ts := start(t, Config{PredictionLog: l})
	var a predictAnswer
	post(t, ts.URL+"/api/predict", petImage(t, "Bengal_10.jpg"), map[string]string{"X-User-Id": "u1"}).json(t, &a)
	if a.RequestID == "" {
		t.Fatalf("no request id: %+v", a)
	}
	fb := fmt.Sprintf(`{"request_id": %q, "label": "Bengal"}`, a.RequestID)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := post(t, ts.URL+"/api/feedback", []byte(fb), map[string]string{"Content-Type": "application/json"})
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("feedback: %s", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := post(t, ts.URL+"/api/feedback", []byte(`{"request_id": "never-seen", "label": "Bengal"}`), map[string]string{"Content-Type": "application/json"}); r.status != 404 {
		t.Errorf("feedback for an unknown id: %s", r)
	}
	if r := get(t, ts.URL+"/api/ab"); r.status != 200 || !bytes.Contains(r.body, []byte("pet-breed")) {
		t.Errorf("report: %s", r)
	}
	var h healthAnswer
	if get(t, ts.URL+"/api/health").json(t, &h); !h.Feedback {
		t.Error(`health: "feedback" false with a prediction log`)
	}
}

// TestNoPredictionLog: without a log, its endpoints are 404 with a reason.
func TestNoPredictionLog(t *testing.T) {
	s, err := New(Config{Model: "x.onnx"})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*http.Request{httptestRequest("POST", "/api/feedback"), httptestRequest("GET", "/api/ab")} {
		w := newRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != 404 || !strings.Contains(w.Body.String(), "--prediction-log") {
			t.Errorf("%s %s: %d %s", req.Method, req.URL.Path, w.Code, w.Body)
		}
	}
	w := newRecorder()
	s.Handler().ServeHTTP(w, httptestRequest("GET", "/api/health"))
	if !strings.Contains(w.Body.String(), `"feedback":false`) {
		t.Errorf(`health without a prediction log: %s, want "feedback":false`, w.Body)
	}
}

func httptestRequest(method, path string) *http.Request {
	return httptest.NewRequest(method, path, nil)
}
func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// TestShadowConfig: the shadow's defaults and bounds.
func TestShadowConfig(t *testing.T) {
	for _, tt := range []struct {
		in           Config
		threads, max int
		timeout      time.Duration
		err          bool
	}{
		{Config{Model: "x.onnx"}, 1, DefaultMaxBatch, DefaultShadowTimeout, false},
		{Config{Model: "x.onnx", ShadowThreads: 4, Threads: 2, ShadowMax: 3, ShadowTimeout: time.Second}, 2, 3, time.Second, false},
		{Config{Model: "x.onnx", ShadowThreads: -1}, 0, 0, 0, true},
		{Config{Model: "x.onnx", ShadowMax: -1}, 0, 0, 0, true},
	} {
		s, err := New(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("%+v: no error", tt.in)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if c := s.cfg; c.ShadowThreads != tt.threads || c.ShadowMax != tt.max || c.ShadowTimeout != tt.timeout {
			t.Errorf("%+v: threads %d, max %d, timeout %v", tt.in, c.ShadowThreads, c.ShadowMax, c.ShadowTimeout)
		}
	}
}
