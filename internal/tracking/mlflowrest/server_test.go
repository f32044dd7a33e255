package mlflowrest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"petbreed/internal/testassets"
	"petbreed/internal/testutil/mlflowserver"
	"petbreed/internal/tracking"
)

// rest reads the server's REST API directly, to check what the client did
// through MLflow's own answers rather than the client's reading of them.
func rest(t *testing.T, srv *mlflowserver.Server, path string, q url.Values) map[string]any {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/2.0/mlflow/" + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
	return m
}

func restHistory(t *testing.T, srv *mlflowserver.Server, runID, key string) []map[string]any {
	t.Helper()
	m := rest(t, srv, "metrics/get-history", url.Values{"run_id": {runID}, "metric_key": {key}, "max_results": {"25000"}})
	var out []map[string]any
	for _, x := range list(m["metrics"]) {
		out = append(out, x.(map[string]any))
	}
	return out
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func restRunKV(t *testing.T, srv *mlflowserver.Server, runID, field string) map[string]string {
	t.Helper()
	run := rest(t, srv, "runs/get", url.Values{"run_id": {runID}})["run"].(map[string]any)
	data, _ := run["data"].(map[string]any)
	out := map[string]string{}
	for _, x := range list(data[field]) {
		kv := x.(map[string]any)
		out[kv["key"].(string)] = kv["value"].(string)
	}
	return out
}

func restDownload(t *testing.T, srv *mlflowserver.Server, runID, rel string) []byte {
	t.Helper()
	run := rest(t, srv, "runs/get", url.Values{"run_id": {runID}})["run"].(map[string]any)
	p, err := proxyPath(run["info"].(map[string]any)["artifact_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + artifactPrefix + p + "/" + rel)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("download %s: %d %s", rel, resp.StatusCode, b)
	}
	return b
}

func newClient(t *testing.T, uri string, opt Options) *Client {
	t.Helper()
	if opt.CacheDir == "" {
		opt.CacheDir = t.TempDir()
	}
	c, err := New(uri, opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServer runs the client against a real MLflow server, with both of
// its backend stores, and checks every result through the REST API.
func TestServer(t *testing.T) {
	for _, backend := range []string{"sqlite", "file"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := mlflowserver.Start(t, backend)
			c := newClient(t, srv.URL, Options{BackoffFactor: 100 * time.Millisecond, BackoffJitter: -1})
			t.Run("write", func(t *testing.T) { testWrite(t, srv, c) })
			t.Run("registry", func(t *testing.T) { testRegistry(t, srv, c) })
			t.Run("errors", func(t *testing.T) { testErrors(t, srv, c) })
			t.Run("dedup", func(t *testing.T) { testDedup(t, srv, c) })
			t.Run("inputs", func(t *testing.T) { testInputs(t, srv, c, backend) })
			if backend == "file" {
				t.Run("filestore", func(t *testing.T) { testFileStoreServed(t, srv, c) })
			}
			t.Run("restart", func(t *testing.T) { testRestart(t, srv, c) })
			if t.Failed() {
				t.Log(srv.Log())
			}
		})
	}
}

func testWrite(t *testing.T, srv *mlflowserver.Server, c *Client) {
	exp, err := c.Experiment("pets")
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Experiment("pets")
	if err != nil || again != exp {
		t.Fatalf("Experiment again = %q, %v; want %q", again, err, exp)
	}
	got := rest(t, srv, "experiments/get-by-name", url.Values{"experiment_name": {"pets"}})
	if id := got["experiment"].(map[string]any)["experiment_id"]; id != exp {
		t.Fatalf("server has experiment %v, client said %s", id, exp)
	}

	w, err := c.CreateRun(exp, "lr0.01", map[string]string{"petbreed.selected": "false"})
	if err != nil {
		t.Fatal(err)
	}
	id := w.RunID()
	tags := restRunKV(t, srv, id, "tags")
	for _, k := range []string{tracking.TagRunName, tracking.TagUser, tracking.TagSourceName, tracking.TagSourceType, "petbreed.selected"} {
		if tags[k] == "" {
			t.Errorf("tag %s missing: %v", k, tags)
		}
	}
	if tags[tracking.TagRunName] != "lr0.01" || tags[tracking.TagSourceType] != "LOCAL" {
		t.Errorf("tags = %v", tags)
	}
	run := rest(t, srv, "runs/get", url.Values{"run_id": {id}})["run"].(map[string]any)["info"].(map[string]any)
	if run["run_name"] != "lr0.01" || run["status"] != "RUNNING" {
		t.Errorf("run info = %v", run)
	}

	// 150 params and 150 tags: more than one log-batch call each.
	params := map[string]string{}
	many := map[string]string{}
	for i := range 150 {
		params["p"+strconv.Itoa(i)] = strconv.Itoa(i * i)
		many["t"+strconv.Itoa(i)] = "v" + strconv.Itoa(i)
	}
	if err := w.LogParams(params); err != nil {
		t.Fatal(err)
	}
	if err := w.LogParams(map[string]string{"p3": "9"}); err != nil {
		t.Errorf("the same param again: %v", err)
	}
	// The server refuses a changed param (400 on sqlite, 500 on the file
	// store, both with MLflow's message), and that is not retried.
	before := c.Calls()
	if err := w.LogParams(map[string]string{"p3": "10"}); err == nil || !strings.Contains(err.Error(), "Changing param values is not allowed") {
		t.Errorf("a changed param: %v, want the server's refusal", err)
	}
	if n := c.Calls() - before; n != 1 {
		t.Errorf("a refused param took %d calls, want 1", n)
	}
	if err := w.SetTags(many); err != nil {
		t.Fatal(err)
	}
	gotP, gotT := restRunKV(t, srv, id, "params"), restRunKV(t, srv, id, "tags")
	for k, v := range params {
		if gotP[k] != v {
			t.Fatalf("param %s = %q, want %q (have %d params)", k, gotP[k], v, len(gotP))
		}
	}
	for k, v := range many {
		if gotT[k] != v {
			t.Fatalf("tag %s = %q, want %q", k, gotT[k], v)
		}
	}

	// 2500 values of one metric in one batch: three log-batch calls.
	var batch []tracking.Metric
	for i := range 2500 {
		batch = append(batch, tracking.Metric{Key: "loss", Value: 1 / float64(i+1), Step: int64(i)})
	}
	if err := w.LogMetrics(batch); err != nil {
		t.Fatal(err)
	}
	h := restHistory(t, srv, id, "loss")
	if len(h) != 2500 {
		t.Fatalf("loss history has %d values, want 2500", len(h))
	}
	hist, err := c.MetricHistory(id, "loss")
	if err != nil || len(hist) != 2500 {
		t.Fatalf("MetricHistory: %d values, %v", len(hist), err)
	}
	steps := map[int64]float64{}
	for _, p := range hist {
		steps[p.Step] = p.Value
	}
	for i := range 2500 {
		if steps[int64(i)] != 1/float64(i+1) {
			t.Fatalf("step %d = %v, want %v", i, steps[int64(i)], 1/float64(i+1))
		}
	}
	// NaN and ±Inf are stored as MLflow stores them, and read back.
	odd := []tracking.Metric{{Key: "odd", Value: math.NaN(), Step: 0}, {Key: "odd", Value: math.Inf(1), Step: 1}, {Key: "odd", Value: math.Inf(-1), Step: 2}}
	if err := w.LogMetrics(odd); err != nil {
		t.Fatal(err)
	}
	hist, err = c.MetricHistory(id, "odd")
	if err != nil || len(hist) != 3 {
		t.Fatalf("odd history = %v, %v", hist, err)
	}
	for _, p := range hist {
		want := odd[p.Step].Value
		if srv.Backend == "sqlite" && math.IsInf(want, 0) {
			// MLflow's SQL store saturates ±Inf to ±DBL_MAX.
			want = math.Copysign(math.MaxFloat64, want)
		}
		if !(math.IsNaN(want) && math.IsNaN(p.Value)) && p.Value != want {
			t.Errorf("odd step %d = %v, want %v", p.Step, p.Value, want)
		}
	}
	if h, err := c.MetricHistory(id, "never"); err != nil || len(h) != 0 {
		t.Errorf("a metric never logged: %v, %v", h, err)
	}
	// A bad name is refused before anything is sent.
	before = c.Calls()
	if err := w.LogMetrics([]tracking.Metric{{Key: "ok", Value: 1}, {Key: "../bad", Value: 2}}); err == nil {
		t.Error("a bad metric name was accepted")
	}
	if c.Calls() != before {
		t.Error("a batch with a bad name sent a request")
	}

	// Artifacts, byte for byte.
	data := []byte(`{"classes": ["a", "b"]}`)
	if err := w.LogArtifact("class_labels.json", data); err != nil {
		t.Fatal(err)
	}
	if err := w.LogArtifact("reports/val.txt", []byte("report\n")); err != nil {
		t.Fatal(err)
	}
	// A name that needs escaping arrives as it was written.
	oddName := "odd dir/a b+c=é.txt" // the server refuses "#" (validate_path_is_safe)
	if err := w.LogArtifact(oddName, []byte("odd")); err != nil {
		t.Fatal(err)
	}
	if rc, err := c.OpenArtifact(id, oddName); err != nil {
		t.Errorf("OpenArtifact(%q): %v", oddName, err)
	} else {
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "odd" {
			t.Errorf("OpenArtifact(%q) = %q", oddName, b)
		}
	}
	if ents, err := c.ListArtifacts(id, "odd dir"); err != nil || len(ents) != 1 || ents[0].Path != oddName {
		t.Errorf("ListArtifacts(odd dir) = %+v, %v", ents, err)
	}
	if b := restDownload(t, srv, id, "class_labels.json"); !bytes.Equal(b, data) {
		t.Fatalf("artifact on the server = %q", b)
	}
	rc, err := c.OpenArtifact(id, "reports/val.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "report\n" {
		t.Fatalf("OpenArtifact = %q", b)
	}
	if _, err := c.OpenArtifact(id, "reports/nope.txt"); !errors.Is(err, tracking.ErrNotFound) {
		t.Errorf("a missing artifact: %v, want ErrNotFound", err)
	}
	ents, err := c.ListArtifacts(id, "")
	if err != nil || len(ents) != 3 || ents[0] != (tracking.ArtifactEntry{Path: "class_labels.json", Size: int64(len(data))}) || ents[2].Path != "reports" || !ents[2].IsDir {
		t.Fatalf("ListArtifacts(root) = %+v, %v", ents, err)
	}
	ents, err = c.ListArtifacts(id, "reports")
	if err != nil || len(ents) != 1 || ents[0].Path != "reports/val.txt" || ents[0].Size != 7 {
		t.Fatalf("ListArtifacts(reports) = %+v, %v", ents, err)
	}
	if ents, err := c.ListArtifacts(id, "nothing"); err != nil || len(ents) != 0 {
		t.Errorf("ListArtifacts(nothing) = %+v, %v", ents, err)
	}

	if err := w.End(tracking.Finished); err != nil {
		t.Fatal(err)
	}
	if err := w.End(tracking.Failed); !errors.Is(err, tracking.ErrRunEnded) {
		t.Errorf("End twice: %v, want ErrRunEnded", err)
	}
	info, err := c.GetRun(id)
	if err != nil || info.Status != tracking.Finished || info.End.IsZero() || info.Name != "lr0.01" || info.Params["p7"] != "49" || info.Metrics["loss"] != 1.0/2500 {
		t.Fatalf("GetRun = %+v, %v", info, err)
	}
	runs, err := c.Runs(exp)
	if err != nil || len(runs) != 1 || runs[0].ID != id {
		t.Fatalf("Runs = %v, %v", runs, err)
	}
	exps, err := c.Experiments()
	if err != nil || len(exps) < 2 || exps[0].Name != "pets" {
		t.Fatalf("Experiments = %+v, %v", exps, err)
	}
}

func testRegistry(t *testing.T, srv *mlflowserver.Server, c *Client) {
	exp, err := c.Experiment("registry")
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.CreateRun(exp, "champion", nil)
	if err != nil {
		t.Fatal(err)
	}
	onnxFile := testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")
	want, err := os.ReadFile(onnxFile)
	if err != nil {
		t.Fatal(err)
	}
	meta := tracking.ModelMeta{InputName: "input", InputShape: []int64{-1, 3, 224, 224}, OutputName: "output", OutputShape: []int64{-1, 1000}}
	uri, err := w.LogONNXModel("model", onnxFile, meta)
	if err != nil {
		t.Fatal(err)
	}
	if uri != "runs:/"+w.RunID()+"/model" {
		t.Errorf("model URI = %s", uri)
	}
	if _, err := w.LogONNXModel("model", onnxFile, meta); err == nil {
		t.Error("a second model at the same path was accepted")
	}
	if b := restDownload(t, srv, w.RunID(), "model/model.onnx"); !bytes.Equal(b, want) {
		t.Fatalf("model.onnx on the server: %d bytes, want the file's %d", len(b), len(want))
	}
	mlmodel := string(restDownload(t, srv, w.RunID(), "model/MLmodel"))
	if !strings.Contains(mlmodel, "run_id: "+w.RunID()) && !strings.Contains(mlmodel, "run_id: '"+w.RunID()+"'") && !strings.Contains(mlmodel, `run_id: "`+w.RunID()+`"`) {
		t.Errorf("MLmodel does not name the run:\n%s", mlmodel)
	}
	ents, err := c.ListArtifacts(w.RunID(), "model")
	if err != nil || len(ents) != 5 {
		t.Fatalf("model folder = %+v, %v", ents, err)
	}
	if h := restRunKV(t, srv, w.RunID(), "tags")[tracking.TagLogModelHistory]; !strings.Contains(h, `"artifact_path":"model"`) {
		t.Errorf("log-model history = %s", h)
	}
	if err := w.End(tracking.Finished); err != nil {
		t.Fatal(err)
	}

	v, err := c.CreateModelVersion("pet-breed", uri, "")
	if err != nil || v != 1 {
		t.Fatalf("CreateModelVersion = %d, %v", v, err)
	}
	mv := rest(t, srv, "model-versions/get", url.Values{"name": {"pet-breed"}, "version": {"1"}})["model_version"].(map[string]any)
	if mv["run_id"] != w.RunID() || !strings.HasPrefix(mv["source"].(string), "mlflow-artifacts:/") || !strings.HasSuffix(mv["source"].(string), "/model") {
		t.Errorf("version 1 on the server = %v", mv)
	}
	if v2, err := c.CreateModelVersion("pet-breed", uri, ""); err != nil || v2 != 2 {
		t.Fatalf("second version = %d, %v", v2, err)
	}
	if err := c.SetAlias("pet-breed", "champion", 1); err != nil {
		t.Fatal(err)
	}
	al := rest(t, srv, "registered-models/alias", url.Values{"name": {"pet-breed"}, "alias": {"champion"}})["model_version"].(map[string]any)
	if al["version"] != "1" {
		t.Errorf("alias on the server = %v", al)
	}
	if a, err := c.Alias("pet-breed", "champion"); err != nil || a != 1 {
		t.Errorf("Alias = %d, %v", a, err)
	}
	if _, err := c.Alias("pet-breed", "nope"); !errors.Is(err, tracking.ErrNotFound) {
		t.Errorf("a missing alias: %v, want ErrNotFound", err)
	}
	vs, err := c.ModelVersions("pet-breed")
	if err != nil || len(vs) != 2 || vs[0].Version != 1 || len(vs[0].Aliases) != 1 || vs[0].Aliases[0] != "champion" || vs[1].RunID != w.RunID() {
		t.Fatalf("ModelVersions = %+v, %v", vs, err)
	}
	if names, err := c.RegisteredModels(); err != nil || len(names) != 1 || names[0] != "pet-breed" {
		t.Errorf("RegisteredModels = %v, %v", names, err)
	}

	// Resolve downloads once, then reuses the checked cache entry.
	ref, err := c.Resolve("models:/pet-breed@champion")
	if err != nil {
		t.Fatal(err)
	}
	if ref.Name != "pet-breed" || ref.Version != 1 || ref.Alias != "champion" || ref.RunID != w.RunID() {
		t.Errorf("ref = %+v", ref)
	}
	if b, _ := os.ReadFile(ref.Path); !bytes.Equal(b, want) {
		t.Fatalf("resolved file %s differs from the logged one", ref.Path)
	}
	before := c.Calls()
	again, err := c.Resolve("models:/pet-breed@champion")
	if err != nil || again.Path != ref.Path {
		t.Fatalf("cached Resolve = %+v, %v", again, err)
	}
	if n := c.Calls() - before; n != 1 {
		t.Errorf("a cached Resolve made %d calls, want 1 (the alias)", n)
	}
	// A corrupt entry is downloaded again.
	if err := os.WriteFile(ref.Path, []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err = c.Resolve("models:/pet-breed/1")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(again.Path); !bytes.Equal(b, want) {
		t.Fatal("a corrupt cache entry was not downloaded again")
	}
	// Version 1's run's model is the same location: the same entry.
	before = c.Calls()
	if r, err := c.Resolve("runs:/" + w.RunID() + "/model"); err != nil || r.Path != again.Path || c.Calls()-before > 1 {
		t.Errorf("runs:/ of version 1's model = %+v, %v, %d calls; want %s from the cache with at most 1 call", r, err, c.Calls()-before, again.Path)
	}
	for _, u := range []string{"models:/pet-breed/2", "models:/pet-breed/latest", "runs:/" + w.RunID() + "/model", "runs:/" + w.RunID() + "/model/model.onnx"} {
		r, err := c.Resolve(u)
		if err != nil {
			t.Errorf("Resolve(%s): %v", u, err)
			continue
		}
		if b, _ := os.ReadFile(r.Path); !bytes.Equal(b, want) {
			t.Errorf("Resolve(%s) gave a different file", u)
		}
	}
	if r, err := c.Resolve("models:/pet-breed/latest"); err != nil || r.Version != 2 {
		t.Errorf("latest = %+v, %v", r, err)
	}
	if entries, _ := filepath.Glob(filepath.Join(c.opt.CacheDir, "*", ".tmp-*")); len(entries) != 0 {
		t.Errorf("temporary folders left in the cache: %v", entries)
	}

	// A cache bounded to one model: the next download evicts the least
	// recently used, which a later Resolve downloads again.
	entry, err := os.Stat(ref.Path)
	if err != nil {
		t.Fatal(err)
	}
	small := newClient(t, c.URI(), Options{CacheMaxBytes: entry.Size() + 64<<10})
	folder := "runs:/" + w.RunID() + "/model"
	file := folder + "/model.onnx"
	a, err := small.Resolve(folder)
	if err != nil {
		t.Fatal(err)
	}
	b, err := small.Resolve(file) // another location: another entry
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.Path); err == nil {
		t.Errorf("%s kept in a cache bounded to one model", a.Path)
	}
	if got, _ := os.ReadFile(b.Path); !bytes.Equal(got, want) {
		t.Errorf("the entry just resolved: %d bytes", len(got))
	}
	before = small.Calls()
	a, err = small.Resolve(folder)
	if err != nil || small.Calls()-before < 2 {
		t.Fatalf("the evicted model again: %v, %d calls (want a download)", err, small.Calls()-before)
	}
	if got, _ := os.ReadFile(a.Path); !bytes.Equal(got, want) {
		t.Error("the evicted model downloaded again differs")
	}
	if _, err := os.Stat(b.Path); err == nil {
		t.Errorf("%s kept after the other model came back", b.Path)
	}
}

func testErrors(t *testing.T, srv *mlflowserver.Server, c *Client) {
	_, err := c.Resolve("models:/no-such-model@champion")
	if err == nil || !strings.Contains(err.Error(), "no-such-model") {
		t.Errorf("a missing model: %v", err)
	}
	_, err = c.ModelVersions("no-such-model")
	if !errors.Is(err, tracking.ErrNotFound) || !strings.Contains(err.Error(), "RESOURCE_DOES_NOT_EXIST") {
		t.Errorf("versions of a missing model: %v, want ErrNotFound with MLflow's error code", err)
	}
	if _, err := c.GetRun("0123456789abcdef0123456789abcdef"); !errors.Is(err, tracking.ErrNotFound) {
		t.Errorf("a missing run: %v, want ErrNotFound", err)
	}
	// get-history of a missing run is a 404 on the file store but an empty
	// history on sqlite: MetricHistory asks for the run first.
	if _, err := c.MetricHistory("0123456789abcdef0123456789abcdef", "m"); !errors.Is(err, tracking.ErrNotFound) {
		t.Errorf("the history of a missing run: %v, want ErrNotFound", err)
	}
	if _, err := c.CreateRun("999999", "x", nil); err == nil {
		t.Error("a run in a missing experiment was created")
	}
}

// testRestart kills the server under a run and brings it back: the calls
// made meanwhile are retried, and nothing is logged twice.
func testRestart(t *testing.T, srv *mlflowserver.Server, c *Client) {
	exp, err := c.Experiment("restart")
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.CreateRun(exp, "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.LogMetrics([]tracking.Metric{{Key: "m", Value: 1, Step: 1}}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	back := make(chan struct{})
	go func() {
		defer close(back)
		time.Sleep(500 * time.Millisecond)
		srv.Restart(t)
	}()
	slow := newClient(t, srv.URL, Options{BackoffFactor: 500 * time.Millisecond, BackoffJitter: -1, MaxRetries: 8, MaxBackoff: 4 * time.Second})
	slow.reached.Store(true) // it has talked to this server before
	w2, err := slow.OpenRun(w.RunID())
	<-back
	if err != nil {
		t.Fatalf("OpenRun across a restart: %v", err)
	}
	if err := w2.LogMetrics([]tracking.Metric{{Key: "m", Value: 2, Step: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := w2.End(tracking.Failed); err != nil {
		t.Fatal(err)
	}
	if h := restHistory(t, srv, w.RunID(), "m"); len(h) != 2 {
		t.Errorf("history after the restart = %v, want 2 values", h)
	}
}

// testDedup shows why a lost log-batch answer is not simply sent again:
// the same batch twice is stored once by the sqlite store (its primary key
// drops exact duplicates) but twice by the file store.
func testDedup(t *testing.T, srv *mlflowserver.Server, c *Client) {
	exp, err := c.Experiment("dedup")
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.CreateRun(exp, "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"run_id":"` + w.RunID() + `","metrics":[{"key":"m","value":1.5,"timestamp":1000,"step":1}]}`
	for range 2 {
		resp, err := http.Post(srv.URL+"/api/2.0/mlflow/runs/log-batch", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("log-batch: %d", resp.StatusCode)
		}
	}
	want := map[string]int{"sqlite": 1, "file": 2}[srv.Backend]
	if h := restHistory(t, srv, w.RunID(), "m"); len(h) != want {
		t.Errorf("the same log-batch twice: %d values on the %s store, want %d", len(h), srv.Backend, want)
	}
}

// testFileStoreServed writes a run with petbreed's own file store into the
// folder a file-backed MLflow server serves, and reads it back through the
// server: MLflow's reader accepts the layout, petbreed's staging folder
// included, without a "Malformed experiment" warning.
func testFileStoreServed(t *testing.T, srv *mlflowserver.Server, c *Client) {
	fs, err := tracking.Open(filepath.Join(srv.StateDir, "mlruns"))
	if err != nil {
		t.Fatal(err)
	}
	exp, err := fs.Experiment("written-locally")
	if err != nil {
		t.Fatal(err)
	}
	r, err := fs.StartRun(exp, "local", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LogMetrics([]tracking.Metric{{Key: "acc", Value: 0.5, Step: 1}}); err != nil {
		t.Fatal(err)
	}
	inputs := petsInputs()
	if err := r.LogInputs(inputs); err != nil {
		t.Fatal(err)
	}
	if err := r.End(tracking.Finished); err != nil {
		t.Fatal(err)
	}
	// MLflow's reader finds the datasets and inputs petbreed wrote.
	if got := restInputs(t, srv, r.ID); !reflect.DeepEqual(got, inputs) {
		t.Errorf("the server reads the file store's inputs as\n %+v\nwant %+v", got, inputs)
	}
	got := rest(t, srv, "experiments/search", url.Values{"max_results": {"1000"}, "view_type": {"ALL"}})
	names := map[string]bool{}
	for _, e := range list(got["experiments"]) {
		names[e.(map[string]any)["name"].(string)] = true
	}
	if !names["written-locally"] {
		t.Fatalf("the server does not list the experiment: %v", names)
	}
	info, err := c.GetRun(r.ID)
	if err != nil || info.Name != "local" || info.Metrics["acc"] != 0.5 || info.Status != tracking.Finished {
		t.Fatalf("the run through the server = %+v, %v", info, err)
	}
	if log := srv.Log(); strings.Contains(strings.ToLower(log), "malformed") {
		t.Errorf("MLflow complained about the store:\n%s", log)
	}
}
