// Package pipeline runs the whole training, start to end: features from
// the frozen backbone (cached), every configured recipe as a tracked run,
// the selection of the best by validation, the one evaluation on the test
// split, the export of one self-contained ONNX model, and its registration
// as the new champion.
package pipeline

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"petbreed/internal/features"
	"petbreed/internal/train"
)

// Recipe is one training recipe, an item of the file's "experiments" list:
// a name, the head's hyper-parameters (train.Hyper, whose yaml keys are the
// file's and whose Validate is the one check of their bounds) and the data
// augmentation. Each recipe is trained as one MLflow run.
type Recipe struct {
	Name        string `yaml:"name"`
	train.Hyper `yaml:",inline"`
	Flip        bool `yaml:"flip,omitempty"` // add left-right mirrored views to the training set
	// Solver is "adam" (the default: train.Train with the Hyper fields) or
	// "lbfgs": the head solved exactly (train.FitLogReg) for each L2
	// strength of L2, the best by validation (or cross-validation) kept;
	// Hyper's fields are then not used.
	Solver string    `yaml:"solver,omitempty"`
	L2     []float64 `yaml:"l2,omitempty"` // lbfgs: the grid of L2 strengths λ
	// Views are the views of each training image trained on (features.Views
	// names; the default is orig, and flip with Flip). Validation and test
	// images are always seen in the original view.
	Views []features.View `yaml:"views,omitempty"`
	// Baseline recipes are trained and tracked for comparison but not
	// selected, unless every recipe is one.
	Baseline bool `yaml:"baseline,omitempty"`
}

// The solvers a recipe can name.
const (
	SolverAdam  = "adam"
	SolverLBFGS = "lbfgs"
)

// solver is the recipe's solver, "adam" when unset.
func (e Recipe) solver() string {
	if e.Solver == "" {
		return SolverAdam
	}
	return e.Solver
}

// trainViews are the views the recipe trains on.
func (e Recipe) trainViews() []features.View {
	switch {
	case len(e.Views) > 0:
		return e.Views
	case e.Flip:
		return []features.View{features.Original, features.Flipped}
	}
	return []features.View{features.Original}
}

// MaxL2Grid bounds a recipe's L2 grid (each λ is a solve per fold).
const MaxL2Grid = 64

// problems lists what is wrong with the recipe's solver-specific fields.
func (e Recipe) problems() []error {
	var errs []error
	switch e.solver() {
	case SolverAdam:
		for _, p := range e.Hyper.Problems() {
			errs = append(errs, p)
		}
		if len(e.L2) > 0 {
			errs = append(errs, errors.New("l2 is the lbfgs solver's grid: use weight_decay with adam"))
		}
	case SolverLBFGS:
		if len(e.L2) == 0 || len(e.L2) > MaxL2Grid {
			errs = append(errs, fmt.Errorf("l2: the lbfgs solver needs a grid of 1 to %d L2 strengths, has %d", MaxL2Grid, len(e.L2)))
		}
		for _, l := range e.L2 {
			if err := (train.LogReg{L2: l}).Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	default:
		errs = append(errs, fmt.Errorf("solver %q: want %s or %s", e.Solver, SolverAdam, SolverLBFGS))
	}
	seen := map[features.View]bool{}
	for _, v := range e.Views {
		if seen[v] {
			errs = append(errs, fmt.Errorf("views: %s twice", v))
		}
		seen[v] = true
	}
	if len(e.Views) > 0 && e.Flip {
		errs = append(errs, errors.New("flip and views: list flip among the views instead"))
	}
	return errs
}

// Config is the pipeline's configuration file (YAML). Its keys keep their
// names: "experiment" is the MLflow experiment, "experiments" the recipes.
type Config struct {
	MLflowExperiment string  `yaml:"experiment"`       // MLflow experiment name
	RegisteredModel  string  `yaml:"registered_model"` // registry name
	Alias            string  `yaml:"alias"`            // moved to the new version
	SelectMetric     string  `yaml:"select_metric"`    // val_acc (higher is better) or val_loss (lower)
	Seed             uint64  `yaml:"seed"`
	ValFraction      float64 `yaml:"val_fraction"`
	Refit            bool    `yaml:"refit"` // retrain the selected recipe on all of trainval before the test evaluation
	// CVBelow switches the selection to k-fold cross-validation over all of
	// trainval when the validation split would hold fewer than this many
	// images of some class (0: never); CVFolds is k.
	CVBelow int      `yaml:"cv_below"`
	CVFolds int      `yaml:"cv_folds"`
	Recipes []Recipe `yaml:"experiments"`
	// TTA names the test-time views averaged inside the exported model
	// (package features' views: flip, c192, c192f, tl192, ...); none by default.
	TTA []string `yaml:"tta,omitempty"`
	// Quantization is quantize: true and its keys (quantize.go).
	Quantization `yaml:",inline"`
}

// MaxCVFolds bounds cv_folds.
const MaxCVFolds = 50

//go:embed default.yaml
var defaultConfig []byte

// DefaultConfigYAML is the default configuration, as a file a user can edit
// (`petbreed pipeline --print-config > experiments.yaml`).
func DefaultConfigYAML() []byte { return append([]byte(nil), defaultConfig...) }

// DefaultConfig is the configuration used without --config.
func DefaultConfig() Config {
	c, err := ParseConfig(defaultConfig)
	if err != nil {
		panic("pipeline: default.yaml: " + err.Error())
	}
	return c
}

// defaultTop is default.yaml without its recipes: the values of the
// top-level keys a file leaves out. default.yaml is the one place they are
// written.
func defaultTop() Config {
	var c Config
	if err := yaml.Unmarshal(defaultConfig, &c); err != nil {
		panic("pipeline: default.yaml: " + err.Error())
	}
	c.Recipes = nil
	return c
}

// LoadConfig reads a YAML configuration file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses YAML; unknown keys are errors (a typo must not be
// silently ignored), missing ones take the defaults of DefaultConfig's
// top-level fields (default.yaml's), and a recipe's missing keys are zero.
func ParseConfig(b []byte) (Config, error) {
	c := defaultTop()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("empty configuration: want a YAML mapping with experiments")
		}
		return Config{}, err
	}
	// A second document would be ignored silently: refuse it.
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("want one YAML document, the file has more (a '---' line)")
	}
	return c, c.Validate()
}

var (
	nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]*$`)
	// aliasRe and aliasVersionRe are the registry's rules (MLflow's): an
	// alias is letters, digits, '_' and '-', and neither "latest" nor a
	// version ("v3").
	aliasRe        = regexp.MustCompile(`^[A-Za-z0-9_\-]{1,255}$`)
	aliasVersionRe = regexp.MustCompile(`^[vV][0-9]+$`)
)

// Validate checks the whole configuration and says what is wrong.
func (c Config) Validate() error {
	var errs []error
	if c.SelectMetric != "val_acc" && c.SelectMetric != "val_loss" {
		errs = append(errs, fmt.Errorf("select_metric %q: want val_acc or val_loss", c.SelectMetric))
	}
	if !(c.ValFraction > 0 && c.ValFraction < 1) {
		errs = append(errs, fmt.Errorf("val_fraction %v: want a fraction between 0 and 1", c.ValFraction))
	}
	if c.MLflowExperiment == "" || c.RegisteredModel == "" || !nameRe.MatchString(c.RegisteredModel) {
		errs = append(errs, fmt.Errorf("experiment %q and registered_model %q must be non-empty names", c.MLflowExperiment, c.RegisteredModel))
	}
	if !aliasRe.MatchString(c.Alias) || strings.EqualFold(c.Alias, "latest") || aliasVersionRe.MatchString(c.Alias) {
		errs = append(errs, fmt.Errorf("alias %q: want letters, digits, '_' and '-', not \"latest\" nor a version like \"v2\"", c.Alias))
	}
	if c.CVBelow < 0 {
		errs = append(errs, fmt.Errorf("cv_below %d: want a number of images a class (0: never cross-validate)", c.CVBelow))
	}
	if c.CVFolds < 2 || c.CVFolds > MaxCVFolds {
		errs = append(errs, fmt.Errorf("cv_folds %d: want 2 to %d", c.CVFolds, MaxCVFolds))
	}
	if err := checkTTA(c.TTA); err != nil {
		errs = append(errs, err)
	}
	if c.Quantize {
		errs = append(errs, c.Quantization.problems()...)
	}
	if len(c.Recipes) == 0 {
		errs = append(errs, errors.New("no experiments"))
	}
	seen := map[string]bool{}
	for i, e := range c.Recipes {
		where := fmt.Sprintf("experiments[%d] (%s)", i, e.Name)
		if !nameRe.MatchString(e.Name) {
			errs = append(errs, fmt.Errorf("%s: name must be letters, digits, '_', '.', '-'", where))
		}
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate name", where))
		}
		seen[e.Name] = true
		for _, p := range e.problems() {
			errs = append(errs, fmt.Errorf("%s: %w", where, p))
		}
	}
	return errors.Join(errs...)
}

// TrainViews are the views of trainval images the configuration's recipes
// train on (Original first): what Run computes for trainval, and what
// `petbreed features` should compute to fill the cache for it.
func (c Config) TrainViews() []features.View { return viewsOf(c.Recipes) }
