package tracking

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loggedChampion makes a store at <tmp>/<name> with one run that logged a
// model and a report, registered as m version 1 with the alias champion.
func loggedChampion(t *testing.T, dir string) (*Store, *Run) {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := startRun(t, s, "exp", "champ")
	src := filepath.Join(t.TempDir(), "exported.onnx")
	os.WriteFile(src, []byte("fake onnx bytes"), 0o644)
	if _, err := r.LogONNXModel(ArtifactModel, src, ModelMeta{InputShape: []int64{-1, 3}, OutputShape: []int64{-1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := r.LogArtifact(ArtifactReport("val"), []byte(`{"split":"val"}`)); err != nil {
		t.Fatal(err)
	}
	if err := r.End(Finished); err != nil {
		t.Fatal(err)
	}
	v, err := s.CreateModelVersion("m", "runs:/"+r.ID+"/"+ArtifactModel, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAlias("m", ChampionAlias, v); err != nil {
		t.Fatal(err)
	}
	return s, r
}

func TestResolveRef(t *testing.T) {
	s, r := loggedChampion(t, filepath.Join(t.TempDir(), "mlruns"))
	for uri, w := range map[string]ModelRef{
		"models:/m@champion":                 {Name: "m", Version: 1, RunID: r.ID, Alias: ChampionAlias},
		"models:/m/1":                        {Name: "m", Version: 1, RunID: r.ID},
		"models:/m/latest":                   {Name: "m", Version: 1, RunID: r.ID},
		"runs:/" + r.ID + "/model":           {RunID: r.ID},
		"runs:/" + r.ID + "/model/":          {RunID: r.ID},
		"file://" + r.artifactDir + "/model": {},
	} {
		ref, err := s.Resolve(uri)
		if err != nil {
			t.Errorf("%s: %v", uri, err)
			continue
		}
		w.URI, w.Path = uri, filepath.Join(r.artifactDir, "model", "model.onnx")
		if ref != w {
			t.Errorf("%s = %+v, want %+v", uri, ref, w)
		}
	}
	if ref, err := s.Resolve("some/file.onnx"); err != nil || ref.Path != "some/file.onnx" || ref.Name != "" {
		t.Errorf("plain path = %+v, %v", ref, err)
	}
	for _, uri := range []string{"models:/m@nope", "models:/nope/1", "models:/m/9", "runs:/" + strings.Repeat("0", 32) + "/model"} {
		if _, err := s.Resolve(uri); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", uri, err)
		}
	}
}

func TestOpenListArtifacts(t *testing.T) {
	s, r := loggedChampion(t, filepath.Join(t.TempDir(), "mlruns"))
	rc, err := s.OpenArtifact(r.ID, ArtifactReport("val"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != `{"split":"val"}` {
		t.Errorf("report = %q", b)
	}
	for name, open := range map[string]func() error{
		"missing file": func() error { _, err := s.OpenArtifact(r.ID, ArtifactReport("test")); return err },
		"missing run":  func() error { _, err := s.OpenArtifact(strings.Repeat("a", 32), ArtifactClassLabels); return err },
	} {
		if err := open(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	for _, bad := range []string{"../meta.yaml", "/etc/passwd", "reports/../../meta.yaml", ""} {
		if rc, err := s.OpenArtifact(r.ID, bad); err == nil {
			rc.Close()
			t.Errorf("OpenArtifact(%q) opened", bad)
		}
	}
	if _, err := s.OpenArtifact(r.ID, "reports"); err == nil {
		t.Error("a folder opened as an artifact")
	}
	root, err := s.ListArtifacts(r.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(root) != 2 || root[0] != (ArtifactEntry{Path: "model", IsDir: true}) || root[1] != (ArtifactEntry{Path: "reports", IsDir: true}) {
		t.Errorf("root = %+v", root)
	}
	reports, err := s.ListArtifacts(r.ID, "reports/")
	if err != nil || len(reports) != 1 || reports[0] != (ArtifactEntry{Path: "reports/val.json", Size: 15}) {
		t.Errorf("reports = %+v, %v", reports, err)
	}
	if none, err := s.ListArtifacts(r.ID, "plots"); err != nil || len(none) != 0 {
		t.Errorf("missing folder = %+v, %v", none, err)
	}
	if _, err := s.ListArtifacts(r.ID, "../.."); err == nil {
		t.Error("listed outside the artifacts")
	}
}

// TestRelocatedStore moves a store as a container mount would (the store
// written at one path, read at another): meta.yaml keeps the old absolute
// URIs, and models:/, runs:/ and artifacts are still found.
func TestRelocatedStore(t *testing.T) {
	base := t.TempDir()
	old := filepath.Join(base, "trained", "mlruns")
	_, r := loggedChampion(t, old)
	moved := filepath.Join(base, "data")
	if err := os.Rename(filepath.Dir(old), moved); err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(moved, "mlruns"))
	if err != nil {
		t.Fatal(err)
	}
	ri, err := s.GetRun(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ri.ArtifactURI, "/trained/mlruns/") {
		t.Fatalf("artifact_uri %s: the test wants the old absolute URI kept", ri.ArtifactURI)
	}
	want := filepath.Join(s.Root(), ri.ExperimentID, r.ID, artifactsDir, "model", "model.onnx")
	for _, uri := range []string{"models:/m@champion", "models:/m/1", "runs:/" + r.ID + "/model"} {
		ref, err := s.Resolve(uri)
		if err != nil || ref.Path != want {
			t.Errorf("%s = %+v, %v; want %s", uri, ref, err, want)
		}
	}
	rc, err := s.OpenArtifact(r.ID, ArtifactReport("val"))
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	// Not relocated: a path outside every recorded root stays missing.
	if p := s.relocate(filepath.Join(base, "elsewhere", "x")); p != filepath.Join(base, "elsewhere", "x") {
		t.Errorf("relocate outside the roots = %s", p)
	}
}
