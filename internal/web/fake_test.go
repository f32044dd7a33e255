package web

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"petbreed/internal/classify"
	"petbreed/internal/tracking"
	"petbreed/internal/tracking/trackingtest"
)

// The handlers' edge cases against trackingtest's in-memory backend: no
// files, no model, milliseconds. The real store is tested in web_test.go.

const fakeRun = "0123456789abcdef0123456789abcdef"

func fakeStore() *trackingtest.Store {
	st := &trackingtest.Store{}
	st.AddExperiment("1", DefaultExperiment)
	st.AddRun(tracking.RunInfo{ID: fakeRun, ExperimentID: "1", Name: "champ", Status: tracking.Finished,
		Start: time.UnixMilli(1000), End: time.UnixMilli(3000), Metrics: map[string]float64{tracking.MetricTestAcc: 0.5}})
	st.AddMetric(fakeRun, tracking.MetricTrainLoss, tracking.MetricPoint{Step: 2, Value: 0.5})
	st.AddMetric(fakeRun, tracking.MetricTrainLoss, tracking.MetricPoint{Step: 1, Value: 0.9})
	st.AddArtifact(fakeRun, tracking.ArtifactClassLabels, []byte(`{"classes": ["cat", "dog"]}`))
	st.AddArtifact(fakeRun, tracking.ArtifactReport("val"), []byte(`{"labels": ["cat", "dog"], "confusion": [[3, 1], [0, 4]]}`))
	st.AddArtifact(fakeRun, tracking.ArtifactReport("test"), []byte(`{"labels": ["cat", "dog"], "confusion": [[3, 1]]}`))
	v := st.AddVersion(DefaultModel, fakeRun, "/nonexistent/model.onnx")
	st.SetAlias(DefaultModel, ChampionAlias, v)
	return st
}

func TestRunDetailFake(t *testing.T) {
	st := fakeStore()
	ts := newServer(t, Config{Store: st})
	var got runAnswer
	if res := call(t, "GET", ts.URL+"/api/runs/"+fakeRun, "", "", &got); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if !got.Champion || len(got.Versions) != 1 {
		t.Errorf("champion %v versions %v", got.Champion, got.Versions)
	}
	if h := got.History[tracking.MetricTrainLoss]; len(h) != 2 || h[0].Step != 1 || h[1].Step != 2 {
		t.Errorf("history not sorted by step: %+v", h)
	}
	if ev := got.Evaluation["val"]; ev == nil || ev.Split != "val" || ev.PerClass[0].Correct != 3 || ev.PerClass[0].Total != 4 {
		t.Errorf("val evaluation %+v", ev)
	}
	// A corrupt report is a warning naming it, not a failure.
	if got.Evaluation["test"] != nil || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "test.json") {
		t.Errorf("test evaluation %+v, warnings %q", got.Evaluation["test"], got.Warnings)
	}
	if strings.Join(got.Classes, ",") != "cat,dog" {
		t.Errorf("classes %v", got.Classes)
	}

	// An artifact the backend cannot read is a warning too.
	st.Fail = map[string]error{"OpenArtifact": errors.New("backend down")}
	got = runAnswer{}
	call(t, "GET", ts.URL+"/api/runs/"+fakeRun, "", "", &got)
	if len(got.Warnings) != 3 || !strings.Contains(got.Warnings[0], "backend down") {
		t.Errorf("warnings %q", got.Warnings)
	}
}

// TestStoreFailures: a backend that fails answers 500 with the error, one
// that does not know the thing 404.
func TestStoreFailures(t *testing.T) {
	for _, c := range []struct {
		method, path, body string
		fail               string
		status             int
	}{
		{"GET", "/api/runs", "", "Experiments", 500},
		{"GET", "/api/runs", "", "Runs", 500},
		{"GET", "/api/runs", "", "ModelVersions", 500},
		{"GET", "/api/runs?experiment=nope", "", "", 404},
		{"GET", "/api/runs/" + fakeRun, "", "GetRun", 500},
		{"GET", "/api/runs/" + fakeRun, "", "MetricHistory", 500},
		{"GET", "/api/runs/ffffffffffffffffffffffffffffffff", "", "", 404},
		{"GET", "/api/models", "", "RegisteredModels", 500},
		{"GET", "/api/models?name=nope", "", "", 404},
		{"POST", "/api/models/pet-breed/aliases/champion", `{"version": 1}`, "SetAlias", 500},
		{"POST", "/api/models/pet-breed/aliases/champion", `{"version": 2}`, "", 404},
	} {
		st := fakeStore()
		if c.fail != "" {
			st.Fail = map[string]error{c.fail: errors.New("backend down")}
		}
		ts := newServer(t, Config{Store: st, AdminToken: "tok",
			Verify: func(context.Context, string, int) error { return nil }})
		var e errorJSON
		res := call(t, c.method, ts.URL+c.path, "tok", c.body, &e)
		what := c.method + " " + c.path + " failing " + c.fail
		wantError(t, res, e, c.status, what)
		if c.status == 500 && !strings.Contains(e.Detail, "backend down") {
			t.Errorf("%s: detail %q", what, e.Detail)
		}
	}
}

// TestTrialLoadResolves: the promotion's trial load resolves through the
// backend's Resolve and reports what it could not load.
func TestTrialLoadResolves(t *testing.T) {
	st := fakeStore()
	err := TrialLoad(st, classify.Options{})(context.Background(), DefaultModel, 1)
	if err == nil || !strings.Contains(err.Error(), "models:/pet-breed/1") || !strings.Contains(err.Error(), "/nonexistent/model.onnx") {
		t.Errorf("trial load of a missing file: %v", err)
	}
	if err := TrialLoad(st, classify.Options{})(context.Background(), DefaultModel, 7); !errors.Is(err, tracking.ErrNotFound) {
		t.Errorf("trial load of a missing version: %v", err)
	}
	if err := TrialLoad(nil, classify.Options{})(context.Background(), DefaultModel, 1); err == nil {
		t.Error("trial load without a store succeeded")
	}
}
