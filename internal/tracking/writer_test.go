package tracking

import (
	"os"
	"path/filepath"
	"testing"
)

// A batch with a bad key writes nothing; a good one lands in order, as the
// same lines LogMetric writes.
func TestLogMetricsBatch(t *testing.T) {
	s := openStore(t)
	id, err := s.Experiment("e")
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.CreateRun(id, "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := []Metric{{Key: "ok", Value: 1}, {Key: "../escape", Value: 2}}
	if err := w.LogMetrics(bad); err == nil {
		t.Fatal("a batch with an invalid key was accepted")
	}
	if h, _ := s.MetricHistory(w.RunID(), "ok"); len(h) != 0 {
		t.Fatalf("a rejected batch logged %v", h)
	}
	if err := w.LogMetrics([]Metric{{Key: "loss", Value: 0.5, Step: 1}, {Key: "loss", Value: 0.25, Step: 2}, {Key: "acc", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	h, err := s.MetricHistory(w.RunID(), "loss")
	if err != nil || len(h) != 2 || h[0].Value != 0.5 || h[1].Step != 2 {
		t.Fatalf("loss history = %v, %v", h, err)
	}
}

// SetTags checks every tag first; OpenRun writes to the same run.
func TestSetTagsAndOpenRun(t *testing.T) {
	s := openStore(t)
	r := startRun(t, s, "e", "r")
	w, err := s.OpenRun(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetTags(map[string]string{"a": "1", "": "x"}); err == nil {
		t.Fatal("an empty tag key was accepted")
	}
	if _, err := os.Stat(filepath.Join(r.dir, tagsDir, "a")); !os.IsNotExist(err) {
		t.Fatalf("a rejected SetTags wrote tag a (%v)", err)
	}
	if err := w.SetTags(map[string]string{"a": "1", "b": "2"}); err != nil {
		t.Fatal(err)
	}
	info, err := s.GetRun(r.ID)
	if err != nil || info.Tags["a"] != "1" || info.Tags["b"] != "2" {
		t.Fatalf("tags = %v, %v", info.Tags, err)
	}
	if _, err := s.OpenRun("0123456789abcdef0123456789abcdef"); err == nil {
		t.Fatal("OpenRun of a missing run succeeded")
	}
}

// LocalPath turns the store's URI back into its folder, spaces and percent
// signs included; a non-file URI is left as it is.
func TestLocalPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my runs %20 #1")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := LocalPath(s.URI()); got != s.Root() {
		t.Errorf("LocalPath(%q) = %q, want %q", s.URI(), got, s.Root())
	}
	for _, u := range []string{"http://127.0.0.1:5000", "databricks"} {
		if got := LocalPath(u); got != u {
			t.Errorf("LocalPath(%q) = %q", u, got)
		}
	}
}
