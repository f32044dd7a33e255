package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petbreed/internal/classify"
	"petbreed/internal/testassets"
	"petbreed/internal/testutil/mlflowserver"
	"petbreed/internal/tracking"
	"petbreed/internal/tracking/mlflowrest"
)

// artifactsWithRunIDs are the artifacts that name their run or the time
// they were made (MLflow's MLmodel: run_id, utc_time_created), so a copy in
// another backend differs from the file store's in those bytes only.
var artifactsWithRunIDs = map[string]bool{"model/MLmodel": true}

// petsOptions is the default pipeline on pets-3breeds with a feature cache.
func petsOptions(tb testing.TB, cache string) Options {
	return Options{
		Data:     testassets.Path(tb, "pets-3breeds"),
		Backbone: testassets.Path(tb, "backbone", "mobilenetv2-12-int8.onnx"),
		Config:   DefaultConfig(),
		CacheDir: cache,
	}
}

// The default pipeline on pets-3breeds against a real MLflow server, with
// the file and the sqlite backend (one pipeline each), checked through
// MLflow's REST API with plain net/http against the same pipeline on the
// file store: the same runs, params, full metric histories, artifacts byte
// for byte, the registered version and the alias. The sqlite server is
// killed in the middle of its pipeline and restarted at once: the client's
// backoff carries the pipeline over, and what the server holds is still the
// whole of it. Then the file server is killed for good early in a third
// pipeline, which must fail saying so.
func TestPipelineMLflowServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MLflow servers and runs the pipeline three times")
	}
	if testing.Verbose() {
		t.Log("starting the servers beside the file store's pipeline")
	}
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	wait := mlflowserver.StartAsync(t, "sqlite", "file")
	// The reference, which also fills the feature cache.
	o := petsOptions(t, cache)
	o.Tracking = filepath.Join(dir, "mlruns")
	ref, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	store, err := tracking.Open(ref.Tracking)
	if err != nil {
		t.Fatal(err)
	}
	srvs := wait()
	t.Run("file", func(t *testing.T) {
		srv := srvs[1]
		c, err := mlflowrest.New(srv.URL, mlflowrest.Options{CacheDir: filepath.Join(dir, "models-file")})
		if err != nil {
			t.Fatal(err)
		}
		o := petsOptions(t, cache)
		o.Store = c
		sum, err := Run(context.Background(), o)
		if err != nil {
			t.Fatalf("%v\n%s", err, srv.Log())
		}
		if sum.Tracking != srv.URL || sum.ModelVersion != 1 {
			t.Errorf("summary: tracking %q version %d", sum.Tracking, sum.ModelVersion)
		}
		checkServerRuns(t, srv, DefaultConfig().MLflowExperiment, store, ref, sum)
	})
	t.Run("sqlite, killed and restarted", func(t *testing.T) {
		srv := srvs[0]
		c, err := mlflowrest.New(srv.URL, mlflowrest.Options{CacheDir: filepath.Join(dir, "models-sqlite")})
		if err != nil {
			t.Fatal(err)
		}
		o := petsOptions(t, cache)
		o.Store = c
		// Kill it in the middle (after 40 calls of about 180), restart it at
		// once; a restart takes seconds, which the client's backoff waits out.
		p := startPipeline(t, o, c, 40)
		srv.Kill()
		killedAt := c.Calls()
		srv.Restart(t)
		<-p.done
		sum, err := p.sum, p.err
		t.Logf("killed after %d calls, %d calls in all", killedAt, c.Calls())
		if err != nil {
			t.Fatalf("the pipeline failed across a restart: %v", err)
		}
		for _, r := range sum.Runs {
			if r.Status != "FINISHED" {
				t.Errorf("run %s (%s) is %s across a restart: %s", r.Name, r.RunID, r.Status, r.Error)
			}
		}
		if sum.Tracking != srv.URL || sum.ModelVersion != 1 {
			t.Errorf("summary: tracking %q version %d", sum.Tracking, sum.ModelVersion)
		}
		checkServerRuns(t, srv, DefaultConfig().MLflowExperiment, store, ref, sum)
	})
	t.Run("down", func(t *testing.T) {
		// The file server killed for good 40 calls in, with a client that
		// retries once: the pipeline fails, and each run's error names the
		// server and what was not logged; nothing is reported as registered.
		srv := srvs[1]
		c, err := mlflowrest.New(srv.URL, mlflowrest.Options{CacheDir: filepath.Join(dir, "models-down"),
			MaxRetries: 1, BackoffFactor: 50 * time.Millisecond, BackoffJitter: -1, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		o := petsOptions(t, cache)
		o.Store = c
		o.Config.MLflowExperiment = "down"
		o.Config.RegisteredModel = "pet-breed-down"
		p := startPipeline(t, o, c, 40)
		srv.Kill()
		select {
		case <-p.done:
		case <-time.After(3 * time.Minute):
			t.Fatal("the pipeline did not end within 3 minutes of the server's death")
		}
		sum, err := p.sum, p.err
		if err == nil || sum != nil && sum.ModelVersion != 0 {
			t.Fatalf("the server died mid-pipeline and the pipeline says: %v (summary %+v)", err, sum)
		}
		t.Logf("pipeline: %v", err)
		if !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("the error does not name the server %s", srv.URL)
		}
		if sum == nil {
			return // it stopped at the first run it could not end
		}
		failed := 0
		for _, r := range sum.Runs {
			t.Logf("%s %s: %s", r.Name, r.Status, r.Error)
			if r.Status == "FINISHED" {
				continue
			}
			failed++
			if !strings.Contains(r.Error, srv.URL) {
				t.Errorf("run %s failed with %q, which does not name the server", r.Name, r.Error)
			}
		}
		if failed == 0 {
			t.Error("no run failed")
		}
	})
}

// checkServerRuns compares what the server holds (read with plain REST
// calls) with the same pipeline's file store.
// pipelineRun is a pipeline running in the background: sum and err are
// its result once done is closed.
type pipelineRun struct {
	done chan struct{}
	sum  *Summary
	err  error
}

// startPipeline runs the pipeline in the background and returns once its
// client has made calls calls (a moment to kill the server in the middle).
func startPipeline(t *testing.T, o Options, c *mlflowrest.Client, calls int64) *pipelineRun {
	t.Helper()
	p := &pipelineRun{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.sum, p.err = Run(context.Background(), o)
	}()
	for deadline := time.Now().Add(2 * time.Minute); c.Calls() < calls; time.Sleep(2 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("the pipeline ended before the kill: %v", p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d calls in 2 minutes", calls)
		}
	}
	return p
}

func checkServerRuns(t *testing.T, srv *mlflowserver.Server, experiment string, store *tracking.Store, ref, sum *Summary) {
	t.Helper()
	expID := srv.ExperimentID(t, experiment)
	if expID == "" {
		t.Fatalf("no experiment %q on the server", experiment)
	}
	runs := srv.Runs(t, expID)
	if len(runs) != len(ref.Runs) {
		t.Fatalf("%d runs on the server, %d in the file store", len(runs), len(ref.Runs))
	}
	local := map[string]string{} // run name -> file store run id
	for _, r := range ref.Runs {
		local[r.Name] = r.RunID
	}
	// The server's run ids in place of the file store's, in what names runs
	// (the refit's and the champion's tags, the model's provenance).
	var ids []string
	for _, r := range runs {
		ids = append(ids, local[r.Info.RunName], r.Info.RunID)
	}
	toServer := strings.NewReplacer(ids...)
	for i := range runs {
		run := &runs[i]
		name := run.Info.RunName
		want, err := store.GetRun(local[name])
		if err != nil {
			t.Fatalf("server run %q: no such run in the file store (%v)", name, err)
		}
		if run.Info.Status != want.Status.String() || run.Info.EndTime < run.Info.StartTime || run.Info.StartTime == 0 {
			t.Errorf("%s: status %s start %d end %d, want %s", name, run.Info.Status, run.Info.StartTime, run.Info.EndTime, want.Status)
		}
		if len(run.Data.Params) != len(want.Params) {
			t.Errorf("%s: %d params, want %d", name, len(run.Data.Params), len(want.Params))
		}
		for k, v := range want.Params {
			if got := run.Param(k); got != v {
				t.Errorf("%s: param %s = %q, want %q", name, k, got, v)
			}
		}
		checkServerInputs(t, name, run.Inputs.DatasetInputs, want.Inputs)
		for _, k := range []string{tracking.TagUser, tracking.TagSourceName, tracking.TagSourceType} {
			if run.Tag(k) == "" {
				t.Errorf("%s: no tag %s", name, k)
			}
		}
		for k, v := range want.Tags {
			if strings.HasPrefix(k, "petbreed.") && k != tracking.TagPID && k != tracking.TagHost && k != tracking.TagProcStart && run.Tag(k) != toServer.Replace(v) {
				t.Errorf("%s: tag %s = %q, want %q", name, k, run.Tag(k), v)
			}
		}
		for key := range want.Metrics {
			h := srv.History(t, run.Info.RunID, key)
			wh, _ := store.MetricHistory(want.ID, key)
			if len(h) != len(wh) {
				t.Errorf("%s: metric %s has %d values, want %d", name, key, len(h), len(wh))
				continue
			}
			for j := range wh {
				timing := key == tracking.MetricTrainSeconds // measured: differs run to run
				if h[j].Step != wh[j].Step || h[j].Value != wh[j].Value && !timing {
					t.Errorf("%s: metric %s[%d] = step %d value %v, want %d %v", name, key, j, h[j].Step, h[j].Value, wh[j].Step, wh[j].Value)
				}
			}
		}
		files := srv.Artifacts(t, run)
		wantFiles := map[string]int64{}
		listFiles(t, store, want.ID, "", wantFiles)
		if len(files) != len(wantFiles) {
			t.Errorf("%s: artifacts %v, want %v", name, files, wantFiles)
		}
		for p := range wantFiles {
			got := srv.Download(t, run, p)
			if artifactsWithRunIDs[p] {
				if !bytes.Contains(got, []byte(run.Info.RunID)) {
					t.Errorf("%s: %s does not name the run %s", name, p, run.Info.RunID)
				}
				continue
			}
			rc, err := store.OpenArtifact(want.ID, p)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			b.ReadFrom(rc)
			rc.Close()
			if !bytes.Equal(got, []byte(toServer.Replace(b.String()))) {
				t.Errorf("%s: artifact %s differs (%d bytes on the server, %d in the file store)", name, p, len(got), b.Len())
			}
		}
	}
	vs := srv.Versions(t, sum.ModelName)
	if len(vs) != 1 || vs[0].RunID != sum.ChampionRunID || vs[0].Status != "READY" {
		t.Fatalf("versions %+v, want one READY version of run %s", vs, sum.ChampionRunID)
	}
	if a := srv.Alias(t, sum.ModelName, DefaultConfig().Alias); a != vs[0].Version {
		t.Errorf("alias %s -> %q, want %s", DefaultConfig().Alias, a, vs[0].Version)
	}
	// The model the summary resolved is the server's, byte for byte.
	for i := range runs {
		if runs[i].Info.RunID == sum.ChampionRunID {
			onnx := srv.Download(t, &runs[i], "model/model.onnx")
			local, err := os.ReadFile(sum.ModelPath)
			if err != nil || !bytes.Equal(onnx, local) {
				t.Errorf("the resolved champion %s differs from the server's model.onnx (%v)", sum.ModelPath, err)
			}
		}
	}
}

// checkServerInputs compares a run's dataset inputs on the server with the
// file store's: the same datasets (name, digest, source, profile) in the
// same contexts.
func checkServerInputs(t *testing.T, run string, got []mlflowserver.DatasetInput, want []tracking.DatasetInput) {
	t.Helper()
	if len(got) != len(want) || len(want) == 0 {
		t.Errorf("%s: %d dataset inputs on the server, %d in the file store", run, len(got), len(want))
		return
	}
	byDigest := map[string]mlflowserver.DatasetInput{}
	for _, in := range got {
		byDigest[in.Dataset.Digest] = in
	}
	for _, w := range want {
		g, d := byDigest[w.Dataset.Digest], w.Dataset
		if g.Dataset.Name != d.Name || g.Dataset.SourceType != d.SourceType || g.Dataset.Source != d.Source ||
			g.Dataset.Profile != d.Profile || g.Context() != w.Context() {
			t.Errorf("%s: dataset input on the server %+v, in the file store %+v", run, g, w)
		}
	}
}

func listFiles(t *testing.T, s *tracking.Store, runID, dir string, out map[string]int64) {
	t.Helper()
	ents, err := s.ListArtifacts(runID, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir {
			listFiles(t, s, runID, e.Path, out)
		} else {
			out[e.Path] = e.Size
		}
	}
}

// BenchmarkPipelineMLflow is the whole default pipeline on pets-3breeds
// (features cached) into the file store and into a real MLflow server
// (sqlite backend, on loopback), with the HTTP calls it makes; then the
// time to resolve the champion from the server (models:/pet-breed@champion:
// alias, version, download into the model cache) and load it for
// inference, with an empty cache (cold) and with the version cached.
func BenchmarkPipelineMLflow(b *testing.B) {
	dir := b.TempDir()
	cache := filepath.Join(dir, "cache")
	wait := mlflowserver.StartAsync(b, "sqlite")
	o := petsOptions(b, cache)
	o.Tracking = filepath.Join(dir, "warm")
	if _, err := Run(context.Background(), o); err != nil { // fills the feature cache
		b.Fatal(err)
	}
	srv := wait()[0]
	b.Run("file", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			o := petsOptions(b, cache)
			o.Tracking = filepath.Join(b.TempDir(), "mlruns")
			if _, err := Run(context.Background(), o); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/pipeline")
	})
	var c *mlflowrest.Client
	b.Run("server", func(b *testing.B) {
		var calls int64
		for i := 0; i < b.N; i++ {
			var err error
			c, err = mlflowrest.New(srv.URL, mlflowrest.Options{CacheDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			o := petsOptions(b, cache)
			o.Store = c
			if _, err := Run(context.Background(), o); err != nil {
				b.Fatal(err)
			}
			calls += c.Calls()
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/pipeline")
		b.ReportMetric(float64(calls)/float64(b.N), "calls/pipeline")
	})
	if c == nil {
		return
	}
	load := func(b *testing.B, cacheDir string) int64 {
		c, err := mlflowrest.New(srv.URL, mlflowrest.Options{CacheDir: cacheDir})
		if err != nil {
			b.Fatal(err)
		}
		ref, err := c.Resolve("models:/pet-breed@champion")
		if err != nil {
			b.Fatal(err)
		}
		m, err := classify.Open(ref.Path, classify.Options{})
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
		return c.Calls()
	}
	b.Run("resolve-load-cold", func(b *testing.B) {
		var calls int64
		for i := 0; i < b.N; i++ {
			calls += load(b, b.TempDir())
		}
		b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
	})
	b.Run("resolve-load-cached", func(b *testing.B) {
		warm := b.TempDir()
		load(b, warm)
		b.ResetTimer()
		var calls int64
		for i := 0; i < b.N; i++ {
			calls += load(b, warm)
		}
		b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
	})
}
