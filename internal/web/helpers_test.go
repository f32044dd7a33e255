package web

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"petbreed/internal/pipeline"
	"petbreed/internal/pipeline/pipelinetest"
	"petbreed/internal/tracking"
)

// The tests read the MLflow store of one real training pipeline on
// pets-3breeds (about 5 s), run once per test binary. Tests that change the
// registry work on a copy of it.

func TestMain(m *testing.M) {
	code := m.Run()
	pipelinetest.Cleanup()
	os.Exit(code)
}

// trained returns the summary of the pipeline run (once per test binary).
func trained(t testing.TB) *pipeline.Summary {
	t.Helper()
	return pipelinetest.Champion(t)
}

// sharedStore opens the pipeline's store (read only: do not change it).
func sharedStore(t testing.TB) (*pipeline.Summary, *tracking.Store) {
	t.Helper()
	sum := trained(t)
	st, err := tracking.Open(sum.Tracking)
	if err != nil {
		t.Fatal(err)
	}
	return sum, st
}

// storeCopy copies the pipeline's store to a temporary folder, for a test
// that changes the registry, and registers the selected run's model as
// version 2 of pet-breed (version 1, the champion, is its refit).
func storeCopy(t testing.TB) (*pipeline.Summary, string, *tracking.Store) {
	t.Helper()
	sum := trained(t)
	dir := filepath.Join(t.TempDir(), "mlruns")
	if err := os.CopyFS(dir, os.DirFS(sum.Tracking)); err != nil {
		t.Fatal(err)
	}
	st, err := tracking.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.CreateModelVersion("pet-breed", "runs:/"+sum.SelectedRunID+"/model", "")
	if err != nil {
		t.Fatal(err)
	}
	if v != 2 {
		t.Fatalf("registered version %d, want 2", v)
	}
	return sum, dir, st
}

// call makes a request and decodes the JSON answer into out (when not
// nil); it returns the response with its body read.
func call(t testing.TB, method, url, token, body string, out any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		var probe any
		if err := json.Unmarshal(b, &probe); err != nil {
			t.Fatalf("%s %s: invalid JSON %q: %v", method, url, b, err)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
			}
		}
	}
	res.Body = io.NopCloser(strings.NewReader(string(b)))
	return res
}

// errorJSON is the error answer.
type errorJSON struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

func wantError(t testing.TB, res *http.Response, e errorJSON, status int, what string) {
	t.Helper()
	if res.StatusCode != status {
		b, _ := io.ReadAll(res.Body)
		t.Errorf("%s: status %d, want %d (%s)", what, res.StatusCode, status, b)
		return
	}
	if e.Error == "" || e.Detail == "" {
		t.Errorf("%s: answer %+v lacks error and detail", what, e)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
}
