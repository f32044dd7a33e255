package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBatchingKeepsAnswersApart sends concurrent requests of different
// breeds, through /api/predict and V2 (one image or several a request), and
// checks that every request gets its own images' answers while the model
// ran them in shared batches.
func TestBatchingKeepsAnswersApart(t *testing.T) {
	ts := start(t, Config{MaxBatch: 8, MaxDelay: 20 * time.Millisecond, Queue: 128})
	images := map[string][]byte{}
	for _, f := range breedImages {
		images[f] = petImage(t, f)
	}
	const rounds, perRound = 3, 24
	var wg sync.WaitGroup
	var failures atomic.Int64
	var sent atomic.Int64
	fail := func(format string, args ...any) {
		failures.Add(1)
		t.Errorf(format, args...)
	}
	for round := range rounds {
		for i := range perRound {
			f := breedImages[(round*7+i)%len(breedImages)]
			g := breedImages[(round*7+i+5)%len(breedImages)]
			wg.Go(func() {
				switch i % 3 {
				case 0, 1: // /api/predict
					sent.Add(1)
					r := post(t, ts.URL+"/api/predict", images[f], nil)
					var a predictAnswer
					if err := json.Unmarshal(r.body, &a); err != nil || r.status != 200 || a.PredictedBreed != breedOf(f) {
						fail("%s: %s", f, r)
					}
				case 2: // V2, two images of different breeds in one request
					sent.Add(2)
					body, _ := json.Marshal(map[string]any{
						"inputs":  []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{2}, "data": []string{b64(images[f]), b64(images[g])}}},
						"outputs": []map[string]any{{"name": ts.current().output.Name, "parameters": map[string]any{"classification": 1}}},
					})
					r := post(t, ts.URL+"/v2/models/pet-breed/infer", body, nil)
					var a v2Answer
					if err := json.Unmarshal(r.body, &a); err != nil || r.status != 200 || len(a.Outputs) != 1 {
						fail("v2 %s+%s: %s", f, g, r)
						return
					}
					var cls []string
					json.Unmarshal(a.Outputs[0].Data, &cls)
					if len(cls) != 2 || !strings.HasSuffix(cls[0], ":"+breedOf(f)) || !strings.HasSuffix(cls[1], ":"+breedOf(g)) {
						fail("v2 %s+%s: %v", f, g, cls)
					}
				}
			})
		}
		wg.Wait()
	}
	if failures.Load() > 0 {
		return
	}
	sum, _ := metric(t, ts.URL, "petbreed_batch_size_sum")
	count, _ := metric(t, ts.URL, "petbreed_batch_size_count")
	t.Logf("%d images in %v batches (mean %.1f)", sent.Load(), count, sum/count)
	if int64(sum) != sent.Load() {
		t.Errorf("batches hold %v images, %d were sent", sum, sent.Load())
	}
	if count >= sum || count == 0 {
		t.Errorf("%v batches for %v images: no batching", count, sum)
	}
	if big, _ := metric(t, ts.URL, `petbreed_batch_size_bucket{le="1"}`); big == count {
		t.Errorf("every batch had one image")
	}
	if over, _ := metric(t, ts.URL, `petbreed_batch_size_bucket{le="8"}`); over != count {
		t.Errorf("%v of %v batches within --max-batch 8", over, count)
	}
}

// TestOverload fills a small queue: the excess gets 503 with Retry-After at
// once, the rest is answered right.
func TestOverload(t *testing.T) {
	ts := start(t, Config{MaxBatch: 1, MaxDelay: -1, Queue: 2})
	jpg := petImage(t, "Bengal_12.jpg")
	const n = 40
	type result struct {
		r   response
		dur time.Duration
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			t0 := time.Now()
			r := post(t, ts.URL+"/api/predict", jpg, nil)
			results[i] = result{r, time.Since(t0)}
		})
	}
	wg.Wait()
	var ok, busy int
	var okTime, busyTime time.Duration
	for _, res := range results {
		switch res.r.status {
		case 200:
			var a predictAnswer
			res.r.json(t, &a)
			if a.PredictedBreed != "Bengal" {
				t.Errorf("answer %s", res.r)
			}
			ok++
			okTime += res.dur
		case 503:
			var e struct{ Error, Detail string }
			res.r.json(t, &e)
			if e.Error != "overloaded" || res.r.header.Get("Retry-After") == "" {
				t.Errorf("503: %s, Retry-After %q", res.r, res.r.header.Get("Retry-After"))
			}
			busy++
			busyTime += res.dur
		default:
			t.Errorf("status %s", res.r)
		}
	}
	t.Logf("%d answered (mean %v), %d refused (mean %v)", ok, okTime/time.Duration(max(ok, 1)), busy, busyTime/time.Duration(max(busy, 1)))
	if ok == 0 || busy == 0 {
		t.Fatalf("%d answered, %d refused: want both", ok, busy)
	}
	if rejected, _ := metric(t, ts.URL, "petbreed_overload_rejections_total"); int(rejected) != busy {
		t.Errorf("rejections metric %v, %d refused", rejected, busy)
	}
	if adm, _ := metric(t, ts.URL, "petbreed_queue_admitted"); adm != 0 {
		t.Errorf("%v images still admitted after the load", adm)
	}
	// V2 says it in its own error form.
	body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{3},
		"data": []string{b64(jpg), b64(jpg), b64(jpg)}}}})
	r := post(t, ts.URL+"/v2/models/pet-breed/infer", body, nil)
	var e map[string]string
	r.json(t, &e)
	if r.status != 400 || !strings.Contains(e["error"], "over the server's limit") {
		t.Errorf("a batch larger than the queue: %s", r)
	}
}

// corruptModel is an MLflow model folder whose ONNX file is garbage.
func corruptModel(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "broken")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "model.onnx"), []byte("this is not an ONNX model"), 0o644)
	return dir
}

func reload(t *testing.T, url, token string) response {
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return post(t, url+"/admin/reload", nil, h)
}

// TestReloadUnderLoad swaps models while clients keep asking: no request
// fails, every answer is right, and a corrupt model is kept out.
func TestReloadUnderLoad(t *testing.T) {
	storeDir, store := newStore(t)
	ts := start(t, Config{Model: "models:/pet-breed@champion", TrackingURI: storeDir, AdminToken: "s3cret", Poll: -1,
		MaxDelay: 5 * time.Millisecond})
	src := championDir(t)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests, failures atomic.Int64
	var versionsMu sync.Mutex
	versions := map[string]int{}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f := breedImages[(w*5+i)%len(breedImages)]
				req, _ := http.NewRequest("POST", ts.URL+"/api/predict", bytes.NewReader(petImage(t, f)))
				resp, err := client.Do(req)
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					t.Errorf("request: %v", err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var a predictAnswer
				if resp.StatusCode != 200 || json.Unmarshal(b, &a) != nil || a.PredictedBreed != breedOf(f) {
					failures.Add(1)
					t.Errorf("%s: %d %s", f, resp.StatusCode, b)
					continue
				}
				versionsMu.Lock()
				versions[a.Model.Version]++
				versionsMu.Unlock()
			}
		})
	}
	pause := func() { time.Sleep(300 * time.Millisecond) }
	pause()

	// Admin auth.
	if r := reload(t, ts.URL, ""); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("reload without a token: %s", r)
	}
	if r := reload(t, ts.URL, "wrong"); r.status != 401 {
		t.Errorf("reload with a wrong token: %s", r)
	}
	// Version 2, by hand.
	register(t, store, src)
	var res struct {
		Status   string
		Model    ModelInfo
		Previous *ModelInfo
	}
	r := reload(t, ts.URL, "s3cret")
	r.json(t, &res)
	if r.status != 200 || res.Status != "reloaded" || res.Model.Version != "2" || res.Previous == nil || res.Previous.Version != "1" {
		t.Fatalf("reload: %s", r)
	}
	pause()
	// A corrupt version 3: refused, version 2 goes on.
	register(t, store, corruptModel(t))
	var bad struct {
		Error, Detail string
		Serving       *ModelInfo
	}
	r = reload(t, ts.URL, "s3cret")
	r.json(t, &bad)
	if r.status != 422 || bad.Serving == nil || bad.Serving.Version != "2" || !strings.Contains(bad.Detail, "model.onnx") {
		t.Errorf("reload of a corrupt model: %s", r)
	}
	pause()
	// Version 4, good again.
	register(t, store, src)
	r = reload(t, ts.URL, "s3cret")
	r.json(t, &res)
	if r.status != 200 || res.Model.Version != "4" {
		t.Errorf("reload: %s", r)
	}
	pause()
	close(stop)
	wg.Wait()

	t.Logf("%d requests, %d failed; answers by version: %v", requests.Load(), failures.Load(), versions)
	if failures.Load() != 0 {
		t.Errorf("%d requests failed during reloads", failures.Load())
	}
	for _, v := range []string{"1", "2", "4"} {
		if versions[v] == 0 {
			t.Errorf("no answer from version %s", v)
		}
	}
	if versions["3"] != 0 {
		t.Error("the corrupt version answered")
	}
	var h healthAnswer
	get(t, ts.URL+"/api/health").json(t, &h)
	if h.Model.Version != "4" || h.LastReloadError != nil {
		t.Errorf("health: %+v", h)
	}
	if v, _ := metric(t, ts.URL, `petbreed_model_info{name="pet-breed",version="4"}`); v != 1 {
		t.Error("model_info does not show version 4")
	}
	if _, ok := metric(t, ts.URL, `petbreed_model_info{name="pet-breed",version="2"}`); ok {
		t.Error("model_info still shows version 2")
	}
	if ok, _ := metric(t, ts.URL, `petbreed_model_reloads_total{result="ok"}`); ok != 3 {
		t.Errorf("%v good loads, want 3", ok)
	}
	// The replaced models were closed once their requests were done.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(ts.logs.String(), "previous model closed") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(ts.logs.String(), "previous model closed"); n != 2 {
		t.Errorf("%d models closed, want 2", n)
	}
}

// TestReloadByPolling moves the alias: the server follows it, keeps a
// corrupt version out (and reports it once), and the admin endpoints are off
// without a token.
func TestReloadByPolling(t *testing.T) {
	storeDir, store := newStore(t)
	ts := start(t, Config{Model: "models:/pet-breed@champion", TrackingURI: storeDir, Poll: 20 * time.Millisecond})
	if r := reload(t, ts.URL, "anything"); r.status != 404 {
		t.Errorf("admin without a configured token: %s", r)
	}
	waitFor := func(what string, cond func(h healthAnswer) bool) healthAnswer {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			var h healthAnswer
			get(t, ts.URL+"/api/health").json(t, &h)
			if cond(h) {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: health %+v", what, h)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	register(t, store, championDir(t))
	waitFor("version 2", func(h healthAnswer) bool { return h.Model.Version == "2" })
	register(t, store, corruptModel(t))
	h := waitFor("reload error", func(h healthAnswer) bool { return h.LastReloadError != nil })
	if h.Model.Version != "2" || h.Status != "healthy" || !strings.Contains(h.LastReloadError.Message, "model.onnx") {
		t.Errorf("health after a corrupt version: %+v", h)
	}
	time.Sleep(200 * time.Millisecond) // 10 polls
	if failed, _ := metric(t, ts.URL, `petbreed_model_reloads_total{result="failed"}`); failed != 1 {
		t.Errorf("%v failed loads: a corrupt version must be tried once", failed)
	}
	var a predictAnswer
	post(t, ts.URL+"/api/predict", petImage(t, "Abyssinian_12.jpg"), nil).json(t, &a)
	if a.PredictedBreed != "Abyssinian" || a.Model.Version != "2" {
		t.Errorf("answer %+v", a)
	}
	// Back to version 1: followed, and the error is cleared.
	if err := store.SetAlias("pet-breed", "champion", 1); err != nil {
		t.Fatal(err)
	}
	waitFor("version 1", func(h healthAnswer) bool { return h.Model.Version == "1" && h.LastReloadError == nil })
}

// TestGracefulShutdown stops the server while a request is still sending
// its body: the request completes, new connections are refused, Run
// returns nil.
func TestGracefulShutdown(t *testing.T) {
	ts := start(t, Config{})
	jpg := petImage(t, "Bengal_13.jpg")
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", ts.URL+"/api/predict", pr)
	req.ContentLength = int64(len(jpg))
	type answer struct {
		r   *http.Response
		b   []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- answer{resp, b, err}
	}()
	pw.Write(jpg[:len(jpg)/2])
	// Wait until the request is in the handler.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v, _ := metric(t, ts.URL, "petbreed_http_requests_in_flight"); v >= 2 { // it and /metrics
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow request never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop() }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.URL, "http://"), time.Second); err == nil {
		c.Close()
		t.Error("a new connection was accepted while draining")
	}
	if ts.Ready() {
		t.Error("ready while draining")
	}
	pw.Write(jpg[len(jpg)/2:])
	pw.Close()
	a := <-done
	if a.err != nil || a.r.StatusCode != 200 || !strings.Contains(string(a.b), `"predicted_breed":"Bengal"`) {
		t.Fatalf("the request in flight: %v %v %s", a.err, a.r, a.b)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the last request")
	}
	if !strings.Contains(ts.logs.String(), `"msg":"stopped"`) {
		t.Error("no stop in the log")
	}
}

// TestRunFailsWithoutAModel: a model that cannot be loaded at start is an
// error from Run (the process exits 1), not a server that is never ready.
func TestRunFailsWithoutAModel(t *testing.T) {
	s, err := New(Config{Model: filepath.Join(t.TempDir(), "missing.onnx")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.Run(ctx, ln)
	if err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("Run: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("still listening")
	}
}
