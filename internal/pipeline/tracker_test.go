package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"petbreed/internal/tracking"
	"petbreed/internal/train"
)

// fakeTracker records what the pipeline writes and fails the metric batch
// number failAt (1-based; 0 never).
type fakeTracker struct {
	failAt  int
	batches int
	runs    map[string]*fakeRun
}

type fakeRun struct {
	t       *fakeTracker
	id      string
	params  map[string]string
	tags    map[string]string
	metrics []tracking.Metric
	status  tracking.Status
	ends    int
}

var errDiskFull = errors.New("disk full")

func (f *fakeTracker) URI() string                       { return "fake://" }
func (f *fakeTracker) Experiment(string) (string, error) { return "1", nil }
func (f *fakeTracker) Resolve(string) (tracking.ModelRef, error) {
	return tracking.ModelRef{}, errors.New("not in the fake")
}
func (f *fakeTracker) CreateModelVersion(string, string, string) (int, error) {
	return 0, errors.New("not in the fake")
}
func (f *fakeTracker) SetAlias(string, string, int) error { return errors.New("not in the fake") }

func (f *fakeTracker) CreateRun(_, name string, _ map[string]string) (tracking.RunWriter, error) {
	r := &fakeRun{t: f, id: "run-" + name, params: map[string]string{}, tags: map[string]string{}, status: tracking.Running}
	if f.runs == nil {
		f.runs = map[string]*fakeRun{}
	}
	f.runs[r.id] = r
	return r, nil
}

func (f *fakeTracker) OpenRun(id string) (tracking.RunWriter, error) {
	if r, ok := f.runs[id]; ok {
		return r, nil
	}
	return nil, tracking.ErrNotFound
}

func (r *fakeRun) RunID() string { return r.id }
func (r *fakeRun) LogParams(p map[string]string) error {
	for k, v := range p {
		r.params[k] = v
	}
	return nil
}
func (r *fakeRun) LogMetrics(b []tracking.Metric) error {
	r.t.batches++
	if r.t.batches == r.t.failAt {
		return errDiskFull
	}
	r.metrics = append(r.metrics, b...)
	return nil
}
func (r *fakeRun) SetTags(t map[string]string) error {
	for k, v := range t {
		r.tags[k] = v
	}
	return nil
}
func (r *fakeRun) LogArtifact(string, []byte) error { return nil }
func (r *fakeRun) LogONNXModel(string, string, tracking.ModelMeta) (string, error) {
	return "", errors.New("not in the fake")
}
func (r *fakeRun) End(s tracking.Status) error { r.status = s; r.ends++; return nil }

var _ Tracker = (*fakeTracker)(nil)

// A tracking write that fails while training (the second epoch's metric
// batch) fails the experiment: the run is ended FAILED, once, with the error
// as its petbreed.error tag, and the result says so. No backbone is needed:
// the failure comes before the export.
func TestExperimentTrackingWriteFails(t *testing.T) {
	tests := []struct {
		name   string
		failAt int
		epochs int // metrics logged before the failure, in epoch batches
	}{
		{"first epoch", 1, 0},
		{"second epoch", 2, 1},
		{"after training", 4, 3}, // the train_seconds/best_epoch batch after 3 epochs
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeTracker{failAt: tc.failAt}
			env := &runEnv{store: ft, expID: "1", classes: []string{"a", "b"}, logf: func(string, ...any) {}, seed: 1}
			d := train.Data{D: 2, X: []float32{0, 1, 1, 0, 0, 1, 1, 0}, Y: []int32{0, 1, 0, 1}}
			e := Recipe{Name: "r", Hyper: train.Hyper{LR: 0.01, BatchSize: 2, Epochs: 3}}
			res, head, err := env.experiment(context.Background(), e, d, d, nil, false, nil)
			if !errors.Is(err, errDiskFull) {
				t.Fatalf("err = %v, want the tracking write's error", err)
			}
			if head != nil {
				t.Error("a failed experiment returned a head")
			}
			if res.Status != "FAILED" || !strings.Contains(res.Error, "disk full") || res.RunID != "run-r" {
				t.Errorf("result = %+v, want FAILED with the error and the run id", res)
			}
			run := ft.runs["run-r"]
			if run.status != tracking.Failed || run.ends != 1 {
				t.Errorf("run ended %d time(s) with %v, want once FAILED", run.ends, run.status)
			}
			if got := run.tags["petbreed.error"]; !strings.Contains(got, "disk full") {
				t.Errorf("petbreed.error tag = %q", got)
			}
			if got, want := len(run.metrics), 4*tc.epochs; got != want {
				t.Errorf("%d metric values logged before the failure, want %d", got, want)
			}
		})
	}
}
