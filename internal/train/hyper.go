package train

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Hyper is the one list of a training recipe's hyper-parameters. The
// pipeline's YAML recipes embed it (the yaml keys are the file's), the CLI's
// train flags fill it, and Config adds the seed to it; Validate is the one
// check of their bounds for all three.
type Hyper struct {
	LR        float64 `yaml:"lr"`
	BatchSize int     `yaml:"batch_size"`
	Epochs    int     `yaml:"epochs"`  // maximum number of epochs
	Dropout   float64 `yaml:"dropout"` // p of the Dropout before the Linear layer, in [0, 1)
	// WeightDecay is torch.optim.Adam's weight_decay: L2 regularisation,
	// WeightDecay·w added to the gradient before the moment estimates. With
	// AdamW it is AdamW's decoupled decay instead: w ← w·(1 − LR·WeightDecay)
	// before the Adam step, the gradient left alone. It applies to the
	// weights and the bias alike, as with Adam(model.parameters()).
	WeightDecay float64 `yaml:"weight_decay,omitempty"`
	AdamW       bool    `yaml:"adamw,omitempty"` // decoupled weight decay (torch.optim.AdamW) instead of L2
	// Patience stops training after this many epochs in a row without a
	// validation loss strictly below the best so far; 0 disables it. When it
	// is positive Train returns the head of the best epoch, otherwise the
	// head of the last epoch.
	Patience int `yaml:"patience,omitempty"`
	// LabelSmoothing is CrossEntropyLoss's label_smoothing, in [0, 1] as
	// torch's: the target is (1−ε)·onehot + ε/C. 0 turns it off.
	LabelSmoothing float64 `yaml:"label_smoothing,omitempty"`
}

// DefaultHyper is the original project's recipe: Adam at 0.001, batches of
// 32, 10 epochs, dropout 0.2. It is the CLI's train flags' defaults and the
// first recipe of the pipeline's default configuration.
func DefaultHyper() Hyper {
	return Hyper{LR: 0.001, BatchSize: 32, Epochs: 10, Dropout: 0.2}
}

// The bounds Validate enforces beyond the mathematical ones: values past
// them are typing mistakes, not recipes. The learning rate has none: one
// too large for the data makes the loss diverge, which Train reports as
// ErrDiverged with the epoch.
const (
	MaxBatchSize = 65536
	MaxEpochs    = 10000
)

// HyperError is one hyper-parameter out of its bounds. Key is its name in the
// YAML recipe (and, with '-' for '_', the CLI flag's); Error names it in
// words and by key, so every caller's message says which one.
type HyperError struct {
	Key   string // "lr", "batch_size", ...
	Words string // "learning rate", "batch size", ...
	Value any
	Want  string // "in (0, 10)", ...
}

func (e *HyperError) Error() string {
	if e.Words == e.Key {
		return fmt.Sprintf("%s %v must be %s", e.Key, e.Value, e.Want)
	}
	return fmt.Sprintf("%s (%s) %v must be %s", e.Words, e.Key, e.Value, e.Want)
}

// Validate checks every field and returns the Problems joined, or nil.
func (h Hyper) Validate() error {
	var errs []error
	for _, p := range h.Problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// Problems lists the fields out of bounds, in the order of the struct. NaN
// and infinities are out of every bound.
func (h Hyper) Problems() []*HyperError {
	var errs []*HyperError
	bad := func(key, words string, v any, want string) {
		errs = append(errs, &HyperError{Key: key, Words: words, Value: v, Want: want})
	}
	if !(h.LR > 0) || math.IsInf(h.LR, 1) {
		bad("lr", "learning rate", h.LR, "a finite positive number")
	}
	if h.BatchSize < 1 || h.BatchSize > MaxBatchSize {
		bad("batch_size", "batch size", h.BatchSize, fmt.Sprintf("in [1, %d]", MaxBatchSize))
	}
	if h.Epochs < 1 || h.Epochs > MaxEpochs {
		bad("epochs", "epochs", h.Epochs, fmt.Sprintf("in [1, %d]", MaxEpochs))
	}
	if !(h.Dropout >= 0 && h.Dropout < 1) {
		bad("dropout", "dropout", h.Dropout, "in [0, 1)")
	}
	if !(h.WeightDecay >= 0) || math.IsInf(h.WeightDecay, 1) {
		bad("weight_decay", "weight decay", h.WeightDecay, "a finite non-negative number")
	}
	if h.Patience < 0 {
		bad("patience", "patience", h.Patience, "non-negative (0: off)")
	}
	if !(h.LabelSmoothing >= 0 && h.LabelSmoothing <= 1) {
		bad("label_smoothing", "label smoothing", h.LabelSmoothing, "in [0, 1]")
	}
	return errs
}

// Params are the hyper-parameters as MLflow run parameters (the optimiser by
// name).
func (h Hyper) Params() map[string]string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	opt := "Adam"
	if h.AdamW {
		opt = "AdamW"
	}
	return map[string]string{
		"lr": f(h.LR), "batch_size": strconv.Itoa(h.BatchSize), "epochs": strconv.Itoa(h.Epochs),
		"dropout": f(h.Dropout), "weight_decay": f(h.WeightDecay), "optimizer": opt,
		"patience": strconv.Itoa(h.Patience), "label_smoothing": f(h.LabelSmoothing),
	}
}
