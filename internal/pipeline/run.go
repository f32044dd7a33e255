package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/tracking"
	"petbreed/internal/tracking/backend"
	"petbreed/internal/train"
)

// Options configure Run.
type Options struct {
	Data     string // dataset root (Oxford-IIIT Pet layout or a folder per class)
	Backbone string // ONNX backbone file
	Config   Config
	Tracking string // MLflow tracking URI or path ("" = $MLFLOW_TRACKING_URI, else ./mlruns)
	CacheDir string // feature cache root ("" = features.DefaultDir())
	Threads  int    // ONNX Runtime intra-op threads (0 = one per core)
	// Log receives progress lines (nil = silent).
	Log io.Writer
	// Progress, when set, is called during feature extraction.
	Progress func(done, total int)
	// NoRegister stops after training and selection: no refit, no test
	// evaluation, no registration (petbreed train without --register).
	NoRegister bool
	// Store, when set, is the tracking backend runs go to, and Tracking is
	// not used; nil opens the backend at Tracking (backend.Open: a file
	// store, or an MLflow server for http(s)://).
	Store Tracker
}

// Tracker is what the pipeline needs of a tracking backend: experiments,
// runs to log to, the registry's writes, and resolving the runs:/ URI of the
// model it logged (to check the exported file before registering it).
// *tracking.Store implements it.
type Tracker interface {
	tracking.Tracker
	tracking.RegistryWriter
	tracking.Resolver
}

// reaper is a backend that can mark runs left RUNNING by a dead process
// (the file store: a server does that itself).
type reaper interface {
	ReapStale() (int, error)
}

// RunResult is one experiment's outcome.
type RunResult struct {
	Name      string        `json:"name"`
	RunID     string        `json:"run_id"`
	Recipe    Recipe        `json:"params"`
	ValAcc    float64       `json:"val_acc"`
	ValLoss   float64       `json:"val_loss"`
	L2        float64       `json:"l2,omitempty"`          // lbfgs: the chosen L2 strength
	CVFoldAcc []float64     `json:"cv_fold_acc,omitempty"` // with cross-validation: each fold's accuracy
	BestEpoch int           `json:"best_epoch"`
	EpochsRun int           `json:"epochs_run"`
	Duration  time.Duration `json:"duration_ns"`
	Status    string        `json:"status"`
	Error     string        `json:"error,omitempty"`
}

// Summary is what a pipeline run did.
type Summary struct {
	Dataset       string             `json:"dataset"`
	Classes       []string           `json:"classes"`
	Train         int                `json:"n_train"`
	Val           int                `json:"n_val"`
	Test          int                `json:"n_test"`
	Selection     string             `json:"selection"` // "validation" or "cv" (k-fold over trainval)
	CVFolds       int                `json:"cv_folds,omitempty"`
	Runs          []RunResult        `json:"runs"`
	Selected      string             `json:"selected"`
	SelectedRunID string             `json:"selected_run_id"`
	ChampionRunID string             `json:"champion_run_id"`
	TestAcc       float64            `json:"test_acc"` // fraction in [0,1]
	TestLoss      float64            `json:"test_loss"`
	ModelName     string             `json:"registered_model"`
	ModelAlias    string             `json:"alias"` // moved to the new version
	ModelVersion  int                `json:"version"`
	ModelURI      string             `json:"model_uri"`
	ModelPath     string             `json:"model_path"`
	Features      features.Stats     `json:"features"`
	Skipped       []string           `json:"skipped_images,omitempty"`
	Elapsed       time.Duration      `json:"elapsed_ns"`
	Tracking      string             `json:"tracking_root"`
	Timings       map[string]float64 `json:"timings_s"`
}

// data is the feature matrix of one split.
type data = train.Data

// Run executes the pipeline. A run that fails ends FAILED, an interrupted
// one (ctx cancelled) KILLED; the other experiments go on after a failure.
func Run(ctx context.Context, opt Options) (*Summary, error) {
	start := time.Now()
	logf := func(format string, args ...any) {
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, format+"\n", args...)
		}
	}
	cfg := opt.Config
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	sum := &Summary{Dataset: opt.Data, ModelName: cfg.RegisteredModel, ModelAlias: cfg.Alias, Timings: map[string]float64{}}
	mark := func(name string, t time.Time) { sum.Timings[name] = time.Since(t).Seconds() }

	// Data and splits.
	t := time.Now()
	ds, err := dataset.Load(opt.Data)
	if err != nil {
		return nil, err
	}
	if len(ds.Test) == 0 {
		return nil, fmt.Errorf("dataset %s has no test split (annotations/test.txt, or train/ and test/ folders)", opt.Data)
	}
	trainS, valS := dataset.Split(ds.TrainVal, cfg.ValFraction, cfg.Seed)
	sum.Classes = ds.Classes
	logf("dataset %s (%s): %d classes, %d train, %d val, %d test", opt.Data, ds.Layout, len(ds.Classes), len(trainS), len(valS), len(ds.Test))

	// Features, once per image and view, cached.
	ext, err := features.NewExtractor(opt.Backbone, opt.Threads)
	if err != nil {
		return nil, err
	}
	defer ext.Close()
	cacheDir := opt.CacheDir
	if cacheDir == "" {
		cacheDir = features.DefaultDir()
	}
	cache, err := features.OpenCache(cacheDir, ext)
	if err != nil {
		return nil, err
	}
	// Every training view of trainval; validation and test images in the
	// original view only.
	views := viewsOf(cfg.Recipes)
	tv := append(append([]dataset.Sample{}, trainS...), valS...)
	total := len(tv) + len(ds.Test)
	progress := func(offset int) func(done, _ int) {
		if opt.Progress == nil {
			return nil
		}
		return func(done, _ int) { opt.Progress(offset+done, total) }
	}
	frTV, err := features.Compute(ctx, ext, cache, tv, features.Options{Views: views, Progress: progress(0)})
	if err != nil {
		return nil, err
	}
	frTest, err := features.Compute(ctx, ext, cache, ds.Test, features.Options{Progress: progress(len(tv))})
	if err != nil {
		return nil, err
	}
	mark("features", t)
	sum.Features = features.Stats{
		Images:   frTV.Stats.Images + frTest.Stats.Images,
		Cached:   frTV.Stats.Cached + frTest.Stats.Cached,
		Computed: frTV.Stats.Computed + frTest.Stats.Computed,
		Elapsed:  frTV.Stats.Elapsed + frTest.Stats.Elapsed,
	}
	for _, e := range append(frTV.Skipped, frTest.Skipped...) {
		sum.Skipped = append(sum.Skipped, e.Error())
		logf("skipped: %v", e)
	}
	fs := sum.Features
	logf("features: %d images, %d views cached, %d computed by the backbone in %.2fs (%.0f images/s)",
		fs.Images, fs.Cached, fs.Computed, fs.Elapsed.Seconds(), fs.PerSecond())
	nTr, nVa := len(trainS), len(valS)
	rowsTV := newViewRows(frTV, tv)
	orig := []features.View{features.Original}
	val := rowsTV.gather(span(nTr, nTr+nVa), orig)
	test := newViewRows(frTest, ds.Test).gather(span(0, len(ds.Test)), orig)
	sum.Train, sum.Val, sum.Test = rowsTV.gather(span(0, nTr), orig).N(), val.N(), test.N()
	// The exported model's pet check, calibrated on trainval (pet.go).
	tvOrig := rowsTV.gather(span(0, len(tv)), orig)
	exportOpt, exportMeta, err := petExport(ext, tvOrig.X, tvOrig.N(), cfg.TTA, logf)
	if err != nil {
		return nil, err
	}

	// Selection by the validation split, or by k-fold cross-validation over
	// all of trainval when the split is too small to trust.
	var cv *cvFolds
	sum.Selection = "validation"
	if cfg.CVBelow > 0 && minPerClass(valS, len(ds.Classes)) < cfg.CVBelow {
		k := min(cfg.CVFolds, max(minPerClass(tv, len(ds.Classes)), 2), len(tv))
		if k < 2 {
			return nil, errNoFolds
		}
		cv = &cvFolds{k: k, fold: kFolds(tv, k, cfg.Seed), rows: rowsTV}
		sum.Selection, sum.CVFolds = "cv", k
		sum.Train, sum.Val = sum.Train+sum.Val, 0
		logf("selection: %d-fold cross-validation over trainval (the validation split has fewer than %d images of some class)", k, cfg.CVBelow)
	}

	// Tracking.
	store := opt.Store
	if store == nil {
		fs, err := backend.Open(opt.Tracking)
		if err != nil {
			return nil, err
		}
		store = fs
	}
	sum.Tracking = tracking.LocalPath(store.URI())
	if r, ok := store.(reaper); ok {
		if n, err := r.ReapStale(); err == nil && n > 0 {
			logf("tracking: marked %d run(s) left RUNNING by a dead process as KILLED", n)
		}
	}
	expID, err := store.Experiment(cfg.MLflowExperiment)
	if err != nil {
		return nil, err
	}
	common := map[string]string{
		"backbone":        filepath.Base(opt.Backbone),
		"backbone_sha256": ext.SHA256(),
		"feature_tensor":  ext.Features().Tensor,
		"feature_dim":     strconv.Itoa(ext.Dim()),
		"dataset":         absPath(opt.Data),
		"dataset_layout":  ds.Layout,
		"num_classes":     strconv.Itoa(len(ds.Classes)),
		"n_train":         strconv.Itoa(sum.Train),
		"n_val":           strconv.Itoa(sum.Val),
		"n_test":          strconv.Itoa(sum.Test),
		"val_fraction":    strconv.FormatFloat(cfg.ValFraction, 'g', -1, 64),
		"seed":            strconv.FormatUint(cfg.Seed, 10),
		"preprocess":      mustJSON(ext.Preprocess()),
	}
	env := &runEnv{store: store, expID: expID, ext: ext, classes: ds.Classes, common: common, logf: logf, seed: cfg.Seed,
		export: exportOpt, exportMeta: exportMeta, inputs: newSplitInputs(ds, trainS, valS)}

	// Experiments.
	t = time.Now()
	type trained struct {
		res  RunResult
		head *train.Head
	}
	var done []trained
	for _, e := range cfg.Recipes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var res RunResult
		var head *train.Head
		var err error
		if cv != nil {
			res, head, err = env.experiment(ctx, e, rowsTV.gather(span(0, len(tv)), e.trainViews()), data{}, nil, false, cv)
		} else {
			res, head, err = env.experiment(ctx, e, rowsTV.gather(span(0, nTr), e.trainViews()), val, nil, false, nil)
		}
		sum.Runs = append(sum.Runs, res)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			logf("%s: FAILED: %v", e.Name, err)
			continue
		}
		done = append(done, trained{res, head})
	}
	mark("experiments", t)
	if len(done) == 0 {
		return sum, errors.New("every experiment failed")
	}

	// Selection by validation (or cross-validation) only, among the recipes
	// that are not baselines (unless all are).
	sort.SliceStable(done, func(i, j int) bool {
		if a, b := done[i].res.Recipe.Baseline, done[j].res.Recipe.Baseline; a != b {
			return b
		}
		return better(cfg.SelectMetric, done[i].res, done[j].res)
	})
	best := done[0]
	sum.Selected, sum.SelectedRunID = best.res.Name, best.res.RunID
	logf("selected %s by %s (val_acc %.4f, val_loss %.4f)", best.res.Name, cfg.SelectMetric, best.res.ValAcc, best.res.ValLoss)
	if err := setRunTag(store, best.res.RunID, tracking.TagSelected, "true"); err != nil {
		return nil, err
	}

	if opt.NoRegister {
		sum.Elapsed = time.Since(start)
		return sum, nil
	}

	// Optional refit on all of trainval with the selected recipe.
	// (With cross-validation every run already is its refit on trainval.)
	champ := best
	if cfg.Refit && cv == nil {
		t = time.Now()
		e := refitRecipe(best.res.Recipe, best.res.L2, best.res.BestEpoch)
		e.Name = best.res.Name + "-refit"
		trAll := rowsTV.gather(span(0, len(tv)), e.trainViews())
		res, head, err := env.experiment(ctx, e, trAll, data{}, map[string]string{"petbreed.refit_of": best.res.RunID}, true, nil)
		sum.Runs = append(sum.Runs, res)
		if err != nil {
			return sum, fmt.Errorf("refit: %w", err)
		}
		champ = trained{res, head}
		mark("refit", t)
	}

	// The one test evaluation, export, registration.
	t = time.Now()
	reg, err := env.register(ctx, champ.res.RunID, champ.head, test, ds.Test, ds.TrainVal, cfg)
	if err != nil {
		return sum, err
	}
	mark("register", t)
	if champ.res.RunID != best.res.RunID {
		// The selected run points to the refit that was tested and registered.
		if err := setRunTag(store, best.res.RunID, tracking.TagChampionRun, champ.res.RunID); err != nil {
			return sum, err
		}
	}
	sum.ChampionRunID = champ.res.RunID
	sum.TestAcc, sum.TestLoss = reg.testAcc, reg.testLoss
	sum.ModelVersion, sum.ModelURI, sum.ModelPath = reg.version, reg.uri, reg.path
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// setRunTag sets one tag on a run logged earlier.
func setRunTag(store Tracker, runID, key, value string) error {
	run, err := store.OpenRun(runID)
	if err != nil {
		return err
	}
	return run.SetTags(map[string]string{key: value})
}

// better orders results for selection: the metric, then the other one, then
// the name (deterministic).
func better(metric string, a, b RunResult) bool {
	if metric == "val_loss" {
		if a.ValLoss != b.ValLoss {
			return a.ValLoss < b.ValLoss
		}
		return a.ValAcc > b.ValAcc
	}
	if a.ValAcc != b.ValAcc {
		return a.ValAcc > b.ValAcc
	}
	if a.ValLoss != b.ValLoss {
		return a.ValLoss < b.ValLoss
	}
	return a.Name < b.Name
}

// rowsOf gathers the features of samples[from:to] in one view, skipping the
// images that could not be decoded.
func rowsOf(fr *features.Result, samples []dataset.Sample, from, to int, v features.View) data {
	d := data{D: fr.Dim}
	for i := from; i < to; i++ {
		if !fr.OK[i] {
			continue
		}
		d.X = append(d.X, fr.X[v][i*fr.Dim:(i+1)*fr.Dim]...)
		d.Y = append(d.Y, int32(samples[i].Label))
	}
	return d
}

func concat(a, b data) data {
	if a.N() == 0 {
		return b
	}
	if b.N() == 0 {
		return a
	}
	return data{
		X: append(append(make([]float32, 0, len(a.X)+len(b.X)), a.X...), b.X...),
		Y: append(append(make([]int32, 0, len(a.Y)+len(b.Y)), a.Y...), b.Y...),
		D: a.D,
	}
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
