// Package testassets finds the real data the tests and benchmarks read in
// place: ../shared/assets beside the repository (a real MobileNetV2, Oxford-IIIT
// Pet images, photos, Pillow reference outputs). They are never copied into
// the repository.
package testassets

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the repository root: the nearest directory above the working
// directory that holds go.mod.
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("testassets: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Dir returns ../shared/assets beside the repository root. Without it the
// test is skipped, saying where it looked; CI always has it.
func Dir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("PETBREED_ASSETS"); d != "" {
		return d
	}
	d := filepath.Join(filepath.Dir(Root(tb)), "shared", "assets")
	if _, err := os.Stat(d); err != nil {
		tb.Skipf("shared assets not found at %s", d)
	}
	return d
}

// Path joins elems under the assets directory.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	return filepath.Join(append([]string{Dir(tb)}, elem...)...)
}

// Read returns the contents of an asset file.
func Read(tb testing.TB, elem ...string) []byte {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, elem...))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
