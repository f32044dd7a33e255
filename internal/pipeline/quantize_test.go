package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"petbreed/internal/onnx"
	"petbreed/internal/quantize"
	"petbreed/internal/testassets"
	"petbreed/internal/tracking"
)

func TestDecideQuantized(t *testing.T) {
	for _, tc := range []struct {
		fp32, int8, tol float64
		want            string
	}{
		{0.98, 0.98, 0.5, "int8"},
		{0.98, 0.99, 0.5, "int8"},   // better
		{0.98, 0.976, 0.5, "int8"},  // 0.4 points
		{0.98, 0.975, 0.5, "int8"},  // exactly the tolerance
		{0.98, 0.9749, 0.5, "fp32"}, // 0.51 points
		{0.98, 0.97, 0, "fp32"},
	} {
		got, reason := decideQuantized(tc.fp32, tc.int8, tc.tol)
		if got != tc.want || !strings.Contains(reason, "fp32's") {
			t.Errorf("decideQuantized(%v, %v, %v) = %s (%s), want %s", tc.fp32, tc.int8, tc.tol, got, reason, tc.want)
		}
	}
}

func TestQuantizationProblems(t *testing.T) {
	ok := Quantization{Quantize: true, QuantizeTolerance: 0.5, QuantizeImages: 200, QuantizeMethod: "minmax"}
	if p := ok.problems(); len(p) != 0 {
		t.Errorf("valid: %v", p)
	}
	for _, q := range []Quantization{
		{QuantizeTolerance: -1, QuantizeImages: 1, QuantizeMethod: "minmax"},
		{QuantizeTolerance: 0.5, QuantizeImages: 0, QuantizeMethod: "minmax"},
		{QuantizeTolerance: 0.5, QuantizeImages: 1, QuantizeMethod: "median"},
	} {
		if len(q.problems()) != 1 {
			t.Errorf("%+v: %v", q, q.problems())
		}
	}
}

// The pipeline with quantize: true on the real fp32 twin: the champion is
// exported in fp32 and int8, both evaluated on the test split, and the
// int8 one (within the tolerance) is the registered version, with the
// reason as a tag.
// quantizePipeline runs the default pipeline's first recipe alone with
// quantize: true (and edit's changes) on the backbone, into a new file store,
// and returns its summary and its champion's run.
func quantizePipeline(t *testing.T, backbone string, edit func(*Config)) (*Summary, *tracking.RunInfo) {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	r := cfg.Recipes[0]
	r.Baseline = false
	cfg.Recipes = []Recipe{r}
	cfg.Quantize = true
	if edit != nil {
		edit(&cfg)
	}
	sum, err := Run(context.Background(), Options{
		Data:     testassets.Path(t, "pets-3breeds"),
		Backbone: testassets.Path(t, "backbone", backbone),
		Config:   cfg,
		Tracking: filepath.Join(dir, "mlruns"),
		CacheDir: filepath.Join(dir, "cache"),
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := tracking.Open(filepath.Join(dir, "mlruns"))
	if err != nil {
		t.Fatal(err)
	}
	run, err := store.GetRun(sum.ChampionRunID)
	if err != nil {
		t.Fatal(err)
	}
	return sum, run
}

func TestPipelineQuantize(t *testing.T) {
	sum, run := quantizePipeline(t, "mobilenetv2-12-fp32-twin.onnx", func(cfg *Config) {
		cfg.QuantizeImages, cfg.QuantizeTolerance = 64, 1
	})
	t.Logf("tags %s=%s: %s; metrics %v", tagQuantized, run.Tags[tagQuantized], run.Tags[tagQuantizeReason], run.Metrics)
	if run.Tags[tagQuantized] != "int8" || !strings.Contains(run.Tags[tagQuantizeReason], "within 1.00 points") {
		t.Errorf("tags: %v", run.Tags)
	}
	data, err := os.ReadFile(sum.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := quantize.Describe(m); !ok || s.Form != "qdq" || s.Petbreed == nil || s.Petbreed.Images != 64 {
		t.Errorf("the registered model %s is not petbreed's int8: %+v", sum.ModelPath, s)
	}
	if !strings.Contains(sum.ModelPath, artifactModelInt8) {
		t.Errorf("registered %s, want the %s artifact", sum.ModelPath, artifactModelInt8)
	}
}

// A champion the quantizer refuses (the export of the zoo's int8 backbone
// is quantized already) is registered as it is, the reason tagged.
func TestPipelineQuantizeRefused(t *testing.T) {
	sum, run := quantizePipeline(t, "mobilenetv2-12-int8.onnx", nil)
	if run.Tags[tagQuantized] != "fp32" || !strings.Contains(run.Tags[tagQuantizeReason], "already quantized") {
		t.Errorf("tags: %v", run.Tags)
	}
	if strings.Contains(sum.ModelPath, artifactModelInt8) {
		t.Errorf("registered %s", sum.ModelPath)
	}
}
