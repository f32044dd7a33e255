package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"petbreed"
	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/onnx"
	"petbreed/internal/report"
	"petbreed/internal/tracking"
	"petbreed/internal/train"
)

// runEnv is what every experiment of one pipeline shares.
type runEnv struct {
	store   Tracker
	expID   string
	ext     *features.Extractor
	classes []string
	common  map[string]string
	logf    func(string, ...any)
	seed    uint64
	// export and exportMeta add the pet check and test-time views to the
	// exported model (pet.go).
	export     onnx.ExportOptions
	exportMeta map[string]string
	// inputs are the splits as dataset inputs (inputs.go).
	inputs splitInputs
}

func (e Recipe) trainConfig(seed uint64) train.Config {
	return train.Config{Hyper: e.Hyper, Seed: seed}
}

// params are the recipe's MLflow run parameters: the solver's, flip_views
// and views.
func (e Recipe) params() map[string]string {
	var p map[string]string
	if e.solver() == SolverLBFGS {
		grid := make([]string, len(e.L2))
		for i, l := range e.L2 {
			grid[i] = strconv.FormatFloat(l, 'g', -1, 64)
		}
		p = map[string]string{"l2_grid": strings.Join(grid, ",")}
	} else {
		p = e.Hyper.Params()
	}
	p["solver"] = e.solver()
	p["flip_views"] = strconv.FormatBool(e.Flip)
	views := make([]string, 0, len(e.trainViews()))
	for _, v := range e.trainViews() {
		views = append(views, string(v))
	}
	p["views"] = strings.Join(views, ",")
	return p
}

// experiment trains one recipe as one tracked run. With refit, val is empty
// and no validation metric is logged. With cv, the recipe is first scored
// by cross-validation over the folds (the run's final_val_acc and
// final_val_loss are then the folds' means, the folds' own in cv_fold_acc),
// and then refit on tr, all of trainval.
func (env *runEnv) experiment(ctx context.Context, e Recipe, tr, val train.Data, tags map[string]string, refit bool, cv *cvFolds) (res RunResult, head *train.Head, err error) {
	res = RunResult{Name: e.Name, Recipe: e, Status: "FAILED"}
	run, err := env.store.CreateRun(env.expID, e.Name, tags)
	if err != nil {
		return res, nil, err
	}
	res.RunID = run.RunID()
	start := time.Now()
	defer func() {
		status := tracking.Finished
		switch {
		case ctx.Err() != nil:
			status = tracking.Killed
		case err != nil:
			status = tracking.Failed
			run.SetTags(map[string]string{"petbreed.error": err.Error()})
		}
		if endErr := run.End(status); endErr != nil && err == nil {
			err = endErr
		}
		res.Status = status.String()
		res.Duration = time.Since(start)
		if err != nil {
			res.Error = err.Error()
		}
	}()
	params := e.params()
	for k, v := range env.common {
		params[k] = v
	}
	params["n_train_rows"] = strconv.Itoa(tr.N())
	params["refit"] = strconv.FormatBool(refit || cv != nil)
	if cv != nil {
		params["selection"] = "cv"
		params["cv_folds"] = strconv.Itoa(cv.k)
	}
	if err = run.LogParams(params); err != nil {
		return res, nil, err
	}
	if refit || cv != nil {
		err = logInputs(run, env.inputs.trainVal)
	} else if val.N() > 0 {
		err = logInputs(run, env.inputs.train, env.inputs.val)
	} else {
		err = logInputs(run, env.inputs.train)
	}
	if err != nil {
		return res, nil, err
	}
	if cv != nil {
		r, err := crossValidate(e, env.seed, *cv, len(env.classes))
		if err != nil {
			return res, nil, fmt.Errorf("cross-validation: %w", err)
		}
		if err := logCV(run, r); err != nil {
			return res, nil, err
		}
		res.ValAcc, res.ValLoss, res.L2, res.CVFoldAcc = r.acc, r.loss, r.l2, r.foldAcc
		env.logf("%-20s cv_acc %.4f  cv_loss %.4f  (%d folds%s)", e.Name, r.acc, r.loss, cv.k, l2Note(e, r.l2))
		e = refitRecipe(e, r.l2, r.epochs)
		refit = true
	}

	var logErr error
	f, err := fit(e, env.seed, tr, val, len(env.classes), func(ep train.Epoch) {
		if logErr != nil {
			return
		}
		step := int64(ep.Epoch)
		batch := []tracking.Metric{
			{Key: tracking.MetricTrainLoss, Value: ep.TrainLoss, Step: step},
			{Key: tracking.MetricTrainAcc, Value: ep.TrainAcc, Step: step},
		}
		if !refit {
			batch = append(batch,
				tracking.Metric{Key: tracking.MetricValLoss, Value: ep.ValLoss, Step: step},
				tracking.Metric{Key: tracking.MetricValAcc, Value: ep.ValAcc, Step: step})
		}
		logErr = run.LogMetrics(batch)
	})
	if err != nil {
		return res, nil, err
	}
	head, epochs := f.head, f.epochs
	if e.solver() == SolverLBFGS {
		// One "epoch": the solved head's training (and validation) metrics.
		epochs, err = env.logSolve(run, e, f, tr, val, refit)
		if err != nil {
			return res, nil, err
		}
		if !refit {
			res.L2 = f.l2
		}
	}
	if logErr != nil {
		return res, nil, logErr
	}
	res.EpochsRun = len(epochs)
	res.BestEpoch = bestEpoch(epochs, e.Patience > 0)
	if err = run.LogMetrics([]tracking.Metric{
		{Key: tracking.MetricTrainSeconds, Value: time.Since(start).Seconds()},
		{Key: tracking.MetricBestEpoch, Value: float64(res.BestEpoch)},
	}); err != nil {
		return res, nil, err
	}
	if err = env.logCurves(run, epochs, refit); err != nil {
		return res, nil, err
	}
	if !refit {
		ev := train.Evaluate(head, val)
		res.ValAcc, res.ValLoss = ev.Acc, ev.Loss
		// The final validation metrics are the returned head's (the best
		// epoch's with early stopping), at step = its epoch.
		if err = run.LogMetrics([]tracking.Metric{
			{Key: tracking.MetricFinalValAcc, Value: ev.Acc, Step: int64(res.BestEpoch)},
			{Key: tracking.MetricFinalValLoss, Value: ev.Loss, Step: int64(res.BestEpoch)},
		}); err != nil {
			return res, nil, err
		}
		if err = env.logEvaluation(run, "val", ev); err != nil {
			return res, nil, err
		}
		env.logf("%-20s val_acc %.4f  val_loss %.4f  epochs %d (best %d)%s  %.2fs", e.Name, ev.Acc, ev.Loss, res.EpochsRun, res.BestEpoch, l2Note(e, f.l2), time.Since(start).Seconds())
	} else {
		env.logf("%-20s refit on %d rows for %d epochs  %.2fs", e.Name, tr.N(), res.EpochsRun, time.Since(start).Seconds())
	}
	labels, _ := json.Marshal(map[string]any{"classes": env.classes})
	if err = run.LogArtifact(tracking.ArtifactClassLabels, labels); err != nil {
		return res, nil, err
	}
	if _, err = env.logModel(run, head); err != nil {
		return res, nil, err
	}
	return res, head, nil
}

// bestEpoch is the epoch whose weights Train returned: the lowest validation
// loss with early stopping, else the last.
func bestEpoch(epochs []train.Epoch, early bool) int {
	if len(epochs) == 0 {
		return 0
	}
	if !early {
		return epochs[len(epochs)-1].Epoch
	}
	best := epochs[0]
	for _, ep := range epochs[1:] {
		if ep.ValLoss < best.ValLoss {
			best = ep
		}
	}
	return best.Epoch
}

func (env *runEnv) logCurves(run tracking.RunWriter, epochs []train.Epoch, refit bool) error {
	var trL, vaL, trA, vaA []report.Point
	for _, ep := range epochs {
		trL = append(trL, report.Point{Epoch: ep.Epoch, Value: ep.TrainLoss})
		trA = append(trA, report.Point{Epoch: ep.Epoch, Value: ep.TrainAcc})
		if !refit {
			vaL = append(vaL, report.Point{Epoch: ep.Epoch, Value: ep.ValLoss})
			vaA = append(vaA, report.Point{Epoch: ep.Epoch, Value: ep.ValAcc})
		}
	}
	loss, err := report.Curves("Loss", "cross-entropy", trL, vaL, false, 640, 400)
	if err != nil {
		return fmt.Errorf("loss curve: %w", err)
	}
	acc, err := report.Curves("Accuracy", "accuracy (%)", trA, vaA, true, 640, 400)
	if err != nil {
		return fmt.Errorf("accuracy curve: %w", err)
	}
	if err := run.LogArtifact(tracking.ArtifactLossPlot, loss); err != nil {
		return err
	}
	return run.LogArtifact(tracking.ArtifactAccuracyPlot, acc)
}

// logEvaluation logs a split's confusion matrix (PNG and JSON) and per-class
// report (text and JSON).
func (env *runEnv) logEvaluation(run tracking.RunWriter, split string, ev train.Eval) error {
	png, err := report.ConfusionPNG(ev.Confusion, env.classes)
	if err != nil {
		return fmt.Errorf("confusion matrix: %w", err)
	}
	if err := run.LogArtifact(tracking.ArtifactConfusionPlot(split), png); err != nil {
		return err
	}
	s := report.Summarize(ev.Confusion, env.classes)
	js, _ := json.MarshalIndent(map[string]any{"split": split, "confusion": ev.Confusion, "labels": env.classes, "report": s}, "", "  ")
	if err := run.LogArtifact(tracking.ArtifactReport(split), js); err != nil {
		return err
	}
	return run.LogArtifact(tracking.ArtifactReportText(split), []byte(s.Text()))
}

// logModel exports backbone + head + softmax as one ONNX file carrying its
// labels, preprocessing and provenance, and logs it as an MLflow model.
func (env *runEnv) logModel(run tracking.RunWriter, head *train.Head) (string, error) {
	labels, _ := json.Marshal(env.classes)
	meta := map[string]string{
		petbreed.MetaLabels:     string(labels),
		petbreed.MetaPreprocess: mustJSON(env.ext.Preprocess()),
		petbreed.MetaRunID:      run.RunID(),
		petbreed.MetaBackbone:   env.ext.SHA256(),
	}
	for k, v := range env.exportMeta {
		meta[k] = v
	}
	model, err := onnx.ExportWith(env.ext.Model(), env.ext.Features(), head.W, head.B, len(env.classes), meta, env.export)
	if err != nil {
		return "", fmt.Errorf("export: %w", err)
	}
	tmp, err := os.CreateTemp("", "petbreed-export-*.onnx")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(model); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	s := env.ext.Preprocess().Size
	return run.LogONNXModel(tracking.ArtifactModel, tmp.Name(), tracking.ModelMeta{
		InputName: env.ext.Features().Input, InputShape: []int64{-1, 3, int64(s), int64(s)},
		OutputName: onnx.ExportProbabilities, OutputShape: []int64{-1, int64(len(env.classes))},
	})
}

type registration struct {
	testAcc, testLoss float64
	version           int
	uri, path         string
}

// register evaluates the champion once on the test split, checks that the
// exported model agrees with the head, and registers it.
func (env *runEnv) register(ctx context.Context, runID string, head *train.Head, test train.Data, testSamples, calib []dataset.Sample, cfg Config) (*registration, error) {
	ev := train.Evaluate(head, test)
	run, err := env.store.OpenRun(runID)
	if err != nil {
		return nil, err
	}
	if err := run.LogMetrics([]tracking.Metric{
		{Key: tracking.MetricTestAcc, Value: ev.Acc},
		{Key: tracking.MetricTestLoss, Value: ev.Loss},
	}); err != nil {
		return nil, err
	}
	if err := run.SetTags(map[string]string{"petbreed.test_acc_units": "fraction in [0,1]"}); err != nil {
		return nil, err
	}
	if err := logInputs(run, env.inputs.test); err != nil {
		return nil, err
	}
	if err := env.logEvaluation(run, "test", ev); err != nil {
		return nil, err
	}
	// Registered from runs:/, the source is recorded as the run's artifact
	// URI (quoted), as mlflow.register_model does: no path is built here.
	src := "runs:/" + runID + "/" + tracking.ArtifactModel
	ref, err := env.store.Resolve(src)
	if err != nil {
		return nil, err
	}
	path := ref.Path
	if err := verifyExport(path, head, env.ext, testSamples, env.export.TTA); err != nil {
		return nil, err
	}
	if cfg.Quantize { // the int8 champion, registered instead when good enough (quantize.go)
		if src, path, err = env.quantizeChampion(ctx, run, src, path, calib, testSamples, cfg); err != nil {
			return nil, err
		}
	}
	version, err := env.store.CreateModelVersion(cfg.RegisteredModel, src, runID)
	if err != nil {
		return nil, err
	}
	if err := env.store.SetAlias(cfg.RegisteredModel, cfg.Alias, version); err != nil {
		return nil, err
	}
	env.logf("test_acc %.4f (test_loss %.4f, %d images): registered %s version %d as @%s",
		ev.Acc, ev.Loss, test.N(), cfg.RegisteredModel, version, cfg.Alias)
	return &registration{testAcc: ev.Acc, testLoss: ev.Loss, version: version,
		uri: fmt.Sprintf("models:/%s/%d", cfg.RegisteredModel, version), path: path}, nil
}

// l2Note names the chosen λ of an lbfgs recipe in a log line.
func l2Note(e Recipe, l2 float64) string {
	if e.solver() != SolverLBFGS {
		return ""
	}
	return fmt.Sprintf("  l2 %g", l2)
}

// logSolve logs an lbfgs solve: each λ's validation metrics (l2_val_acc and
// l2_val_loss, step = the λ's index in the grid), the solver's iterations,
// and the head's training metrics as the run's one epoch, which it returns.
func (env *runEnv) logSolve(run tracking.RunWriter, e Recipe, f fitted, tr, val train.Data, refit bool) ([]train.Epoch, error) {
	trEv := train.Evaluate(f.head, tr)
	ep := train.Epoch{Epoch: 1, TrainLoss: trEv.Loss, TrainAcc: trEv.Acc, ValLoss: math.NaN(), ValAcc: math.NaN()}
	batch := []tracking.Metric{
		{Key: tracking.MetricTrainLoss, Value: ep.TrainLoss, Step: 1},
		{Key: tracking.MetricTrainAcc, Value: ep.TrainAcc, Step: 1},
		{Key: "lbfgs_iterations", Value: float64(f.info.Iter)},
		{Key: "lbfgs_converged", Value: float64(btoi01(f.info.Converged))},
		{Key: "l2", Value: f.l2},
	}
	if !refit {
		vaEv := train.Evaluate(f.head, val)
		ep.ValLoss, ep.ValAcc = vaEv.Loss, vaEv.Acc
		batch = append(batch,
			tracking.Metric{Key: tracking.MetricValLoss, Value: ep.ValLoss, Step: 1},
			tracking.Metric{Key: tracking.MetricValAcc, Value: ep.ValAcc, Step: 1})
		for i, ev := range f.l2Val {
			batch = append(batch,
				tracking.Metric{Key: "l2_val_acc", Value: ev.Acc, Step: int64(i)},
				tracking.Metric{Key: "l2_val_loss", Value: ev.Loss, Step: int64(i)})
		}
	}
	return []train.Epoch{ep}, run.LogMetrics(batch)
}

// logCV logs a cross-validation: cv_acc and cv_loss (the chosen
// candidate's means), cv_fold_acc (step = fold), and for lbfgs each λ's
// mean accuracy and loss (cv_l2_acc, cv_l2_loss, step = the λ's index).
func logCV(run tracking.RunWriter, r cvResult) error {
	batch := []tracking.Metric{
		{Key: "cv_acc", Value: r.acc},
		{Key: "cv_loss", Value: r.loss},
		{Key: tracking.MetricFinalValAcc, Value: r.acc},
		{Key: tracking.MetricFinalValLoss, Value: r.loss},
	}
	for f, a := range r.foldAcc {
		batch = append(batch, tracking.Metric{Key: "cv_fold_acc", Value: a, Step: int64(f)})
	}
	for i := range r.gridAcc {
		batch = append(batch,
			tracking.Metric{Key: "cv_l2_acc", Value: r.gridAcc[i], Step: int64(i)},
			tracking.Metric{Key: "cv_l2_loss", Value: r.gridLoss[i], Step: int64(i)})
	}
	return run.LogMetrics(batch)
}

func btoi01(b bool) int {
	if b {
		return 1
	}
	return 0
}
