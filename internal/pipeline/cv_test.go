package pipeline

import (
	"bufio"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/testassets"
	"petbreed/internal/tracking"
	"petbreed/internal/train"
)

func TestKFolds(t *testing.T) {
	var samples []dataset.Sample
	for c := range 3 {
		for i := range 7 + c {
			samples = append(samples, dataset.Sample{ID: string(rune('a'+c)) + string(rune('0'+i)), Label: c})
		}
	}
	f := kFolds(samples, 5, 1)
	size := make([]int, 5)
	perClass := map[[2]int]int{}
	for i, g := range f {
		if g < 0 || g >= 5 {
			t.Fatalf("fold %d out of range", g)
		}
		size[g]++
		perClass[[2]int{samples[i].Label, g}]++
	}
	// 24 images: folds of 4 or 5, and each class spread over the folds
	// (at most 2 of a class in one fold).
	for g, n := range size {
		if n < 4 || n > 5 {
			t.Errorf("fold %d has %d images: %v", g, n, size)
		}
	}
	for k, n := range perClass {
		if n > 2 {
			t.Errorf("class %d has %d images in fold %d", k[0], n, k[1])
		}
	}
	if !slices.Equal(f, kFolds(samples, 5, 1)) {
		t.Error("same seed, different folds")
	}
	if slices.Equal(f, kFolds(samples, 5, 2)) {
		t.Error("another seed, the same folds")
	}
	// The order the samples come in does not matter.
	rev := slices.Clone(samples)
	slices.Reverse(rev)
	fr := kFolds(rev, 5, 1)
	for i := range samples {
		if fr[len(samples)-1-i] != f[i] {
			t.Fatal("folds depend on the samples' order")
		}
	}
}

// TestCrossValidate on synthetic data: the folds' accuracies are reported,
// the λ chosen is the best mean, and an adam recipe gets its refit epochs.
func TestCrossValidate(t *testing.T) {
	const n, d = 60, 8
	x := make([]float32, n*d)
	var samples []dataset.Sample
	for i := range n {
		c := i % 3
		samples = append(samples, dataset.Sample{ID: string(rune('A' + i)), Label: c})
		for j := range d {
			x[i*d+j] = float32(math.Sin(float64(i*d+j))) + 0.5*float32(btoi(j%3 == c))
		}
	}
	fr := &features.Result{Dim: d, X: map[features.View][]float32{features.Original: x}, OK: make([]bool, n)}
	for i := range fr.OK {
		fr.OK[i] = true
	}
	cv := cvFolds{k: 4, fold: kFolds(samples, 4, 3), rows: newViewRows(fr, samples)}
	lb := Recipe{Name: "lb", Solver: SolverLBFGS, L2: []float64{1e-3, 1, 1000}}
	r, err := crossValidate(lb, 1, cv, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.foldAcc) != 4 || len(r.gridAcc) != 3 {
		t.Fatalf("result %+v", r)
	}
	chosen := slices.Index(lb.L2, r.l2)
	for i := range lb.L2 {
		if i != chosen && betterScore(r.gridAcc[i], r.gridLoss[i], lb.L2[i], r.gridAcc[chosen], r.gridLoss[chosen], r.l2) {
			t.Errorf("chose l2 %g (acc %v loss %v) over l2 %g (acc %v loss %v)", r.l2, r.gridAcc[chosen], r.gridLoss[chosen], lb.L2[i], r.gridAcc[i], r.gridLoss[i])
		}
	}
	if r.acc != r.gridAcc[chosen] || r.acc != mean(r.foldAcc) || r.loss != r.gridLoss[chosen] {
		t.Errorf("result %+v", r)
	}
	t.Logf("grid accuracies %v, losses %v", r.gridAcc, r.gridLoss)
	ad := Recipe{Name: "ad", Hyper: train.Hyper{LR: 0.05, BatchSize: 8, Epochs: 40, Patience: 5}}
	ra, err := crossValidate(ad, 1, cv, 3)
	if err != nil {
		t.Fatal(err)
	}
	if ra.epochs < 1 || ra.epochs > 40 || len(ra.foldAcc) != 4 || ra.acc < 0.5 {
		t.Errorf("adam: %+v", ra)
	}
	// A refit trains the chosen λ alone, or the chosen epochs without early
	// stopping.
	if e := refitRecipe(lb, r.l2, 0); len(e.L2) != 1 || e.L2[0] != r.l2 {
		t.Errorf("lbfgs refit recipe %+v", e)
	}
	if e := refitRecipe(ad, 0, 7); e.Epochs != 7 || e.Patience != 0 {
		t.Errorf("adam refit recipe %+v", e)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestConfigSolvers(t *testing.T) {
	tests := []struct {
		name, yaml, msg string
	}{
		{"lbfgs ok", "experiments: [{name: a, solver: lbfgs, l2: [0.01, 0.1], views: [orig, flip, c192]}]\n", ""},
		{"unknown solver", "experiments: [{name: a, solver: sgd, l2: [0.1]}]\n", `solver "sgd"`},
		{"no grid", "experiments: [{name: a, solver: lbfgs}]\n", "needs a grid"},
		{"bad l2", "experiments: [{name: a, solver: lbfgs, l2: [0.1, -1]}]\n", "L2 strength (l2) -1"},
		{"l2 with adam", "experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1, l2: [0.1]}]\n", "lbfgs solver's grid"},
		{"unknown view", "experiments: [{name: a, solver: lbfgs, l2: [1], views: [orig, zoom]}]\n", `unknown view "zoom"`},
		{"view twice", "experiments: [{name: a, solver: lbfgs, l2: [1], views: [orig, orig]}]\n", "orig twice"},
		{"flip and views", "experiments: [{name: a, solver: lbfgs, l2: [1], flip: true, views: [orig]}]\n", "flip and views"},
		{"cv folds", "cv_folds: 1\nexperiments: [{name: a, solver: lbfgs, l2: [1]}]\n", "cv_folds 1"},
		{"cv below", "cv_below: -1\nexperiments: [{name: a, solver: lbfgs, l2: [1]}]\n", "cv_below -1"},
		{"too many folds", "cv_folds: 51\nexperiments: [{name: a, solver: lbfgs, l2: [1]}]\n", "cv_folds 51: want 2 to 50"},
		{"grid too long", "experiments: [{name: a, solver: lbfgs, l2: [" + strings.Repeat("1, ", MaxL2Grid) + "1]}]\n", "1 to 64 L2 strengths, has 65"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml))
			if tt.msg == "" {
				if err != nil || c.Recipes[0].solver() != SolverLBFGS || len(c.Recipes[0].trainViews()) != 3 {
					t.Errorf("%+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want %q", err, tt.msg)
			}
		})
	}
}

// scarcePets writes a pets-3breeds layout keeping perClass trainval images
// of each breed and every test image; images/ is a link to the shared
// assets' folder (nothing is copied).
func scarcePets(t *testing.T, perClass int) string {
	t.Helper()
	src := testassets.Path(t, "pets-3breeds")
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(src, "images"), filepath.Join(dir, "images")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "annotations"), 0o755)
	for _, name := range []string{"trainval.txt", "test.txt"} {
		f, err := os.Open(filepath.Join(src, "annotations", name))
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		n := map[string]int{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 4 && (name == "test.txt" || n[fields[1]] < perClass) {
				n[fields[1]]++
				out.WriteString(sc.Text() + "\n")
			}
		}
		f.Close()
		if err := os.WriteFile(filepath.Join(dir, "annotations", name), []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPipelineScarceCV runs the real pipeline with 6 trainval images a
// breed: the validation split has one image a class, so the selection is
// by 5-fold cross-validation over trainval, every run is its own refit (no
// extra refit run), and each run records its folds.
func TestPipelineScarceCV(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Recipes = []Recipe{
		cfg.Recipes[0],
		{Name: "lbfgs_flip", Solver: SolverLBFGS, L2: []float64{1e-3, 1e-2, 0.1}, Flip: true},
	}
	dir := t.TempDir()
	sum, err := Run(context.Background(), Options{
		Data:     scarcePets(t, 6),
		Backbone: testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"),
		Config:   cfg,
		Tracking: filepath.Join(dir, "mlruns"),
		CacheDir: filepath.Join(dir, "cache"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("selected %s, test_acc %.4f", sum.Selected, sum.TestAcc)
	if !cfg.Recipes[0].Baseline || sum.Selected != "lbfgs_flip" {
		t.Errorf("selected %s: want lbfgs_flip, the recipe that is not a baseline", sum.Selected)
	}
	if sum.Selection != "cv" || sum.CVFolds != 5 || sum.Train != 18 || sum.Val != 0 || sum.Test != 298 {
		t.Errorf("selection %s/%d, split %d/%d/%d", sum.Selection, sum.CVFolds, sum.Train, sum.Val, sum.Test)
	}
	if len(sum.Runs) != 2 || sum.ChampionRunID != sum.SelectedRunID {
		t.Fatalf("%d runs, champion %s, selected %s: want 2 runs and the selected one the champion", len(sum.Runs), sum.ChampionRunID, sum.SelectedRunID)
	}
	if sum.TestAcc < 0.8 {
		t.Errorf("test accuracy %.4f with 6 images a class, want at least 0.8", sum.TestAcc)
	}
	store, err := tracking.Open(filepath.Join(dir, "mlruns"))
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
	// Cross-validation trains on all of trainval, in every run.
	checkInputs(t, runs, sum, map[string]int{tracking.ContextTrain: 18}, map[string]int{tracking.ContextTrain: 18})
	for _, r := range sum.Runs {
		if r.Status != "FINISHED" || len(r.CVFoldAcc) != 5 || r.ValAcc != mean(r.CVFoldAcc) {
			t.Errorf("run %s: %+v", r.Name, r)
		}
		hist, err := store.MetricHistory(r.RunID, "cv_fold_acc")
		if err != nil || len(hist) != 5 {
			t.Errorf("run %s: cv_fold_acc history %v, %v", r.Name, hist, err)
		}
		run, err := store.GetRun(r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if run.Params["selection"] != "cv" || run.Params["cv_folds"] != "5" || run.Params["n_train_rows"] == "" {
			t.Errorf("run %s params %v", r.Name, run.Params)
		}
		if r.Recipe.Solver == SolverLBFGS {
			if run.Params["l2_grid"] != "0.001,0.01,0.1" || run.Params["views"] != "orig,flip" || run.Params["n_train_rows"] != "36" || r.L2 == 0 {
				t.Errorf("lbfgs run: params %v, l2 %v", run.Params, r.L2)
			}
			if h, err := store.MetricHistory(r.RunID, "cv_l2_acc"); err != nil || len(h) != 3 {
				t.Errorf("cv_l2_acc history %v, %v", h, err)
			}
		}
	}
}
