package trackingsync

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"petbreed/internal/tracking"
)

func openStore(t *testing.T, name string) *tracking.Store {
	t.Helper()
	s, err := tracking.Open(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is a source store with what a sync must carry: two experiments,
// a finished run with params, histories, tags, nested and binary artifacts
// and a registered version with an alias, a failed run, and a run still
// RUNNING.
type fixture struct {
	store                *tracking.Store
	done, failed, active string
	big                  []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: openStore(t, "src")}
	s := f.store
	exp, err := s.Experiment("pet-breed")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Experiment("other")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.UnixMilli(1_700_000_000_000)
	w, err := s.CreateRunAt(exp, "lr=0.001", map[string]string{"petbreed.recipe": "baseline", "mlflow.note.content": "a note"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	f.done = w.RunID()
	if err := w.LogParams(map[string]string{"lr": "0.001", "epochs": "3"}); err != nil {
		t.Fatal(err)
	}
	var batch []tracking.Metric
	for i := range 3 {
		ts := t0.Add(time.Duration(i+1) * time.Second)
		batch = append(batch, tracking.Metric{Key: "val_acc", Value: 0.5 + 0.1*float64(i), Step: int64(i), Timestamp: ts},
			tracking.Metric{Key: "train_loss", Value: 1 / float64(i+1), Step: int64(i), Timestamp: ts})
	}
	// The same step twice, as a resumed run may log it: both values are kept.
	batch = append(batch, tracking.Metric{Key: "val_acc", Value: 0.75, Step: 2, Timestamp: t0.Add(4 * time.Second)})
	if err := w.LogMetrics(batch); err != nil {
		t.Fatal(err)
	}
	if err := w.(tracking.InputLogger).LogInputs(fixtureInputs()); err != nil {
		t.Fatal(err)
	}
	f.big = make([]byte, 3<<20+17)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range f.big {
		f.big[i] = byte(rng.Uint32())
	}
	run := w.(*tracking.Run)
	for p, data := range map[string][]byte{"class_labels.json": []byte(`{"classes":["a","b"]}`), "plots/deep/x.bin": f.big, "empty.txt": nil} {
		if err := run.LogArtifact(p, data); err != nil {
			t.Fatal(err)
		}
	}
	onnx := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(onnx, []byte("not really onnx, bytes are bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := run.LogONNXModel("model", onnx, tracking.ModelMeta{InputName: "x", InputShape: []int64{-1, 3, 224, 224}, OutputName: "y", OutputShape: []int64{-1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.(tracking.TimedEnder).EndAt(tracking.Finished, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	v, err := s.CreateModelVersion("pet-breed", src, f.done)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAlias("pet-breed", "champion", v); err != nil {
		t.Fatal(err)
	}

	w2, err := s.CreateRunAt(other, "broken", nil, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	f.failed = w2.RunID()
	if err := w2.End(tracking.Failed); err != nil {
		t.Fatal(err)
	}
	w3, err := s.CreateRun(exp, "in progress", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.active = w3.RunID()
	return f
}

// fixtureInputs are the dataset inputs of the fixture's finished run.
func fixtureInputs() []tracking.DatasetInput {
	in := func(digest, context string) tracking.DatasetInput {
		return tracking.DatasetInput{
			Dataset: tracking.Dataset{Name: "pets", Digest: digest, SourceType: tracking.SourceTypeLocal,
				Source: `{"uri": "file:///data/pets"}`, Profile: `{"num_images": 3}`},
			Tags: map[string]string{tracking.TagDatasetContext: context},
		}
	}
	return []tracking.DatasetInput{in("0123abcd", tracking.ContextTrain), in("4567cdef", tracking.ContextValidation)}
}

// sameRun checks that the copy toID in to has everything of fromID in from.
func sameRun(t *testing.T, from Source, fromID string, to Source, toID string) {
	t.Helper()
	a, err := from.GetRun(fromID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := to.GetRun(toID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != b.Name || a.Status != b.Status || !a.Start.Equal(b.Start) || !a.End.Equal(b.End) {
		t.Errorf("run %s → %s: name/status/start/end %q %v %v %v → %q %v %v %v", fromID, toID,
			a.Name, a.Status, a.Start, a.End, b.Name, b.Status, b.Start, b.End)
	}
	if len(a.Params) != len(b.Params) {
		t.Errorf("params %v → %v", a.Params, b.Params)
	}
	for k, v := range a.Params {
		if b.Params[k] != v {
			t.Errorf("param %s = %q → %q", k, v, b.Params[k])
		}
	}
	for k, v := range a.Tags {
		if !notCopied[k] && b.Tags[k] != v {
			t.Errorf("tag %s = %q → %q", k, v, b.Tags[k])
		}
	}
	if b.Tags[TagOrigin] != origin(*a) || b.Tags[TagComplete] != "true" {
		t.Errorf("copy's sync tags: %s=%q %s=%q", TagOrigin, b.Tags[TagOrigin], TagComplete, b.Tags[TagComplete])
	}
	if !reflect.DeepEqual(a.Inputs, b.Inputs) {
		t.Errorf("dataset inputs %+v → %+v", a.Inputs, b.Inputs)
	}
	if len(a.Metrics) != len(b.Metrics) {
		t.Errorf("metrics %v → %v", a.Metrics, b.Metrics)
	}
	for k := range a.Metrics {
		ha, _ := from.MetricHistory(fromID, k)
		hb, err := to.MetricHistory(toID, k)
		if err != nil || len(ha) != len(hb) {
			t.Errorf("metric %s: %d points → %d (%v)", k, len(ha), len(hb), err)
			continue
		}
		for i := range ha {
			if ha[i].Step != hb[i].Step || ha[i].Value != hb[i].Value || !ha[i].Timestamp.Equal(hb[i].Timestamp) {
				t.Errorf("metric %s[%d]: %+v → %+v", k, i, ha[i], hb[i])
			}
		}
	}
	fa, err := listAll(from, fromID, "")
	if err != nil {
		t.Fatal(err)
	}
	fb, err := listAll(to, toID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(fa) != len(fb) {
		t.Errorf("artifacts %v → %v", fa, fb)
	}
	for p := range fa {
		if !bytes.Equal(readArtifact(t, from, fromID, p), readArtifact(t, to, toID, p)) {
			t.Errorf("artifact %s differs in the copy", p)
		}
	}
}

func readArtifact(t *testing.T, ar tracking.ArtifactReader, runID, p string) []byte {
	t.Helper()
	rc, err := ar.OpenArtifact(runID, p)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func byFrom(res *Result) map[string]RunResult {
	m := map[string]RunResult{}
	for _, r := range res.Runs {
		m[r.From] = r
	}
	return m
}

// A whole sync between two file stores, then again (nothing copied), then
// back (nothing copied either: the originals are there).
func TestSyncFileStores(t *testing.T) {
	f := newFixture(t)
	dst := openStore(t, "dst")
	ctx := context.Background()
	res, err := Sync(ctx, f.store, dst, Options{Registry: true})
	if err != nil {
		t.Fatal(err)
	}
	got := byFrom(res)
	if len(res.Runs) != 3 || res.Copied() != 2 {
		t.Fatalf("runs %+v: want 3 seen, 2 copied", res.Runs)
	}
	if r := got[f.active]; r.Copied || !strings.Contains(r.Reason, "RUNNING") {
		t.Errorf("the running run: %+v, want skipped as still RUNNING", r)
	}
	done, failed := got[f.done], got[f.failed]
	if !done.Copied || done.Params != 2 || done.Points != 7 || done.Artifacts != 8 || done.Bytes < int64(len(f.big)) {
		t.Errorf("the finished run: %+v; want 2 params, 7 values, 8 files", done)
	}
	sameRun(t, f.store, f.done, dst, done.To)
	sameRun(t, f.store, f.failed, dst, failed.To)
	if info, _ := dst.GetRun(failed.To); info == nil || info.Status != tracking.Failed {
		t.Errorf("the failed run's copy: %+v", info)
	}
	// Experiments by name.
	for id, name := range map[string]string{done.To: "pet-breed", failed.To: "other"} {
		info, err := dst.GetRun(id)
		if err != nil {
			t.Fatal(err)
		}
		exps, _ := dst.Experiments()
		for _, e := range exps {
			if e.ID == info.ExperimentID && e.Name != name {
				t.Errorf("run %s went to experiment %q, want %q", id, e.Name, name)
			}
		}
	}
	// The registry: a version made from the copy, the alias on it, the model resolvable.
	vs, err := dst.ModelVersions("pet-breed")
	if err != nil || len(vs) != 1 || vs[0].RunID != done.To {
		t.Fatalf("destination versions %+v, %v", vs, err)
	}
	if a, err := dst.Alias("pet-breed", "champion"); err != nil || a != vs[0].Version {
		t.Errorf("alias champion = %d, %v; want %d", a, err, vs[0].Version)
	}
	ref, err := dst.Resolve("models:/pet-breed@champion")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(ref.Path); string(b) != "not really onnx, bytes are bytes" {
		t.Errorf("the resolved model %s holds %q", ref.Path, b)
	}
	if len(res.Versions) != 1 || !res.Versions[0].Copied || len(res.Aliases) != 1 {
		t.Errorf("registry result %+v %+v", res.Versions, res.Aliases)
	}

	// Again: nothing.
	res, err = Sync(ctx, f.store, dst, Options{Registry: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied() != 0 || len(res.Aliases) != 0 || res.Versions[0].Copied {
		t.Errorf("second sync copied %d runs, %+v, %+v", res.Copied(), res.Versions, res.Aliases)
	}
	if r := byFrom(res)[f.done]; r.To != done.To || r.Reason != "already there" {
		t.Errorf("second sync: %+v", r)
	}
	// Back: the originals are there.
	res, err = Sync(ctx, dst, f.store, Options{Registry: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied() != 0 || len(res.Aliases) != 0 {
		t.Errorf("sync back copied %d runs, aliases %+v", res.Copied(), res.Aliases)
	}
	if vs, _ := f.store.ModelVersions("pet-breed"); len(vs) != 1 {
		t.Errorf("sync back registered versions: %+v", vs)
	}
	// A third store gets copies of copies: their origin is the original.
	third := openStore(t, "third")
	if _, err := Sync(ctx, dst, third, Options{}); err != nil {
		t.Fatal(err)
	}
	res, err = Sync(ctx, f.store, third, Options{})
	if err != nil || res.Copied() != 0 {
		t.Errorf("original → the copy's copy copied %d, %v", res.Copied(), err)
	}
}

func TestSyncSelection(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		opt     Options
		copied  []string
		wantErr string
	}{
		{"one experiment", Options{Experiments: []string{"other"}}, []string{f.failed}, ""},
		{"one run", Options{Runs: []string{f.done}}, []string{f.done}, ""},
		{"no such experiment", Options{Experiments: []string{"nope"}}, nil, `no experiment "nope"`},
		{"no such run", Options{Runs: []string{"0123456789abcdef0123456789abcdef"}}, nil, "no run 0123456789abcdef0123456789abcdef"},
		{"dry run", Options{DryRun: true, Registry: true}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openStore(t, "dst")
			res, err := Sync(ctx, f.store, dst, tc.opt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range res.Runs {
				if r.Copied && !tc.opt.DryRun {
					ids = append(ids, r.From)
				}
			}
			if strings.Join(ids, ",") != strings.Join(tc.copied, ",") {
				t.Errorf("copied %v, want %v", ids, tc.copied)
			}
			if tc.opt.DryRun {
				if res.Copied() != 2 {
					t.Errorf("dry run would copy %d, want 2", res.Copied())
				}
				exps, _ := dst.Experiments()
				if len(exps) != 1 { // the store's own Default
					t.Errorf("dry run created experiments: %+v", exps)
				}
			}
		})
	}
}

// failingDest makes the copy's artifact upload fail after n files.
type failingDest struct {
	*tracking.Store
	n int
}

func (d *failingDest) CreateRunAt(exp, name string, tags map[string]string, start time.Time) (tracking.RunWriter, error) {
	w, err := d.Store.CreateRunAt(exp, name, tags, start)
	if err != nil {
		return nil, err
	}
	return &failingRun{Run: w.(*tracking.Run), left: &d.n}, nil
}

type failingRun struct {
	*tracking.Run
	left *int
}

func (r *failingRun) LogArtifactFile(rel, src string) error {
	if *r.left == 0 {
		return errors.New("disk full")
	}
	*r.left--
	return r.Run.LogArtifactFile(rel, src)
}

// A copy that fails midway is ended FAILED and marked abandoned, the error
// names the run and what was not copied, and the next sync copies the run
// again in full.
func TestSyncFailsMidway(t *testing.T) {
	f := newFixture(t)
	dst := openStore(t, "dst")
	ctx := context.Background()
	res, err := Sync(ctx, f.store, &failingDest{Store: dst, n: 2}, Options{Runs: []string{f.done}})
	if err == nil {
		t.Fatal("a failing upload did not fail the sync")
	}
	for _, want := range []string{f.done, "not copied (2 files before it were)", "disk full", "FAILED", TagAbandoned} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	partial := res.Runs[0].To
	info, gerr := dst.GetRun(partial)
	if gerr != nil || info.Status != tracking.Failed || info.Tags[TagAbandoned] != "true" || info.Tags[TagComplete] != "" {
		t.Fatalf("the partial copy: %+v, %v", info, gerr)
	}
	res, err = Sync(ctx, f.store, dst, Options{Runs: []string{f.done}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Runs[0]; !r.Copied || r.To == partial {
		t.Fatalf("after a failed copy: %+v", r)
	}
	sameRun(t, f.store, f.done, dst, res.Runs[0].To)
}

// A copy left RUNNING by a sync that died (no complete tag) is marked
// abandoned and the run copied again.
func TestSyncInterrupted(t *testing.T) {
	f := newFixture(t)
	dst := openStore(t, "dst")
	exp, err := dst.Experiment("pet-breed")
	if err != nil {
		t.Fatal(err)
	}
	w, err := dst.CreateRun(exp, "lr=0.001", map[string]string{TagOrigin: f.done})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Sync(context.Background(), f.store, dst, Options{Runs: []string{f.done}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Runs[0].Copied || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], w.RunID()) {
		t.Fatalf("runs %+v warnings %q", res.Runs, res.Warnings)
	}
	info, _ := dst.GetRun(w.RunID())
	if info.Status != tracking.Failed || info.Tags[TagAbandoned] != "true" {
		t.Errorf("the interrupted copy: %v %v", info.Status, info.Tags)
	}
}

// countingDest counts LogMetrics calls and their sizes.
type countingDest struct {
	*tracking.Store
	batches *[]int
}

func (d countingDest) CreateRunAt(exp, name string, tags map[string]string, start time.Time) (tracking.RunWriter, error) {
	w, err := d.Store.CreateRunAt(exp, name, tags, start)
	if err != nil {
		return nil, err
	}
	return countingRun{Run: w.(*tracking.Run), batches: d.batches}, nil
}

type countingRun struct {
	*tracking.Run
	batches *[]int
}

func (r countingRun) LogMetrics(b []tracking.Metric) error {
	*r.batches = append(*r.batches, len(b))
	return r.Run.LogMetrics(b)
}

// Long histories go in batches of at most MaxMetricsPerBatch values.
func TestSyncMetricBatches(t *testing.T) {
	src := openStore(t, "src")
	exp, _ := src.Experiment("e")
	w, err := src.CreateRun(exp, "long", nil)
	if err != nil {
		t.Fatal(err)
	}
	var batch []tracking.Metric
	for i := range 2500 {
		batch = append(batch, tracking.Metric{Key: "loss", Value: float64(i), Step: int64(i)})
	}
	if err := w.LogMetrics(batch); err != nil {
		t.Fatal(err)
	}
	if err := w.End(tracking.Finished); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	dst := openStore(t, "dst")
	res, err := Sync(context.Background(), src, countingDest{Store: dst, batches: &sizes}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 3 || sizes[0] != 1000 || sizes[1] != 1000 || sizes[2] != 500 {
		t.Errorf("batches %v, want 1000 1000 500", sizes)
	}
	sameRun(t, src, w.RunID(), dst, res.Runs[0].To)
}

// A version registered and the alias moved in the source after a sync
// follow at the next one; the versions already copied are not copied again.
func TestSyncAliasMoves(t *testing.T) {
	f := newFixture(t)
	dst := openStore(t, "dst")
	ctx := context.Background()
	if _, err := Sync(ctx, f.store, dst, Options{Registry: true}); err != nil {
		t.Fatal(err)
	}
	first, _ := dst.Alias("pet-breed", "champion")
	exp, _ := f.store.Experiment("pet-breed")
	w, err := f.store.CreateRun(exp, "better", nil)
	if err != nil {
		t.Fatal(err)
	}
	onnx := filepath.Join(t.TempDir(), "m.onnx")
	os.WriteFile(onnx, []byte("a better model"), 0o644)
	src, err := w.(*tracking.Run).LogONNXModel("model", onnx, tracking.ModelMeta{InputName: "x", InputShape: []int64{-1, 3, 224, 224}, OutputName: "y", OutputShape: []int64{-1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.End(tracking.Finished); err != nil {
		t.Fatal(err)
	}
	v, err := f.store.CreateModelVersion("pet-breed", src, w.RunID())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.SetAlias("pet-breed", "champion", v); err != nil {
		t.Fatal(err)
	}
	res, err := Sync(ctx, f.store, dst, Options{Registry: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied() != 1 || len(res.Aliases) != 1 || res.Aliases[0].Was != first || res.Aliases[0].Now == first {
		t.Fatalf("copied %d, aliases %+v (was %d)", res.Copied(), res.Aliases, first)
	}
	vs, _ := dst.ModelVersions("pet-breed")
	if len(vs) != 2 {
		t.Errorf("destination versions %+v, want 2", vs)
	}
	ref, err := dst.Resolve("models:/pet-breed@champion")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(ref.Path); string(b) != "a better model" {
		t.Errorf("the champion in the destination holds %q", b)
	}
}

// An artifact is streamed: syncing a 64 MiB file allocates a small part of it.
func TestSyncStreamsArtifacts(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 128 MiB")
	}
	src := openStore(t, "src")
	exp, _ := src.Experiment("e")
	w, err := src.CreateRun(exp, "big", nil)
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big.bin")
	fh, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if err := w.(*tracking.Run).LogArtifactFile("big.bin", big); err != nil {
		t.Fatal(err)
	}
	if err := w.End(tracking.Finished); err != nil {
		t.Fatal(err)
	}
	dst := openStore(t, "dst")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := Sync(context.Background(), src, dst, Options{TempDir: t.TempDir()})
	runtime.ReadMemStats(&after)
	if err != nil || res.Runs[0].Bytes != 64<<20 {
		t.Fatalf("%+v, %v", res, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("syncing a 64 MiB artifact allocated %d MiB", alloc>>20)
	}
}
