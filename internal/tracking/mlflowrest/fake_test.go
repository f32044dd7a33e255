package mlflowrest

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"petbreed/internal/testassets"
	"petbreed/internal/tracking"
)

// fake is a small stand-in for an MLflow server, for the edge cases a real
// one does not produce on demand: rate limiting, lost answers, slowness,
// torn bodies. It keeps one run's metrics.
type fake struct {
	mu       sync.Mutex
	metrics  []metricJSON
	runs     []runJSON          // runs/create
	versions []modelVersionJSON // model-versions/create
	uploaded int64              // bytes PUT to the artifact proxy
	files    map[string][]byte  // the run's artifacts, for GETs
	auth     []string
	// fail, when set, decides for each request what goes wrong: "" none,
	// "429", "503-after" (apply, then answer 503), "slow", "torn".
	fail  func(path string, n int) string
	calls atomic.Int64
}

const fakeRun = "0123456789abcdef0123456789abcdef"

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.calls.Add(1))
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, apiPrefix)
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, artifactPrefix) && f.files != nil {
		rel := strings.TrimPrefix(r.URL.Path, artifactPrefix+"1/"+fakeRun+"/artifacts/")
		b, ok := f.files[rel]
		if !ok {
			w.WriteHeader(500)
			w.Write([]byte(`{"error_code":"INTERNAL_ERROR","message":"No such file"}`))
			return
		}
		w.Write(b)
		return
	}
	if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, artifactPrefix) {
		n, _ := io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		f.uploaded += n
		f.mu.Unlock()
		w.Write([]byte("{}"))
		return
	}
	mode := ""
	if f.fail != nil {
		mode = f.fail(path, n)
	}
	switch mode {
	case "429":
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}`, http.StatusTooManyRequests)
		return
	case "slow":
		time.Sleep(2 * time.Second)
	case "torn":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"run": {"info": {"run_id": "01`))
		return
	}
	switch path {
	case "runs/log-batch":
		var body struct {
			Metrics []metricJSON `json:"metrics"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"error_code":"MALFORMED_REQUEST","message":"bad json"}`, 400)
			return
		}
		f.mu.Lock()
		f.metrics = append(f.metrics, body.Metrics...) // like the file store: no dedup
		f.mu.Unlock()
	case "metrics/get-history":
		f.mu.Lock()
		var out []metricJSON
		for _, m := range f.metrics {
			if m.Key == r.URL.Query().Get("metric_key") {
				out = append(out, m)
			}
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"metrics": out})
		return
	case "runs/create":
		var body struct {
			Tags []keyValue `json:"tags"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		run := runJSON{Info: runInfoJSON{RunID: strings.Repeat("a", 31) + string(rune('0'+len(f.runs))), ExperimentID: "1", Status: "RUNNING",
			ArtifactURI: "mlflow-artifacts:/1/x/artifacts"}}
		run.Data.Tags = body.Tags
		f.runs = append(f.runs, run)
		f.mu.Unlock()
		if mode != "503-after" {
			json.NewEncoder(w).Encode(map[string]any{"run": run})
			return
		}
	case "runs/search":
		var body struct {
			Filter string `json:"filter"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		var out []runJSON
		for _, run := range f.runs {
			for _, t := range run.Data.Tags {
				if t.Key == TagRequestID && strings.Contains(body.Filter, "'"+t.Value+"'") {
					out = append(out, run)
				}
			}
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"runs": out})
		return
	case "registered-models/create":
	case "model-versions/create":
		var body modelVersionJSON
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		body.Version = strconv.Itoa(len(f.versions) + 1)
		f.versions = append(f.versions, body)
		f.mu.Unlock()
		if mode != "503-after" {
			json.NewEncoder(w).Encode(map[string]any{"model_version": body})
			return
		}
	case "model-versions/search":
		f.mu.Lock()
		json.NewEncoder(w).Encode(map[string]any{"model_versions": f.versions})
		f.mu.Unlock()
		return
	case "runs/get":
		if r.URL.Query().Get("run_id") != fakeRun {
			w.WriteHeader(404)
			w.Write([]byte(`{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Run not found"}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"run": map[string]any{"info": map[string]any{
			"run_id": fakeRun, "experiment_id": "1", "status": "RUNNING", "artifact_uri": "mlflow-artifacts:/1/" + fakeRun + "/artifacts",
			"lifecycle_stage": "active", "start_time": 1,
		}}})
		return
	default:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(404)
		w.Write([]byte("<html>Not Found</html>"))
		return
	}
	if mode == "503-after" {
		http.Error(w, "upstream gone", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("{}"))
}

func startFake(t *testing.T, f *fake) string {
	t.Helper()
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return ts.URL
}

func fast() Options {
	return Options{BackoffFactor: time.Millisecond, BackoffJitter: -1, MaxRetries: 3}
}

// A log-batch whose answer is lost after the server stored it is not sent
// again as it was: the values already there are found and not repeated.
func TestLogMetricsLostAnswerNoDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(string, int) string
		want int // stored values
	}{
		{"503 after storing", func(p string, n int) string {
			if p == "runs/log-batch" && n == 2 {
				return "503-after"
			}
			return ""
		}, 3},
		{"429 before storing", func(p string, n int) string {
			if p == "runs/log-batch" && n <= 3 {
				return "429"
			}
			return ""
		}, 3},
		{"no failure", nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{fail: tc.fail}
			c := newClient(t, startFake(t, f), fast())
			w, err := c.OpenRun(fakeRun)
			if err != nil {
				t.Fatal(err)
			}
			err = w.LogMetrics([]tracking.Metric{{Key: "a", Value: 1, Step: 1}, {Key: "a", Value: 2, Step: 2}, {Key: "b", Value: 3, Step: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if len(f.metrics) != tc.want {
				t.Fatalf("server holds %d values, want %d: %+v", len(f.metrics), tc.want, f.metrics)
			}
		})
	}
}

// Idempotent calls are retried on 429 and 5xx, up to MaxRetries, then the
// error says so; a 4xx is not retried and shows MLflow's code and message.
func TestRetries(t *testing.T) {
	f := &fake{fail: func(p string, n int) string {
		if p == "runs/get" && n <= 2 {
			return "429"
		}
		return ""
	}}
	c := newClient(t, startFake(t, f), fast())
	if _, err := c.GetRun(fakeRun); err != nil {
		t.Fatalf("GetRun after two 429s: %v", err)
	}
	if f.calls.Load() != 3 {
		t.Errorf("%d calls, want 3", f.calls.Load())
	}

	f = &fake{fail: func(string, int) string { return "429" }}
	c = newClient(t, startFake(t, f), fast())
	_, err := c.GetRun(fakeRun)
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 retries") || !strings.Contains(err.Error(), "REQUEST_LIMIT_EXCEEDED") {
		t.Errorf("always 429: %v", err)
	}
	if f.calls.Load() != 4 {
		t.Errorf("%d calls, want 1 + 3 retries", f.calls.Load())
	}

	f = &fake{}
	c = newClient(t, startFake(t, f), fast())
	_, err = c.GetRun("fedcba9876543210fedcba9876543210")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "RESOURCE_DOES_NOT_EXIST" || !errors.Is(err, tracking.ErrNotFound) || f.calls.Load() != 1 {
		t.Errorf("a 404: %v (%d calls)", err, f.calls.Load())
	}
	_, err = c.RegisteredModels() // the fake has no such route: an HTML 404
	if err == nil || !strings.Contains(err.Error(), "no such route") {
		t.Errorf("an HTML 404: %v", err)
	}
}

// A slow server is cut off by the timeout; a torn answer is an error, not
// a half-read value.
func TestTimeoutAndTornAnswer(t *testing.T) {
	f := &fake{fail: func(p string, n int) string { return "slow" }}
	opt := fast()
	opt.Timeout, opt.MaxRetries = 200*time.Millisecond, -1
	c := newClient(t, startFake(t, f), opt)
	start := time.Now()
	_, err := c.GetRun(fakeRun)
	if err == nil || time.Since(start) > 1500*time.Millisecond {
		t.Errorf("slow server: %v after %v", err, time.Since(start))
	}

	f = &fake{fail: func(p string, n int) string { return "torn" }}
	c = newClient(t, startFake(t, f), fast())
	if _, err := c.GetRun(fakeRun); err == nil || !strings.Contains(err.Error(), "bad JSON") {
		t.Errorf("torn answer: %v", err)
	}
	if f.calls.Load() != 4 {
		t.Errorf("a torn answer to a GET was tried %d times, want 4", f.calls.Load())
	}
}

// Credentials go as MLflow's clients send them: basic when a user and
// password are set, else a bearer token.
func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{Token: "tok"}, "Bearer tok"},
		{Options{Username: "u", Password: "p", Token: "tok"}, "Basic dTpw"},
		{Options{}, ""},
	} {
		f := &fake{}
		c := newClient(t, startFake(t, f), tc.opt)
		if _, err := c.GetRun(fakeRun); err != nil {
			t.Fatal(err)
		}
		if f.auth[0] != tc.want {
			t.Errorf("%+v: Authorization %q, want %q", tc.opt, f.auth[0], tc.want)
		}
	}
	if _, err := New("http://user:pw@127.0.0.1:1", Options{}); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("credentials in the URI: %v", err)
	}
}

// A server that is not there at the start is one line naming it, at once.
func TestServerDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uri := "http://" + l.Addr().String()
	l.Close()
	c := newClient(t, uri, Options{}) // default backoff: 2 s, 4 s, ... if it retried
	start := time.Now()
	_, err = c.Experiment("pets")
	if err == nil || !strings.Contains(err.Error(), uri) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	t.Log(err)
}

func TestOptionsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		check   func(Options) bool
		wantErr bool
	}{
		{map[string]string{"MLFLOW_TRACKING_TOKEN": "t", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2"},
			func(o Options) bool { return o.Token == "t" && o.Timeout == 5*time.Second && o.MaxRetries == 2 }, false},
		{map[string]string{"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0.5"},
			func(o Options) bool { return o.MaxRetries == -1 && o.BackoffFactor == 500*time.Millisecond }, false},
		{map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "true"}, func(o Options) bool { return o.InsecureTLS }, false},
		{map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "maybe"}, nil, true},
		{map[string]string{"MLFLOW_HTTP_REQUEST_TIMEOUT": "-1"}, nil, true},
		{map[string]string{"MLFLOW_HTTP_REQUEST_TIMEOUT": "0"}, nil, true},
		{map[string]string{"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "x"}, nil, true},
		{map[string]string{"PETBREED_MLFLOW_MAX_RESPONSE_BYTES": "4096"}, func(o Options) bool { return o.MaxResponse == 4096 }, false},
		{map[string]string{"PETBREED_MLFLOW_MAX_RESPONSE_BYTES": "12"}, nil, true},
	} {
		for _, k := range []string{"MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_INSECURE_TLS",
			"MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "PETBREED_MLFLOW_MAX_RESPONSE_BYTES"} {
			t.Setenv(k, tc.env[k])
		}
		o, err := OptionsFromEnv()
		if (err != nil) != tc.wantErr {
			t.Errorf("%v: err = %v", tc.env, err)
			continue
		}
		if err == nil && !tc.check(o) {
			t.Errorf("%v: options %+v", tc.env, o)
		}
	}
}

// f64 writes what proto3 JSON reads, and reads what MLflow writes.
func TestF64JSON(t *testing.T) {
	for _, s := range []string{`1.5`, `"NaN"`, `"Infinity"`, `"-Infinity"`, `"2.5"`, `0`} {
		var v f64
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		b, _ := json.Marshal(v)
		var back f64
		json.Unmarshal(b, &back)
		if b2, _ := json.Marshal(back); string(b2) != string(b) {
			t.Errorf("%s: %s then %s", s, b, b2)
		}
	}
	var i i64
	if err := json.Unmarshal([]byte(`"123"`), &i); err != nil || i != 123 {
		t.Errorf("i64 from a string: %v %v", i, err)
	}
	if err := json.Unmarshal([]byte(`"x"`), &i); err == nil {
		t.Error("i64 accepted x")
	}
	_ = io.EOF
}

// A create whose answer was lost is found by its request id, not made
// twice: one run, one version.
func TestCreateLostAnswerNoDuplicate(t *testing.T) {
	f := &fake{fail: func(p string, n int) string {
		if (p == "runs/create" || p == "model-versions/create") && n <= 3 {
			return "503-after"
		}
		return ""
	}}
	c := newClient(t, startFake(t, f), fast())
	w, err := c.CreateRun("1", "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.runs) != 1 || w.RunID() != f.runs[0].Info.RunID {
		t.Fatalf("%d runs made, client has %s", len(f.runs), w.RunID())
	}
	f.calls.Store(0)
	v, err := c.CreateModelVersion("m", "mlflow-artifacts:/1/x/artifacts/model", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.versions) != 1 || v != 1 {
		t.Fatalf("%d versions made, client has %d", len(f.versions), v)
	}
}

// An artifact upload is streamed from its file: a 14 MB model costs far
// less memory than its size.
func TestUploadStreamed(t *testing.T) {
	f := &fake{}
	c := newClient(t, startFake(t, f), fast())
	w, err := c.OpenRun(fakeRun)
	if err != nil {
		t.Fatal(err)
	}
	src := testassets.Path(t, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := w.(*Run).LogArtifactFile("model/model.onnx", src); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if f.uploaded != fi.Size() {
		t.Fatalf("uploaded %d bytes, want %d", f.uploaded, fi.Size())
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(fi.Size())/4 {
		t.Errorf("uploading %d bytes allocated %d", fi.Size(), alloc)
	}
}

// 401 and 403 say which credentials to check.
func TestUnauthorized(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte("You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html"))
	}))
	t.Cleanup(ts.Close)
	c := newClient(t, ts.URL, Options{Token: "wrong"})
	_, err := c.Experiment("x")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "MLFLOW_TRACKING_TOKEN") {
		t.Errorf("a wrong token: %v", err)
	}
}

// An answer larger than MaxResponse is refused, not read whole.
func TestMaxResponse(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"experiments": [` + strings.Repeat(`{"name": "x"},`, 1000) + `{}]}`))
	}))
	t.Cleanup(ts.Close)
	opt := fast()
	opt.MaxResponse = 4096
	c := newClient(t, ts.URL, opt)
	if _, err := c.Experiments(); err == nil || !strings.Contains(err.Error(), "larger than 4096 bytes") {
		t.Errorf("a 14 KB answer with a 4 KB cap: %v", err)
	}
	opt.MaxResponse = 0 // the default
	c = newClient(t, ts.URL, opt)
	if exps, err := c.Experiments(); err != nil || len(exps) != 1001 {
		t.Errorf("with the default cap: %d experiments, %v", len(exps), err)
	}
}

// HTTPS: a certificate the client does not trust is refused at once (not
// retried); MLFLOW_TRACKING_INSECURE_TLS or the server's certificate as
// MLFLOW_TRACKING_SERVER_CERT_PATH lets it through.
func TestTLS(t *testing.T) {
	f := &fake{}
	ts := httptest.NewTLSServer(f)
	t.Cleanup(ts.Close)
	c := newClient(t, ts.URL, fast())
	c.reached.Store(true) // not the "server is not there" case
	if _, err := c.GetRun(fakeRun); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an untrusted certificate: %v", err)
	}
	if n := c.Calls(); n != 1 {
		t.Errorf("an untrusted certificate was tried %d times, want 1", n)
	}
	opt := fast()
	opt.InsecureTLS = true
	if _, err := newClient(t, ts.URL, opt).GetRun(fakeRun); err != nil {
		t.Errorf("with InsecureTLS: %v", err)
	}
	pemFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(pemFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	opt = fast()
	opt.CACertFile = pemFile
	if _, err := newClient(t, ts.URL, opt).GetRun(fakeRun); err != nil {
		t.Errorf("with the server's certificate as CA: %v", err)
	}
	opt.CACertFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(ts.URL, opt); err == nil {
		t.Error("a missing CA file was accepted")
	}
}

// An upload that takes longer than Timeout but never stalls that long goes
// through: the timeout bounds each wait, not the transfer.
func TestSlowUploadNotCut(t *testing.T) {
	var got atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			buf := make([]byte, 64<<10)
			for {
				n, err := r.Body.Read(buf)
				got.Add(int64(n))
				if err != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			w.Write([]byte("{}"))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"run": map[string]any{"info": map[string]any{
			"run_id": fakeRun, "status": "RUNNING", "artifact_uri": "mlflow-artifacts:/1/" + fakeRun + "/artifacts"}}})
	}))
	t.Cleanup(ts.Close)
	opt := fast()
	opt.Timeout, opt.MaxRetries = 400*time.Millisecond, -1
	// Small socket buffers, so the client's reads of the file follow the
	// server's pace instead of filling the kernel's buffers at once.
	dialer := &net.Dialer{}
	opt.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetWriteBuffer(32 << 10)
		}
		return conn, err
	}}}
	c := newClient(t, ts.URL, opt)
	w, err := c.OpenRun(fakeRun)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(src, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := w.(*Run).LogArtifactFile("big", src); err != nil {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
	if got.Load() != 1<<20 || time.Since(start) < opt.Timeout {
		t.Errorf("server got %d bytes in %v", got.Load(), time.Since(start))
	}
}

// Concurrent resolutions of one model share one cache entry, whole.
func TestResolveConcurrent(t *testing.T) {
	model := []byte(strings.Repeat("onnx", 100000))
	f := &fake{files: map[string][]byte{
		"model/MLmodel":    []byte("flavors:\n  onnx:\n    data: model.onnx\n"),
		"model/model.onnx": model,
	}}
	c := newClient(t, startFake(t, f), fast())
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref, err := c.Resolve("runs:/" + fakeRun + "/model")
			paths[i], errs[i] = ref.Path, err
		}()
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("resolution %d gave %s, another %s", i, paths[i], paths[0])
		}
	}
	if b, err := os.ReadFile(paths[0]); err != nil || string(b) != string(model) {
		t.Fatalf("cached file: %d bytes, %v", len(b), err)
	}
	left, _ := filepath.Glob(filepath.Join(c.opt.CacheDir, "*", ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("left in the cache: %v", left)
	}
	// A missing model is not found, and leaves nothing behind.
	if _, err := c.Resolve("runs:/" + fakeRun + "/nothing"); !errors.Is(err, tracking.ErrNotFound) {
		t.Errorf("a missing model: %v, want ErrNotFound", err)
	}
	left, _ = filepath.Glob(filepath.Join(c.opt.CacheDir, "*", ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("left in the cache after a failure: %v", left)
	}
}

// Paged answers are followed to the end: a metric history, runs, versions,
// models and artifact listings served two at a time.
func TestPaging(t *testing.T) {
	page := func(w http.ResponseWriter, r *http.Request, field string, all []any) {
		i, _ := strconv.Atoi(r.URL.Query().Get("page_token"))
		if r.Method == http.MethodPost {
			var body struct {
				Token string `json:"page_token"`
			}
			json.NewDecoder(r.Body).Decode(&body)
			i, _ = strconv.Atoi(body.Token)
		}
		out := map[string]any{field: all[i:min(i+2, len(all))]}
		if i+2 < len(all) {
			out["next_page_token"] = strconv.Itoa(i + 2)
		}
		json.NewEncoder(w).Encode(out)
	}
	var metrics, runs, versions, models, files []any
	for i := range 5 {
		metrics = append(metrics, map[string]any{"key": "m", "value": i, "timestamp": 1000 + i, "step": i})
		runs = append(runs, map[string]any{"info": map[string]any{"run_id": strings.Repeat("b", 31) + strconv.Itoa(i), "status": "FINISHED", "start_time": 1000 + i}})
		versions = append(versions, map[string]any{"name": "m", "version": strconv.Itoa(i + 1)})
		models = append(models, map[string]any{"name": "model" + strconv.Itoa(i)})
		files = append(files, map[string]any{"path": "f" + strconv.Itoa(i), "file_size": "3"})
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimPrefix(r.URL.Path, apiPrefix) {
		case "runs/get":
			json.NewEncoder(w).Encode(map[string]any{"run": map[string]any{"info": map[string]any{"run_id": fakeRun, "status": "RUNNING"}}})
		case "metrics/get-history":
			page(w, r, "metrics", metrics)
		case "runs/search":
			page(w, r, "runs", runs)
		case "model-versions/search":
			page(w, r, "model_versions", versions)
		case "registered-models/get":
			json.NewEncoder(w).Encode(map[string]any{"registered_model": map[string]any{"name": "m"}})
		case "registered-models/search":
			page(w, r, "registered_models", models)
		case "artifacts/list":
			page(w, r, "files", files)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	c := newClient(t, ts.URL, fast())
	if h, err := c.MetricHistory(fakeRun, "m"); err != nil || len(h) != 5 || h[4].Value != 4 {
		t.Errorf("history = %v, %v", h, err)
	}
	if rs, err := c.Runs("1"); err != nil || len(rs) != 5 || rs[0].Start.UnixMilli() != 1004 {
		t.Errorf("runs = %d, %v", len(rs), err)
	}
	if vs, err := c.ModelVersions("m"); err != nil || len(vs) != 5 || vs[4].Version != 5 {
		t.Errorf("versions = %v, %v", vs, err)
	}
	if ms, err := c.RegisteredModels(); err != nil || len(ms) != 5 {
		t.Errorf("models = %v, %v", ms, err)
	}
	if fs, err := c.ListArtifacts(fakeRun, ""); err != nil || len(fs) != 5 || fs[4].Size != 3 {
		t.Errorf("artifacts = %v, %v", fs, err)
	}
}
