package train

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestHyperValidate: the one check of a recipe's bounds, which the YAML
// config, the CLI's flags and Config all use: each field out of bounds is
// one *HyperError naming its key, all of them reported at once.
func TestHyperValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Hyper)
		keys []string // nil = valid
	}{
		{"default", func(*Hyper) {}, nil},
		{"full smoothing (torch's bound)", func(h *Hyper) { h.LabelSmoothing = 1 }, nil},
		{"largest batch and epochs", func(h *Hyper) { h.BatchSize, h.Epochs = MaxBatchSize, MaxEpochs }, nil},
		{"huge lr (diverges in Train, not refused)", func(h *Hyper) { h.LR = 1e30 }, nil},
		{"smoothing over 1", func(h *Hyper) { h.LabelSmoothing = math.Nextafter(1, 2) }, []string{"label_smoothing"}},
		{"inf lr", func(h *Hyper) { h.LR = math.Inf(1) }, []string{"lr"}},
		{"batch too large", func(h *Hyper) { h.BatchSize = MaxBatchSize + 1 }, []string{"batch_size"}},
		{"epochs too many", func(h *Hyper) { h.Epochs = MaxEpochs + 1 }, []string{"epochs"}},
		{"inf weight decay", func(h *Hyper) { h.WeightDecay = math.Inf(1) }, []string{"weight_decay"}},
		{"nan smoothing", func(h *Hyper) { h.LabelSmoothing = math.NaN() }, []string{"label_smoothing"}},
		{"all at once", func(h *Hyper) { *h = Hyper{Dropout: 1, Patience: -1, WeightDecay: -1, LabelSmoothing: -1} },
			[]string{"lr", "batch_size", "epochs", "dropout", "weight_decay", "patience", "label_smoothing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := DefaultHyper()
			tc.edit(&h)
			var keys []string
			for _, p := range h.Problems() {
				keys = append(keys, p.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tc.keys, ",") {
				t.Fatalf("Problems() keys %v, want %v", keys, tc.keys)
			}
			err := h.Validate()
			if (err == nil) != (tc.keys == nil) {
				t.Fatalf("Validate() = %v", err)
			}
			for _, k := range tc.keys {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("Validate() = %q, want it to name %s", err, k)
				}
			}
			var he *HyperError
			if err != nil && !errors.As(err, &he) {
				t.Errorf("Validate() = %v, not a *HyperError", err)
			}
			// Config's validation is the same, prefixed.
			if cerr := (Config{Hyper: h}).Validate(); (cerr == nil) != (err == nil) || cerr != nil && !strings.HasPrefix(cerr.Error(), "train: ") {
				t.Errorf("Config.Validate() = %v, Hyper.Validate() = %v", cerr, err)
			}
		})
	}
}
