package pipeline

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"petbreed/internal/tracking"
	"petbreed/internal/train"
)

// FuzzParseConfig: any bytes as the experiments file. ParseConfig never
// panics; a configuration it accepts has finite numbers in range, survives
// a YAML round trip unchanged, and its names are ones the tracking store
// takes (so a run of hours does not fail at registration).
func FuzzParseConfig(f *testing.F) {
	f.Add(DefaultConfigYAML())
	for _, s := range []string{
		"experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1}]\n",
		"experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1, weight_decay: .nan}]\n",
		"experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1, dropout: .nan}]\n",
		"experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1, label_smoothing: .inf}]\n",
		"alias: a.b\nexperiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1}]\n",
		"alias: latest\nexperiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1}]\n",
		"alias: v2\nexperiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1}]\n",
		"seed: -1\nexperiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1}]\n",
		"experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1}]\n---\nseed: 3\n",
		"", "---\n", "~", "[]", "experiments: *x", "a: &a [*a]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if err.Error() == "" || err.Error() == "EOF" {
				t.Fatalf("unclear error %q", err)
			}
			return
		}
		for _, e := range c.Recipes {
			for _, v := range []float64{e.LR, e.Dropout, e.WeightDecay, e.LabelSmoothing} {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("accepted a non-finite number in %+v", e)
				}
			}
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal %+v: %v", c, err)
		}
		back, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-read of\n%s: %v", out, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip:\n%+v\n%+v", c, back)
		}
		// The names reach the store.
		s, err := tracking.Open(filepath.Join(t.TempDir(), "mlruns"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Experiment(c.MLflowExperiment); err != nil {
			t.Fatalf("experiment %q accepted by the config, refused by the store: %v", c.MLflowExperiment, err)
		}
		model := t.TempDir()
		if err := os.WriteFile(filepath.Join(model, "model.onnx"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := s.CreateModelVersion(c.RegisteredModel, model, "")
		if err != nil {
			t.Fatalf("registered_model %q accepted by the config, refused by the store: %v", c.RegisteredModel, err)
		}
		if err := s.SetAlias(c.RegisteredModel, c.Alias, v); err != nil {
			t.Fatalf("alias %q accepted by the config, refused by the store: %v", c.Alias, err)
		}
	})
}

func TestConfigFuzzFindings(t *testing.T) {
	exp := "experiments: [{name: a, lr: 0.1, batch_size: 8, epochs: 1%s}]\n"
	for _, c := range []struct{ what, yaml, msg string }{
		{"NaN weight decay", strings.Replace(exp, "%s", ", weight_decay: .nan", 1), "weight_decay"},
		{"NaN dropout", strings.Replace(exp, "%s", ", dropout: .nan", 1), "dropout"},
		{"infinite label smoothing", strings.Replace(exp, "%s", ", label_smoothing: .inf", 1), "label_smoothing"},
		{"infinite weight decay", strings.Replace(exp, "%s", ", weight_decay: .inf", 1), "weight_decay"},
		{"alias with a dot", "alias: a.b\n" + strings.Replace(exp, "%s", "", 1), "alias"},
		{"alias latest", "alias: latest\n" + strings.Replace(exp, "%s", "", 1), "alias"},
		{"alias like a version", "alias: V12\n" + strings.Replace(exp, "%s", "", 1), "alias"},
		{"empty file", "", "empty"},
		{"only a comment", "# nothing\n", "empty"},
		{"two documents", strings.Replace(exp, "%s", "", 1) + "---\nseed: 3\n", "one YAML document"},
	} {
		if _, err := ParseConfig([]byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want one about %q", c.what, err, c.msg)
		}
	}
}

// TestRecipeBounds: a recipe's hyper-parameters are train.Hyper's, checked by
// its Validate (the bounds the trainer itself takes, label smoothing in
// [0, 1] included), and the default file's first recipe is train's default.
func TestRecipeBounds(t *testing.T) {
	if got, want := DefaultConfig().Recipes[0].Hyper, train.DefaultHyper(); got != want {
		t.Errorf("default.yaml's first recipe %+v, train.DefaultHyper %+v", got, want)
	}
	for _, c := range []struct{ recipe, msg string }{
		{"lr: 0.1, batch_size: 8, epochs: 1, label_smoothing: 1", ""},
		{"lr: 0.1, batch_size: 8, epochs: 1, label_smoothing: 1.5", "label_smoothing"},
		{"lr: 0.1, batch_size: 8, epochs: 10001", "epochs"},
		{"lr: 0.1, batch_size: 65537, epochs: 1", "batch_size"},
		{"lr: 0.1, batch_size: 8, epochs: 1, patience: -1, dropout: 1", "patience"},
	} {
		y := "experiments: [{name: a, " + c.recipe + "}]\n"
		_, err := ParseConfig([]byte(y))
		if c.msg == "" {
			if err != nil {
				t.Errorf("%s: %v", y, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "experiments[0] (a)") {
			t.Errorf("%s: err = %v, want one about experiments[0] (a) and %q", y, err, c.msg)
		}
		var he *train.HyperError
		if !errors.As(err, &he) {
			t.Errorf("%s: %v is not a train.HyperError", y, err)
		}
	}
}
