package mlflowrest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestEvict: the least recently used entries go until the cache fits, the
// one just resolved never; incomplete entries and downloads in progress stay,
// a killed download's leftovers go.
func TestEvict(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	entry := func(server, name string, age time.Duration, size int) string {
		dir := filepath.Join(root, server, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.onnx"), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		m := filepath.Join(dir, manifestFile)
		if err := os.WriteFile(m, []byte(`{"file":"model.onnx"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(m, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	oldest := entry("a", "m1", 4*time.Hour, 1000)
	older := entry("b", "m2", 3*time.Hour, 1000) // another server: one cache
	old := entry("a", "m3", 2*time.Hour, 1000)
	recent := entry("a", "m4", time.Hour, 1000)
	incomplete := filepath.Join(root, "a", "m5")
	os.MkdirAll(incomplete, 0o755)
	os.WriteFile(filepath.Join(incomplete, "model.onnx"), make([]byte, 5000), 0o644)
	stale := filepath.Join(root, "a", ".tmp-123")
	fresh := filepath.Join(root, "a", ".tmp-456")
	for _, d := range []string{stale, fresh} {
		os.MkdirAll(d, 0o755)
	}
	os.Chtimes(stale, now.Add(-2*staleTemp), now.Add(-2*staleTemp))

	size, _, _ := entryUse(recent)
	if size <= 1000 {
		t.Fatalf("entry size %d", size)
	}
	// Room for two entries; the oldest is the one just resolved.
	gone := evict(root, 2*size, oldest)
	if want := []string{older, old}; !slices.Equal(gone, want) {
		t.Errorf("evicted %v, want %v", gone, want)
	}
	for _, d := range []string{oldest, recent, incomplete, fresh} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
	for _, d := range []string{older, old, stale} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s kept", d)
		}
	}
	// Within the bound, or no bound: nothing goes.
	if gone := evict(root, 2*size, recent); len(gone) != 0 {
		t.Errorf("within the bound: evicted %v", gone)
	}
	if gone := evict(root, -1, recent); len(gone) != 0 {
		t.Errorf("no bound: evicted %v", gone)
	}
	// The entry just resolved stays even alone over the bound.
	if gone := evict(root, 1, recent); !slices.Equal(gone, []string{oldest}) {
		t.Errorf("bound 1: evicted %v, want only %s", gone, oldest)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("the entry just resolved was removed: %v", err)
	}
	// A missing cache is nothing to do.
	if gone := evict(filepath.Join(root, "none"), 1, ""); gone != nil {
		t.Errorf("no cache: %v", gone)
	}
}

func TestCacheMaxBytesFromEnv(t *testing.T) {
	for _, tc := range []struct {
		val  string
		want int64
		bad  bool
	}{
		{"", 0, false},
		{"1048576", 1 << 20, false},
		{"0", -1, false},
		{"-5", 0, true},
		{"lots", 0, true},
	} {
		t.Setenv("PETBREED_MODEL_CACHE_MAX_BYTES", tc.val)
		o, err := OptionsFromEnv()
		if (err != nil) != tc.bad || (!tc.bad && o.CacheMaxBytes != tc.want) {
			t.Errorf("%q: %d, %v", tc.val, o.CacheMaxBytes, err)
		}
	}
	c, err := New("http://127.0.0.1:1", Options{})
	if err != nil || c.opt.CacheMaxBytes != DefaultCacheMaxBytes {
		t.Errorf("default bound %d, %v", c.opt.CacheMaxBytes, err)
	}
}
