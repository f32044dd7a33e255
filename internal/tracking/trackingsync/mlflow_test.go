package trackingsync

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"petbreed/internal/pipeline/pipelinetest"
	"petbreed/internal/testutil/mlflowserver"
	"petbreed/internal/tracking"
	"petbreed/internal/tracking/mlflowrest"
)

// The REST client keeps a copied run's times.
var (
	_ tracking.TimedTracker = (*mlflowrest.Client)(nil)
	_ tracking.TimedEnder   = (*mlflowrest.Run)(nil)
)

// A run made offline is published to a real MLflow server and comes back:
// file store → server (checked through the REST API itself), again (nothing
// copied), server → a new file store (the same run as the original), and
// server → the original store (nothing copied).
func TestSyncMLflowServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an MLflow server")
	}
	srv := mlflowserver.Start(t, "file")
	f := newFixture(t)
	c, err := mlflowrest.New(srv.URL, mlflowrest.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := Sync(ctx, f.store, c, Options{Registry: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, srv.Log())
	}
	if res.Copied() != 2 || len(res.Versions) != 1 || len(res.Aliases) != 1 {
		t.Fatalf("file store → server: %+v", res)
	}
	for _, w := range res.Warnings {
		t.Errorf("warning: %s", w)
	}
	done := byFrom(res)[f.done]

	// What the server holds, by its own API.
	var got struct {
		Run mlflowserver.Run `json:"run"`
	}
	srv.Must(t, "GET", "mlflow/runs/get", map[string][]string{"run_id": {done.To}}, nil, &got)
	run := &got.Run
	src, _ := f.store.GetRun(f.done)
	if run.Info.RunName != src.Name || run.Info.Status != "FINISHED" ||
		run.Info.StartTime != src.Start.UnixMilli() || run.Info.EndTime != src.End.UnixMilli() {
		t.Errorf("server run info %+v; want name %q FINISHED start %d end %d", run.Info, src.Name, src.Start.UnixMilli(), src.End.UnixMilli())
	}
	if run.Param("lr") != "0.001" || run.Tag("petbreed.recipe") != "baseline" || run.Tag(TagOrigin) != f.done || run.Tag(TagComplete) != "true" {
		t.Errorf("server run params %v tags %v", run.Data.Params, run.Data.Tags)
	}
	if got := run.Inputs.DatasetInputs; len(got) != len(src.Inputs) {
		t.Errorf("server run inputs %+v, want %+v", got, src.Inputs)
	} else {
		byDigest := map[string]mlflowserver.DatasetInput{}
		for _, in := range got {
			byDigest[in.Dataset.Digest] = in
		}
		for _, want := range src.Inputs {
			g, d := byDigest[want.Dataset.Digest], want.Dataset
			if g.Dataset.Name != d.Name || g.Dataset.SourceType != d.SourceType || g.Dataset.Source != d.Source ||
				g.Dataset.Profile != d.Profile || g.Context() != want.Context() {
				t.Errorf("server run input %+v, want %+v", g, want)
			}
		}
	}
	if srv.ExperimentID(t, "pet-breed") != run.Info.ExperimentID {
		t.Errorf("run in experiment %s, not pet-breed's", run.Info.ExperimentID)
	}
	for key := range src.Metrics {
		want, _ := f.store.MetricHistory(f.done, key)
		h := srv.History(t, done.To, key)
		if len(h) != len(want) {
			t.Errorf("metric %s: %d values on the server, %d in the store", key, len(h), len(want))
			continue
		}
		for i := range want {
			if h[i].Step != want[i].Step || h[i].Value != want[i].Value || h[i].Timestamp != want[i].Timestamp.UnixMilli() {
				t.Errorf("metric %s[%d]: server %+v, store %+v", key, i, h[i], want[i])
			}
		}
	}
	files := srv.Artifacts(t, run)
	want, err := listAll(f.store, f.done, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("server artifacts %v, store %v", files, want)
	}
	for p := range want {
		if !bytes.Equal(srv.Download(t, run, p), readArtifact(t, f.store, f.done, p)) {
			t.Errorf("artifact %s differs on the server", p)
		}
	}
	vs := srv.Versions(t, "pet-breed")
	if len(vs) != 1 || vs[0].RunID != done.To || srv.Alias(t, "pet-breed", "champion") != vs[0].Version {
		t.Errorf("server versions %+v, champion %q", vs, srv.Alias(t, "pet-breed", "champion"))
	}

	// Again: nothing.
	res, err = Sync(ctx, f.store, c, Options{Registry: true})
	if err != nil || res.Copied() != 0 || len(res.Aliases) != 0 || res.Versions[0].Copied {
		t.Errorf("second sync: %+v, %v", res, err)
	}
	if n := len(srv.Versions(t, "pet-breed")); n != 1 {
		t.Errorf("the second sync registered again: %d versions", n)
	}
	// Back to a new store: the same runs.
	back, err := tracking.Open(filepath.Join(t.TempDir(), "back"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = Sync(ctx, c, back, Options{Registry: true})
	if err != nil || res.Copied() != 2 {
		t.Fatalf("server → file store: %+v, %v", res, err)
	}
	b := byFrom(res)[done.To]
	sameRun(t, f.store, f.done, back, b.To)
	if info, _ := back.GetRun(b.To); info == nil || info.Tags["petbreed.request_id"] != "" {
		t.Errorf("the copy took the server run's request id: %+v", info)
	}
	ref, err := back.Resolve("models:/pet-breed@champion")
	if err != nil || ref.RunID != b.To {
		t.Errorf("the copy's champion: %+v, %v", ref, err)
	}
	// And to the original: nothing, the originals are there.
	res, err = Sync(ctx, c, f.store, Options{Registry: true})
	if err != nil || res.Copied() != 0 || len(res.Aliases) != 0 {
		t.Errorf("server → the original store: %+v, %v", res, err)
	}
	if vs, _ := f.store.ModelVersions("pet-breed"); len(vs) != 1 {
		t.Errorf("the original store got versions %+v", vs)
	}
}

// TestMain removes the pipeline's store pipelinetest made.
func TestMain(m *testing.M) {
	code := m.Run()
	pipelinetest.Cleanup()
	os.Exit(code)
}

// BenchmarkSyncPipeline publishes the default pipeline's runs on
// pets-3breeds (pipelinetest's store: every run, its histories, plots,
// reports and model folder, and the champion's version and alias) to a real
// MLflow server (sqlite): "copy" into an empty server (one per iteration, so
// -benchtime=1x or 2x), "again" the same sync once everything is there.
func BenchmarkSyncPipeline(b *testing.B) {
	sum := pipelinetest.Champion(b)
	store, err := tracking.Open(sum.Tracking)
	if err != nil {
		b.Fatal(err)
	}
	srvs := mlflowserver.StartAll(b, "sqlite", "sqlite")
	var runs, calls int
	b.Run("copy", func(b *testing.B) {
		// One server per iteration is a start-up each; b.N is capped at the
		// servers started (run with -benchtime=1x or 2x).
		if b.N > len(srvs) {
			b.Skipf("b.N = %d: run with -benchtime=1x or 2x", b.N)
		}
		for i := 0; i < b.N; i++ {
			c, err := mlflowrest.New(srvs[i].URL, mlflowrest.Options{CacheDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			res, err := Sync(context.Background(), store, c, Options{Registry: true})
			if err != nil {
				b.Fatal(err)
			}
			runs += res.Copied()
			calls += int(c.Calls())
		}
		b.ReportMetric(float64(runs)/float64(b.N), "runs/op")
		b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
	})
	b.Run("again", func(b *testing.B) {
		var calls int64
		for i := 0; i < b.N; i++ {
			c, err := mlflowrest.New(srvs[0].URL, mlflowrest.Options{CacheDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			res, err := Sync(context.Background(), store, c, Options{Registry: true})
			if err != nil || res.Copied() != 0 {
				b.Fatalf("copied %d again, %v", res.Copied(), err)
			}
			calls += c.Calls()
		}
		b.ReportMetric(float64(calls)/float64(b.N), "calls/op")
	})
}
