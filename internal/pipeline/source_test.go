package pipeline

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"petbreed/internal/testassets"
	"petbreed/internal/tracking"
	"petbreed/internal/train"
)

// TestRegisteredSourceIsAURI: the registered version's source is the model
// folder as a file URI that parses back to the folder (MLflow's quoting),
// also when the store's path has a space, a '#' and a '%'.
func TestRegisteredSourceIsAURI(t *testing.T) {
	storeDir := filepath.Join(t.TempDir(), "my runs #1 100%", "mlruns")
	cfg := DefaultConfig()
	cfg.Recipes = []Recipe{{Name: "one", Hyper: train.Hyper{LR: 0.001, BatchSize: 32, Epochs: 1}}}
	cfg.Refit = false
	sum, err := Run(context.Background(), Options{
		Data:     testassets.Path(t, "pets-3breeds"),
		Backbone: testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"),
		Config:   cfg,
		Tracking: storeDir,
		CacheDir: filepath.Join(t.TempDir(), "cache"),
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := tracking.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := store.ModelVersions(cfg.RegisteredModel)
	if err != nil || len(vs) != 1 {
		t.Fatalf("versions %+v, %v", vs, err)
	}
	u, err := url.Parse(vs[0].Source)
	if err != nil {
		t.Fatalf("source %q is not a URI: %v", vs[0].Source, err)
	}
	if u.Scheme != "file" || u.Fragment != "" {
		t.Fatalf("source %q: %v (scheme %q, fragment %q)", vs[0].Source, err, u.Scheme, u.Fragment)
	}
	if st, err := os.Stat(u.Path); err != nil || !st.IsDir() || filepath.Base(u.Path) != "model" {
		t.Errorf("source %q is path %q: %v, want the run's model folder", vs[0].Source, u.Path, err)
	}
	if _, err := os.Stat(filepath.Join(u.Path, "model.onnx")); err != nil || sum.ModelVersion != 1 {
		t.Errorf("model.onnx in %s: %v (version %d)", u.Path, err, sum.ModelVersion)
	}
}
