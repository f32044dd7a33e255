package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"petbreed/internal/pipeline"
	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
	"petbreed/internal/tracking"
)

// TestMain removes the binary testutil.Petbreed built.
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

// waitFor polls until cond holds, the process exits, or a minute passes.
func waitFor(t *testing.T, cmd *exec.Cmd, exited <-chan struct{}, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		select {
		case <-exited:
			return cond()
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatal("timed out waiting for the pipeline")
	return false
}

func globAny(pattern string) func() bool {
	return func() bool {
		m, _ := filepath.Glob(pattern)
		return len(m) > 0
	}
}

// TestPipelineSurvivesSIGKILL kills the pipeline process with SIGKILL right
// after its first feature-cache write, and again once it has started writing
// runs; the MLflow store must stay readable, and the rerun must reuse the
// cache and leave no run RUNNING.
func TestPipelineSurvivesSIGKILL(t *testing.T) {
	bin := testutil.Petbreed(t)
	dir := t.TempDir()
	store, cache := filepath.Join(dir, "mlruns"), filepath.Join(dir, "cache")
	args := []string{"pipeline", "--quiet",
		"--data", testassets.Path(t, "pets-3breeds"),
		"--backbone", testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"),
		"--tracking", store, "--cache", cache}
	for _, stage := range []struct {
		name string
		cond func() bool
	}{
		{"after the first feature shard", globAny(filepath.Join(cache, "features", "*", "*.shard"))},
		{"once runs exist", globAny(filepath.Join(store, "*", "*", "metrics", "*"))},
	} {
		cmd := exec.Command(bin, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		waitFor(t, cmd, exited, stage.cond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		t.Logf("killed %s", stage.name)

		// MLflow's reader must still be able to read every run.
		s, err := tracking.Open(store)
		if err != nil {
			t.Fatal(err)
		}
		exps, err := s.Experiments()
		if err != nil {
			t.Fatalf("%s: experiments: %v", stage.name, err)
		}
		for _, e := range exps {
			if _, err := s.Runs(e.ID); err != nil {
				t.Fatalf("%s: runs of %s: %v", stage.name, e.Name, err)
			}
		}
		// No temporary file is visible where MLflow reads (the store's
		// staging folder ends in .trash, which MLflow skips); the cache's
		// temporary files are hidden names its reader skips.
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err != nil || !strings.Contains(filepath.Base(p), ".tmp") || strings.Contains(p, ".trash") {
				return nil
			}
			if !strings.HasPrefix(p, cache) || !strings.HasPrefix(filepath.Base(p), ".") {
				t.Errorf("%s: temporary file left visible: %s", stage.name, p)
			}
			return nil
		})
	}

	// The rerun finishes, reusing the cached features.
	out, err := exec.Command(bin, append(args, "--json")...).Output()
	if err != nil {
		t.Fatalf("rerun: %v", err)
	}
	var sum pipeline.Summary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Features.Cached == 0 || sum.ModelVersion < 1 || sum.TestAcc < 0.95 {
		t.Errorf("rerun: features %+v, version %d, test_acc %v", sum.Features, sum.ModelVersion, sum.TestAcc)
	}
	s, _ := tracking.Open(store)
	exps, _ := s.Experiments()
	for _, e := range exps {
		runs, _ := s.Runs(e.ID)
		for _, r := range runs {
			if r.Status == tracking.Running {
				t.Errorf("run %s (%s) is still RUNNING after the rerun", r.Name, r.ID)
			}
		}
	}
}

// TestPipelineCommand drives pipeline, runs, models and predict with the
// champion's models:/ URI, end to end through the binary's code in-process.
func TestPipelineCommand(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "mlruns")
	t.Setenv("MLFLOW_TRACKING_URI", "file://"+store)
	t.Setenv("PETBREED_CACHE", filepath.Join(dir, "cache"))
	t.Setenv("PETBREED_MODEL", "")
	data := testassets.Path(t, "pets-3breeds")
	backbone := testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")

	if code, out, _ := cli(t, "pipeline", "--print-config"); code != 0 || !strings.Contains(out, "lr0.001_bs32") {
		t.Errorf("--print-config: %d %q", code, out)
	}
	badCfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badCfg, []byte("experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1, dropuot: 0.2}]\n"), 0o644)
	if code, _, errs := cli(t, "pipeline", "--data", data, "--backbone", backbone, "--config", badCfg); code != 2 || !strings.Contains(errs, "dropuot") {
		t.Errorf("bad config: exit %d, %q", code, errs)
	}
	if code, _, _ := cli(t, "pipeline", "--backbone", backbone); code != 2 {
		t.Errorf("no --data: exit %d", code)
	}
	// Before any pipeline, the default model does not resolve.
	img := filepath.Join(data, "images", "Bengal_1.jpg")
	if code, _, errs := cli(t, "predict", img); code != 1 || !strings.Contains(errs, "petbreed pipeline") {
		t.Errorf("predict without a champion: exit %d, %q", code, errs)
	}

	code, out, errs := cli(t, "pipeline", "--quiet", "--data", data, "--backbone", backbone)
	if code != 0 {
		t.Fatalf("pipeline: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"lr0.001_bs32", "lr0.005_bs32", "lr0.001_bs64", "flip_wd_es", "test accuracy:", "models:/pet-breed/1"} {
		if !strings.Contains(out, want) {
			t.Errorf("pipeline output lacks %q:\n%s", want, out)
		}
	}
	// predict, classes and inspect take the champion by URI.
	code, out, errs = cli(t, "predict", "--json", "-k", "1", img)
	var r jsonResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Predictions[0].Label != "Bengal" || r.Model != defaultModelURI {
		t.Errorf("predict with the champion: exit %d %v %+v %s", code, err, r, errs)
	}
	if code, out, _ := cli(t, "classes", "--model", "models:/pet-breed/1"); code != 0 || strings.TrimSpace(out) != "Abyssinian\nAmerican Bulldog\nBengal" {
		t.Errorf("classes of models:/pet-breed/1: %q", out)
	}
	if code, out, _ := cli(t, "inspect", "models:/pet-breed@champion"); code != 0 || !strings.Contains(out, "petbreed.labels") || !strings.Contains(out, "probabilities: float32[") {
		t.Errorf("inspect champion: %q", out)
	}
	if code, _, errs := cli(t, "predict", "--model", "models:/pet-breed/7", img); code != 1 || !strings.Contains(errs, "7") {
		t.Errorf("unknown version: exit %d %q", code, errs)
	}
	// runs and models list what the pipeline did.
	code, out, _ = cli(t, "runs", "--json")
	var runs []tracking.RunInfo
	// Every recipe of the default configuration and the selected one's refit.
	if err := json.Unmarshal([]byte(out), &runs); err != nil || code != 0 || len(runs) != len(pipeline.DefaultConfig().Recipes)+1 {
		t.Errorf("runs --json: exit %d, %v, %d runs", code, err, len(runs))
	}
	if code, out, _ := cli(t, "models"); code != 0 || !strings.Contains(out, "champion") {
		t.Errorf("models: %q", out)
	}
	if code, _, errs := cli(t, "runs", "--experiment", "nope"); code != 1 || !strings.Contains(errs, "no experiment") {
		t.Errorf("runs of an unknown experiment: %d %q", code, errs)
	}

	// One experiment with train: tracked, not registered unless asked.
	code, out, errs = cli(t, "train", "--quiet", "--json", "--data", data, "--backbone", backbone,
		"--name", "single", "--lr", "0.002", "--epochs", "5", "--flip")
	var one pipeline.Summary
	if err := json.Unmarshal([]byte(out), &one); err != nil || code != 0 || len(one.Runs) != 1 ||
		one.Runs[0].Name != "single" || one.ModelVersion != 0 || one.Features.Computed != 0 {
		t.Errorf("train: exit %d %v %+v %s", code, err, one, errs)
	}
	if code, _, errs := cli(t, "train", "--data", data, "--backbone", backbone, "--lr", "-1"); code != 2 || !strings.Contains(errs, "lr") {
		t.Errorf("train --lr -1: exit %d %q", code, errs)
	}
	code, _, _ = cli(t, "train", "--quiet", "--data", data, "--backbone", backbone, "--name", "reg", "--register")
	if v, err := mustStore(t, store).Alias("pet-breed", "champion"); code != 0 || err != nil || v != 2 {
		t.Errorf("train --register: exit %d, champion %d %v", code, v, err)
	}
}

func mustStore(t *testing.T, dir string) *tracking.Store {
	t.Helper()
	s, err := tracking.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPull runs pull against a local server with --base-url: a file that
// does not match the pinned size or checksum is refused (exit 1) and nothing
// is left. (internal/pull tests resuming, extraction and hostile archives.)
func TestPull(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".onnx") || strings.HasSuffix(r.URL.Path, ".tar.gz") {
			w.Write([]byte("not what the checksum says"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	dir := t.TempDir()
	for _, what := range []string{"backbone", "pets"} {
		code, _, errs := cli(t, "pull", what, "--quiet", "--dir", filepath.Join(dir, what), "--base-url", srv.URL)
		if code != 1 || !strings.Contains(errs, "checksum mismatch") && !strings.Contains(errs, "26 bytes, not the expected") {
			t.Errorf("pull %s: exit %d, %q", what, code, errs)
		}
		ents, _ := os.ReadDir(filepath.Join(dir, what))
		for _, e := range ents {
			t.Errorf("pull %s left %s", what, e.Name())
		}
	}
	if code, _, _ := cli(t, "pull", "weights"); code != 2 {
		t.Errorf("pull weights: exit %d, want 2", code)
	}
}
