package tracking

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// loggedModel logs a small fake ONNX model in a new run and returns the run.
func logFakeModel(t *testing.T, s *Store, content string) *Run {
	t.Helper()
	r := startRun(t, s, "models", "m")
	src := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LogONNXModel("model", src, ModelMeta{InputName: "input", InputShape: []int64{-1, 3, 224, 224}, OutputName: "probs", OutputShape: []int64{-1, 37}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistryVersionsAndAliases(t *testing.T) {
	s := openStore(t)
	r := logFakeModel(t, s, "onnx-1")
	src := "file://" + filepath.Join(r.artifactDir, "model")
	for want := 1; want <= 3; want++ {
		v, err := s.CreateModelVersion("petbreed", src, r.ID)
		if err != nil || v != want {
			t.Fatalf("CreateModelVersion = %d, %v; want %d", v, err, want)
		}
	}
	mm := readYAML(t, filepath.Join(s.Root(), "models", "petbreed", metaFile))
	wantKeys(t, "model meta.yaml", mm, "name", "creation_timestamp", "last_updated_timestamp", "description")
	if mm["name"] != "petbreed" {
		t.Errorf("model meta.yaml name = %v", mm["name"])
	}
	vm := readYAML(t, filepath.Join(s.Root(), "models", "petbreed", "version-2", metaFile))
	wantKeys(t, "version meta.yaml", vm, "name", "version", "creation_timestamp", "last_updated_timestamp", "current_stage",
		"description", "user_id", "source", "run_id", "run_link", "status", "status_message", "storage_location")
	if vm["version"] != 2 || vm["name"] != "petbreed" || vm["current_stage"] != "None" || vm["status"] != "READY" ||
		vm["source"] != src || vm["run_id"] != r.ID {
		t.Errorf("version meta.yaml = %v", vm)
	}
	if _, ok := vm["creation_timestamp"].(int); !ok {
		t.Errorf("creation_timestamp = %#v", vm["creation_timestamp"])
	}

	if err := s.SetAlias("petbreed", "champion", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAlias("petbreed", "challenger", 3); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(s.Root(), "models", "petbreed", "aliases", "champion")); got != "2" {
		t.Errorf("alias file = %q, want \"2\" with no newline", got)
	}
	if err := s.SetAlias("petbreed", "champion", 3); err != nil { // move it
		t.Fatal(err)
	}
	if v, err := s.Alias("petbreed", "champion"); err != nil || v != 3 {
		t.Errorf("Alias(champion) = %d, %v", v, err)
	}
	// Rejected: a missing version, a missing model, reserved or invalid names.
	for _, tt := range []struct {
		model, alias string
		version      int
	}{
		{"petbreed", "prod", 9},
		{"petbreed", "prod", 0},
		{"nope", "prod", 1},
		{"petbreed", "latest", 1},
		{"petbreed", "Latest", 1},
		{"petbreed", "v1", 1},
		{"petbreed", "a b", 1},
		{"petbreed", "a/b", 1},
		{"petbreed", "", 1},
		{"petbreed", "x.y", 1},
	} {
		if err := s.SetAlias(tt.model, tt.alias, tt.version); err == nil {
			t.Errorf("SetAlias(%q, %q, %d): no error", tt.model, tt.alias, tt.version)
		}
	}
	if exists(filepath.Join(s.Root(), "models", "petbreed", "aliases", "prod")) {
		t.Error("an alias to a missing version was written")
	}
	vs, err := s.ModelVersions("petbreed")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, fmt.Sprintf("%d:%s", v.Version, strings.Join(v.Aliases, ",")))
		if v.Source != src || v.RunID != r.ID || v.Stage != "None" || v.Status != "READY" || v.Created.IsZero() {
			t.Errorf("version %+v", v)
		}
	}
	if want := "1: 2: 3:challenger,champion"; strings.Join(got, " ") != want {
		t.Errorf("ModelVersions = %q, want %q", strings.Join(got, " "), want)
	}
	if err := s.DeleteAlias("petbreed", "challenger"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAlias("petbreed", "challenger"); err != nil {
		t.Errorf("deleting a missing alias (MLflow allows it): %v", err)
	}
	if _, err := s.Alias("petbreed", "challenger"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Alias of a deleted alias: %v", err)
	}
	if err := s.DeleteAlias("nope", "champion"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteAlias of an unknown model: %v", err)
	}
	if _, err := s.Alias("nope", "champion"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Alias of an unknown model: %v", err)
	}
	// A hand-corrupted alias file is reported, not misread.
	aliasFile := filepath.Join(s.Root(), "models", "petbreed", "aliases", "champion")
	os.WriteFile(aliasFile, []byte("3\n"), 0o644)
	if _, err := s.Alias("petbreed", "champion"); err == nil || !strings.Contains(err.Error(), aliasFile) {
		t.Errorf("alias file with a newline: %v", err)
	}
	os.WriteFile(aliasFile, []byte("3"), 0o644)

	if _, err := s.CreateModelVersion("other", src, ""); err != nil {
		t.Fatal(err)
	}
	if names, err := s.RegisteredModels(); err != nil || strings.Join(names, ",") != "other,petbreed" {
		t.Errorf("RegisteredModels = %v, %v", names, err)
	}
	if _, err := s.ModelVersions("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ModelVersions(unknown) = %v", err)
	}
	for _, bad := range []string{"", "a/b", "a\\b", "50%", ".", ".."} {
		if _, err := s.CreateModelVersion(bad, src, ""); err == nil {
			t.Errorf("CreateModelVersion(%q): no error", bad)
		}
	}
	if _, err := s.CreateModelVersion("rel", "relative/path", ""); err == nil {
		t.Error("relative source accepted")
	}
	noTempFiles(t, s)
}

func TestCreateModelVersionRunsSource(t *testing.T) {
	s := openStore(t)
	r := logFakeModel(t, s, "onnx")
	v, err := s.CreateModelVersion("m", "runs:/"+r.ID+"/model", "")
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := s.ModelVersions("m")
	if len(vs) != 1 || vs[0].Version != v || vs[0].RunID != r.ID || vs[0].Source != "file://"+filepath.Join(r.artifactDir, "model") {
		t.Errorf("version from runs:/ source = %+v", vs)
	}
	// An artifact path that needs percent-encoding in the source URI.
	src := filepath.Join(t.TempDir(), "m.onnx")
	os.WriteFile(src, []byte("x"), 0o644)
	if _, err := r.LogONNXModel("my model%", src, ModelMeta{InputShape: []int64{1}, OutputShape: []int64{1}}); err != nil {
		t.Fatal(err)
	}
	v, err = s.CreateModelVersion("m", "runs:/"+r.ID+"/my model%", "")
	if err != nil {
		t.Fatal(err)
	}
	vs, _ = s.ModelVersions("m")
	if want := FileURI(filepath.Join(r.artifactDir, "my model%")); vs[1].Source != want || !strings.HasSuffix(want, "/my%20model%25") {
		t.Errorf("source = %q, want %q", vs[1].Source, want)
	}
	if p, err := s.ResolveModelURI("models:/m/" + strconv.Itoa(v)); err != nil || p != filepath.Join(r.artifactDir, "my model%", "model.onnx") {
		t.Errorf("ResolveModelURI = %q, %v", p, err)
	}
	if _, err := s.CreateModelVersion("m", "runs:/"+newRunID()+"/model", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("runs:/ source of an unknown run: %v", err)
	}
}

// TestCreateModelVersionRace has two stores on one root (as two processes
// would) register versions at once: every version number is used once.
func TestCreateModelVersionRace(t *testing.T) {
	s := openStore(t)
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	got := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = s2
			}
			v, err := st.CreateModelVersion("race", "file:///models/m"+strconv.Itoa(i), "")
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		}()
	}
	wg.Wait()
	sort.Ints(got)
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("versions %v, want 1..%d once each", got, n)
		}
	}
	// A version made by a writer that does not take the lock (MLflow) is
	// skipped, not overwritten.
	foreign := filepath.Join(s.Root(), "models", "race", "version-17")
	os.Mkdir(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, metaFile), []byte("name: race\nversion: 17\ncreation_timestamp: 1\ncurrent_stage: None\n"), 0o644)
	if v, err := s.CreateModelVersion("race", "file:///models/x", ""); err != nil || v != 18 {
		t.Errorf("after a foreign version 17: got %d, %v", v, err)
	}
	vs, err := s.ModelVersions("race")
	if err != nil || len(vs) != 18 {
		t.Errorf("ModelVersions: %d, %v", len(vs), err)
	}
}

func TestRegistryCorruption(t *testing.T) {
	s := openStore(t)
	if _, err := s.CreateModelVersion("m", "file:///x", ""); err != nil {
		t.Fatal(err)
	}
	// A version folder without meta.yaml makes MLflow fail; so does this.
	os.Mkdir(filepath.Join(s.Root(), "models", "m", "version-2"), 0o755)
	if _, err := s.ModelVersions("m"); err == nil || !strings.Contains(err.Error(), "version-2") {
		t.Errorf("version folder without meta.yaml: %v", err)
	}
	os.Remove(filepath.Join(s.Root(), "models", "m", "version-2"))
	// meta.yaml naming another model.
	meta := filepath.Join(s.Root(), "models", "m", metaFile)
	os.WriteFile(meta, []byte(strings.Replace(readString(t, meta), "'m'", "'n'", 1)), 0o644)
	if _, err := s.RegisteredModels(); err == nil || !strings.Contains(err.Error(), meta) {
		t.Errorf("model meta.yaml with another name: %v", err)
	}
}
