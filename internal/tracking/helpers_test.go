package tracking

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "mlruns"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startRun(t *testing.T, s *Store, exp, name string) *Run {
	t.Helper()
	id, err := s.Experiment(exp)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.StartRun(id, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noTempFiles fails if a temporary or staged file is visible anywhere in the
// store outside the staging folder, where MLflow would see it.
func noTempFiles(t *testing.T, s *Store) {
	t.Helper()
	filepath.WalkDir(s.Root(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == stagingDir {
			return fs.SkipDir
		}
		if n := d.Name(); strings.Contains(n, ".tmp-") || strings.HasPrefix(n, ".stage-") || strings.HasPrefix(n, ".dir-") {
			t.Errorf("temporary file visible to MLflow: %s", p)
		}
		return nil
	})
}

func wantKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: missing key %q", what, k)
		}
	}
}
