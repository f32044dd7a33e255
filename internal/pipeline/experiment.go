package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
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
}

func (e Recipe) trainConfig(seed uint64) train.Config {
	return train.Config{Hyper: e.Hyper, Seed: seed}
}

// params are the recipe's MLflow run parameters: the hyper-parameters' and
// flip_views.
func (e Recipe) params() map[string]string {
	p := e.Hyper.Params()
	p["flip_views"] = strconv.FormatBool(e.Flip)
	return p
}

// experiment trains one recipe as one tracked run. With refit, val is empty
// and no validation metric is logged.
func (env *runEnv) experiment(ctx context.Context, e Recipe, tr, val train.Data, tags map[string]string, refit bool) (res RunResult, head *train.Head, err error) {
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
	params["refit"] = strconv.FormatBool(refit)
	if err = run.LogParams(params); err != nil {
		return res, nil, err
	}

	var logErr error
	head, epochs, err := train.Train(e.trainConfig(env.seed), tr, val, len(env.classes), func(ep train.Epoch) {
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
		env.logf("%-20s val_acc %.4f  val_loss %.4f  epochs %d (best %d)  %.2fs", e.Name, ev.Acc, ev.Loss, res.EpochsRun, res.BestEpoch, time.Since(start).Seconds())
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
	model, err := onnx.Export(env.ext.Model(), env.ext.Features(), head.W, head.B, len(env.classes), meta)
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
func (env *runEnv) register(ctx context.Context, runID string, head *train.Head, test train.Data, testSamples []dataset.Sample, cfg Config) (*registration, error) {
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
	if err := verifyExport(path, head, env.ext, testSamples); err != nil {
		return nil, err
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
