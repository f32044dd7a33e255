package pipeline

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"petbreed/internal/classify"
	"petbreed/internal/dataset"
	"petbreed/internal/onnx"
	"petbreed/internal/quantize"
	"petbreed/internal/tracking"
)

// Quantization is the configuration's int8 option (issue 14): with
// quantize: true the champion is exported in fp32 and in int8 (static QDQ,
// calibrated on quantize_images training images), both are checked and
// evaluated on the test split, and the int8 one is registered when its test
// accuracy is within quantize_tolerance points of the fp32 one's; otherwise
// the fp32 one is. The reason is the run's tag petbreed.quantize_reason.
type Quantization struct {
	Quantize          bool    `yaml:"quantize"`
	QuantizeTolerance float64 `yaml:"quantize_tolerance"` // accuracy points (percent) int8 may lose
	QuantizeImages    int     `yaml:"quantize_images"`    // calibration images from trainval
	QuantizeMethod    string  `yaml:"quantize_method"`    // minmax, percentile or entropy
}

// Artifact path of the int8 model, beside tracking.ArtifactModel.
const artifactModelInt8 = "model-int8"

// Run tags of the decision.
const (
	tagQuantized      = "petbreed.quantized" // "int8" or "fp32": which one was registered
	tagQuantizeReason = "petbreed.quantize_reason"
)

// problems checks the option's values.
func (q Quantization) problems() []error {
	var errs []error
	if math.IsNaN(q.QuantizeTolerance) || q.QuantizeTolerance < 0 || q.QuantizeTolerance > 100 {
		errs = append(errs, fmt.Errorf("quantize_tolerance %v: want accuracy points in [0, 100]", q.QuantizeTolerance))
	}
	if q.QuantizeImages < 1 || q.QuantizeImages > quantize.MaxImages {
		errs = append(errs, fmt.Errorf("quantize_images %d: want 1 to %d", q.QuantizeImages, quantize.MaxImages))
	}
	if _, err := quantize.ParseMethod(q.QuantizeMethod); err != nil {
		errs = append(errs, fmt.Errorf("quantize_method: %w", err))
	}
	return errs
}

// quantizeChampion quantizes the verified fp32 champion (at path, logged as
// src), checks and evaluates both on the test split, logs the int8 model
// beside the fp32 one, and returns the source and path to register.
func (env *runEnv) quantizeChampion(ctx context.Context, run tracking.RunWriter, src, path string,
	calib, test []dataset.Sample, cfg Config) (string, string, error) {
	q := cfg.Quantization
	fp32, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	var paths []string
	for _, s := range calib {
		paths = append(paths, s.Path)
	}
	m, err := quantize.ParseMethod(q.QuantizeMethod)
	if err != nil {
		return "", "", err
	}
	int8Model, rep, err := quantize.Quantize(ctx, fp32, quantize.Spread(paths, q.QuantizeImages), quantize.Options{Method: m})
	if err != nil {
		if ctx.Err() != nil {
			return "", "", fmt.Errorf("quantize the champion: %w", err)
		}
		// A model the quantizer refuses (an int8 backbone's export is
		// already quantized) is registered in its own precision.
		reason := fmt.Sprintf("not quantized: %v", err)
		if err := run.SetTags(map[string]string{tagQuantized: "fp32", tagQuantizeReason: reason}); err != nil {
			return "", "", err
		}
		env.logf("quantize: fp32 registered: %s", reason)
		return src, path, nil
	}
	dir, err := os.MkdirTemp("", "petbreed-int8-*")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(dir)
	int8Path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(int8Path, int8Model, 0o644); err != nil {
		return "", "", err
	}
	accFP32, top32, err := evalModel(path, test)
	if err != nil {
		return "", "", fmt.Errorf("evaluate the fp32 model: %w", err)
	}
	accInt8, top8, err := evalModel(int8Path, test)
	if err != nil {
		return "", "", fmt.Errorf("evaluate the int8 model: %w", err)
	}
	same := 0
	for i := range top32 {
		if top32[i] == top8[i] {
			same++
		}
	}
	agree := float64(same) / float64(max(1, len(top32)))
	if err := run.LogMetrics([]tracking.Metric{
		{Key: "test_acc_onnx_fp32", Value: accFP32},
		{Key: "test_acc_onnx_int8", Value: accInt8},
		{Key: "test_agreement_int8", Value: agree},
	}); err != nil {
		return "", "", err
	}
	s := env.ext.Preprocess().Size
	int8Src, err := run.LogONNXModel(artifactModelInt8, int8Path, tracking.ModelMeta{
		InputName: env.ext.Features().Input, InputShape: []int64{-1, 3, int64(s), int64(s)},
		OutputName: onnx.ExportProbabilities, OutputShape: []int64{-1, int64(len(env.classes))},
	})
	if err != nil {
		return "", "", err
	}
	chosen, reason := decideQuantized(accFP32, accInt8, q.QuantizeTolerance)
	reason += fmt.Sprintf(" (top-1 agreement %.4f; %s on %d training images)", agree, rep.Method, rep.Images)
	if err := run.SetTags(map[string]string{tagQuantized: chosen, tagQuantizeReason: reason}); err != nil {
		return "", "", err
	}
	env.logf("quantize: %s registered: %s", chosen, reason)
	if chosen == "fp32" {
		return src, path, nil
	}
	ref, err := env.store.Resolve(int8Src)
	if err != nil {
		return "", "", err
	}
	return int8Src, ref.Path, nil
}

// evalModel runs a model file on the samples (checked servable first) and
// returns its accuracy and each sample's top-1 class (-1 for an image that
// could not be read, which counts as wrong).
func evalModel(path string, samples []dataset.Sample) (float64, []int, error) {
	c, err := classify.Open(path, classify.Options{})
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	if err := c.CheckServable(); err != nil {
		return 0, nil, err
	}
	paths := make([]string, len(samples))
	for i, s := range samples {
		paths[i] = s.Path
	}
	top := make([]int, len(samples))
	correct, i := 0, 0
	err = c.ClassifyFiles(context.Background(), paths, classify.FilesOptions{TopK: 1, BatchSize: 16}, func(r classify.Result) {
		top[i] = -1
		if r.Err == nil {
			top[i] = r.Predictions[0].Index
			if top[i] == samples[i].Label {
				correct++
			}
		}
		i++
	})
	if err != nil {
		return 0, nil, err
	}
	return float64(correct) / float64(max(1, len(samples))), top, nil
}

// decideQuantized chooses the model to register: "int8" when its test
// accuracy (a fraction) is at most tolerance points below fp32's, else
// "fp32"; and says why.
func decideQuantized(accFP32, accInt8, tolerance float64) (chosen, reason string) {
	loss := 100 * (accFP32 - accInt8)
	if loss <= tolerance+1e-9 {
		return "int8", fmt.Sprintf("int8 test_acc %.4f within %.2f points of fp32's %.4f", accInt8, tolerance, accFP32)
	}
	return "fp32", fmt.Sprintf("int8 test_acc %.4f is %.2f points below fp32's %.4f, more than the tolerance %.2f",
		accInt8, loss, accFP32, tolerance)
}
