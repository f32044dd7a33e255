package pipeline

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"petbreed/internal/classify"
	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/imaging"
	"petbreed/internal/onnx"
	"petbreed/internal/testassets"
	"petbreed/internal/tracking"
)

// runPets runs the default pipeline on pets-3breeds into the given store and cache.
func runPets(t *testing.T, store, cache string) *Summary {
	t.Helper()
	sum, err := Run(context.Background(), Options{
		Data:     testassets.Path(t, "pets-3breeds"),
		Backbone: testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"),
		Config:   DefaultConfig(),
		Tracking: store,
		CacheDir: cache,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestPipelinePets runs the whole default pipeline twice on the real
// backbone and images, and checks what it must guarantee.
func TestPipelinePets(t *testing.T) {
	dir := t.TempDir()
	storeDir, cacheDir := filepath.Join(dir, "mlruns"), filepath.Join(dir, "cache")
	cfg := DefaultConfig()

	first := runPets(t, storeDir, cacheDir)
	t.Logf("test_acc %.4f (%s), features %+v", first.TestAcc, first.Selected, first.Features)
	for _, r := range first.Runs {
		t.Logf("%-20s val_acc %.4f val_loss %.4f epochs %d best %d %s", r.Name, r.ValAcc, r.ValLoss, r.EpochsRun, r.BestEpoch, r.Status)
	}
	if first.TestAcc < 0.95 {
		t.Errorf("champion test accuracy %.4f, want at least 0.95", first.TestAcc)
	}
	if first.Train != 240 || first.Val != 60 || first.Test != 298 {
		t.Errorf("split %d/%d/%d, want 240/60/298", first.Train, first.Val, first.Test)
	}
	wantRuns := len(cfg.Recipes)
	if cfg.Refit {
		wantRuns++
	}
	if len(first.Runs) != wantRuns {
		t.Fatalf("%d runs, want %d", len(first.Runs), wantRuns)
	}
	// Trainval's 300 images in every training view, the 298 test images in
	// the original view.
	wantViews := len(viewsOf(cfg.Recipes))*300 + 298
	if first.Features.Computed != wantViews || first.Features.Cached != 0 {
		t.Errorf("cold features: %+v", first.Features)
	}

	// The store: every run finished, metrics per epoch, the champion
	// registered as version 1 with the alias.
	store, err := tracking.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	expID, err := store.Experiment(cfg.MLflowExperiment)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := store.Runs(expID)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != wantRuns {
		t.Fatalf("store has %d runs, want %d", len(runs), wantRuns)
	}
	for _, r := range runs {
		if r.Status != tracking.Finished || r.End.IsZero() {
			t.Errorf("run %s: status %v", r.Name, r.Status)
		}
		want := []string{"solver", "views", "seed", "backbone_sha256", "n_train", "n_val", "n_test"}
		switch r.Params["solver"] {
		case SolverAdam:
			want = append(want, "lr", "batch_size", "epochs", "dropout")
		case SolverLBFGS:
			want = append(want, "l2_grid")
		}
		for _, p := range want {
			if r.Params[p] == "" {
				t.Errorf("run %s: no param %s", r.Name, p)
			}
		}
		hist, err := store.MetricHistory(r.ID, "train_loss")
		if err != nil || len(hist) == 0 || hist[0].Step != 1 {
			t.Errorf("run %s: train_loss history %v %v", r.Name, hist, err)
		}
		for _, a := range []string{"class_labels.json", "plots/loss.png", "plots/accuracy.png", "model/MLmodel", "model/model.onnx"} {
			if _, err := os.Stat(filepath.Join(strings.TrimPrefix(r.ArtifactURI, "file://"), a)); err != nil {
				t.Errorf("run %s: artifact %s: %v", r.Name, a, err)
			}
		}
	}
	checkInputs(t, runs, first, map[string]int{tracking.ContextTrain: 240, tracking.ContextValidation: 60},
		map[string]int{tracking.ContextTrain: 300})
	champion, err := store.GetRun(first.ChampionRunID)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(champion.Metrics["test_acc"]-first.TestAcc) > 1e-12 {
		t.Errorf("champion run's test_acc %v, summary %v", champion.Metrics["test_acc"], first.TestAcc)
	}
	if v, err := store.Alias(cfg.RegisteredModel, "champion"); err != nil || v != 1 {
		t.Errorf("alias champion = %d, %v; want 1", v, err)
	}
	path, err := store.ResolveModelURI("models:/pet-breed@champion")
	if err != nil || path != first.ModelPath {
		t.Fatalf("models:/pet-breed@champion = %s, %v; want %s", path, err, first.ModelPath)
	}

	// The exported model on real images equals the head on the cached
	// features, within 1e-4.
	checkExportAgainstCache(t, path, cacheDir)

	// A second run: every feature from the cache, the same seed gives the
	// same head bit for bit, and the alias moves to version 2.
	second := runPets(t, storeDir, cacheDir)
	if second.Features.Computed != 0 || second.Features.Cached != wantViews {
		t.Errorf("warm features: %+v", second.Features)
	}
	if second.ModelVersion != 2 {
		t.Errorf("second version %d, want 2", second.ModelVersion)
	}
	if v, _ := store.Alias(cfg.RegisteredModel, "champion"); v != 2 {
		t.Errorf("alias champion = %d after the second run, want 2", v)
	}
	if second.TestAcc != first.TestAcc || second.Selected != first.Selected {
		t.Errorf("same seed, different outcome: %v %s vs %v %s", second.TestAcc, second.Selected, first.TestAcc, first.Selected)
	}
	w1, b1 := headOf(t, first.ModelPath)
	w2, b2 := headOf(t, second.ModelPath)
	for i := range w1 {
		if math.Float32bits(w1[i]) != math.Float32bits(w2[i]) {
			t.Fatalf("same seed, different weights at %d: %v vs %v", i, w1[i], w2[i])
		}
	}
	for i := range b1 {
		if b1[i] != b2[i] {
			t.Fatalf("same seed, different bias")
		}
	}

	// The store moved (trained here, mounted elsewhere, as at /data in a
	// container): its meta.yaml files keep the old absolute URIs, and the
	// champion still resolves, under the new root, and loads.
	moved := filepath.Join(dir, "elsewhere", "mlruns")
	if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(storeDir, moved); err != nil {
		t.Fatal(err)
	}
	mstore, err := tracking.Open(moved)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := mstore.Resolve("models:/pet-breed@champion")
	if err != nil {
		t.Fatalf("moved store: %v", err)
	}
	if ref.Name != "pet-breed" || ref.Version != 2 || ref.RunID != second.ChampionRunID || !strings.HasPrefix(ref.Path, moved+string(filepath.Separator)) {
		t.Fatalf("moved store: models:/pet-breed@champion = %+v, want version 2 of run %s under %s", ref, second.ChampionRunID, moved)
	}
	checkExportAgainstCache(t, ref.Path, cacheDir)
}

// headOf reads the head's weights back from an exported model.
func headOf(t *testing.T, path string) (w, b []float32) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := onnx.ReadInitializer(data, onnx.ExportWeight)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := onnx.ReadInitializer(data, onnx.ExportBias)
	if err != nil {
		t.Fatal(err)
	}
	if w, err = wt.Float32s(); err != nil {
		t.Fatal(err)
	}
	if b, err = bt.Float32s(); err != nil {
		t.Fatal(err)
	}
	return w, b
}

// checkExportAgainstCache runs the exported model on real test images and
// compares with softmax(W·x+b) of the features the pipeline cached for them.
func checkExportAgainstCache(t *testing.T, modelPath, cacheDir string) {
	t.Helper()
	ext, err := features.NewExtractor(testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	cache, err := features.OpenCache(cacheDir, ext)
	if err != nil {
		t.Fatal(err)
	}
	c, err := classify.Open(modelPath, classify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ds, err := dataset.Load(testassets.Path(t, "pets-3breeds"))
	if err != nil {
		t.Fatal(err)
	}
	w, b := headOf(t, modelPath)
	classes := len(b)
	if got := c.Classes(); strings.Join(got, ",") != strings.Join(ds.Classes, ",") {
		t.Errorf("exported labels %v, dataset %v", got, ds.Classes)
	}
	var worst float64
	for _, s := range ds.Test[:24] {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		x, ok := cache.Get(features.Original, features.KeyOf(data))
		if !ok {
			t.Fatalf("%s: not in the cache", s.Path)
		}
		img, _, err := imaging.Decode(data, imaging.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tensor := make([]float32, c.TensorLen())
		if err := c.Prepare(img, tensor); err != nil {
			t.Fatal(err)
		}
		probs, err := c.Run(tensor, 1)
		if err != nil {
			t.Fatal(err)
		}
		// The head in float64 on the cached features.
		logits := make([]float64, classes)
		m := math.Inf(-1)
		for k := range logits {
			z := float64(b[k])
			for d, v := range x {
				z += float64(w[k*len(x)+d]) * float64(v)
			}
			logits[k], m = z, math.Max(m, z)
		}
		var sum float64
		for k := range logits {
			logits[k] = math.Exp(logits[k] - m)
			sum += logits[k]
		}
		for k, p := range probs[0] {
			worst = math.Max(worst, math.Abs(float64(p)-logits[k]/sum))
		}
	}
	t.Logf("exported model vs head on cached features: max abs difference %.3g", worst)
	if worst > 1e-4 {
		t.Errorf("exported model differs from the head on cached features by %.3g (limit 1e-4)", worst)
	}
}

func TestConfig(t *testing.T) {
	def := DefaultConfig()
	if len(def.Recipes) < 4 || def.Recipes[0].LR != 0.001 || def.Recipes[0].Epochs != 10 {
		t.Errorf("default config: %+v", def)
	}
	if _, err := ParseConfig(DefaultConfigYAML()); err != nil {
		t.Errorf("the printed default does not parse: %v", err)
	}
	tests := []struct {
		name, yaml, msg string
	}{
		{"unknown key", "experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1, dropout: 0}]\nlearning_rate: 3\n", "learning_rate"},
		{"no experiments", "seed: 1\n", "no experiments"},
		{"bad lr", "experiments: [{name: a, lr: -1, batch_size: 8, epochs: 1}]\n", "lr"},
		{"bad dropout", "experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1, dropout: 1}]\n", "dropout"},
		{"duplicate", "experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1}, {name: a, lr: 0.1, batch_size: 8, epochs: 1}]\n", "duplicate"},
		{"bad metric", "select_metric: test_acc\nexperiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1}]\n", "select_metric"},
		{"bad name", "experiments: [{name: 'a b', lr: 0.1, batch_size: 8, epochs: 1}]\n", "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want %q", err, tt.msg)
			}
		})
	}
	c, err := ParseConfig([]byte("seed: 7\nexperiments: [{name: x, lr: 0.01, batch_size: 16, epochs: 3, dropout: 0.1, flip: true}]\n"))
	if err != nil || c.Seed != 7 || c.RegisteredModel != "pet-breed" || !c.Recipes[0].Flip {
		t.Errorf("%+v %v", c, err)
	}
	_ = strconv.Itoa
}
