package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"petbreed/internal/pipeline"
	"petbreed/internal/tracking/backend"
	"petbreed/internal/train"
)

// trainFlags are the flags pipeline and train share.
type trainFlags struct {
	data, backbone, tracking, cache string
	threads                         int
	asJSON, quiet                   bool
}

func (f *trainFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.data, "data", "", "dataset: the Oxford-IIIT Pet layout (images/, annotations/) or a folder per class (required)")
	fs.StringVar(&f.backbone, "backbone", "", "frozen backbone ONNX file, e.g. mobilenetv2-12.onnx (required)")
	fs.StringVar(&f.tracking, "tracking", "", "MLflow tracking URI or folder (default $MLFLOW_TRACKING_URI, else ./mlruns)")
	fs.StringVar(&f.cache, "cache", "", "feature cache folder (default $PETBREED_CACHE, else the user cache dir)")
	fs.IntVar(&f.threads, "threads", 0, "ONNX Runtime intra-op threads (0: one per core)")
	fs.BoolVar(&f.asJSON, "json", false, "print the summary as JSON")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress on stderr")
}

func (f *trainFlags) options(cmd *cobra.Command) (pipeline.Options, error) {
	if f.data == "" || f.backbone == "" {
		return pipeline.Options{}, usagef("--data and --backbone are required")
	}
	opt := pipeline.Options{Data: f.data, Backbone: f.backbone, Tracking: trackingURI(f.tracking), CacheDir: f.cache, Threads: f.threads}
	if backend.IsRemote(opt.Tracking) {
		// A tracking server is checked before the features are computed.
		store, err := backend.Open(opt.Tracking)
		if err == nil {
			err = backend.Check(store)
		}
		if err != nil {
			return pipeline.Options{}, err
		}
		opt.Store = store
	}
	if !f.quiet {
		opt.Log = cmd.ErrOrStderr()
		if file, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(file.Fd())) {
			var bar *progressbar.ProgressBar
			opt.Progress = func(done, total int) {
				if bar == nil {
					bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(file),
						progressbar.OptionSetDescription("features"), progressbar.OptionShowCount(),
						progressbar.OptionShowIts(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100_000_000))
				}
				bar.Set(done)
				if done == total {
					bar.Finish()
				}
			}
		}
	}
	return opt, nil
}

// trackingURI is the flag's value, else $MLFLOW_TRACKING_URI, else "".
func trackingURI(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("MLFLOW_TRACKING_URI")
}

// interruptible returns a context cancelled by SIGINT or SIGTERM, so that
// runs in progress end as KILLED rather than staying RUNNING.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func newPipelineCmd() *cobra.Command {
	var (
		f           trainFlags
		configPath  string
		printConfig bool
	)
	cmd := &cobra.Command{
		Use:   "pipeline --data DIR --backbone FILE [--config FILE]",
		Short: "Run the whole training: features, experiments, selection, test evaluation, registration",
		Long: `pipeline computes the backbone's features once per image (cached on disk),
trains every experiment of the configuration as an MLflow run, selects the
best by validation (select_metric), optionally refits it on all of trainval,
evaluates it once on the official test split, exports backbone + head +
softmax as one ONNX file with its labels and preprocessing, and registers it
as a new version of the registered model with the alias champion.

Runs go to $MLFLOW_TRACKING_URI (or --tracking), in MLflow's file-store layout.
The default configuration: petbreed pipeline --print-config.`,
		Example: `  petbreed pipeline --data ../shared/assets/pets-3breeds --backbone mobilenetv2-12-int8.onnx
  petbreed pipeline --print-config > experiments.yaml
  petbreed pipeline --data pets --backbone mobilenetv2-12.onnx --config experiments.yaml --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printConfig {
				_, err := cmd.OutOrStdout().Write(pipeline.DefaultConfigYAML())
				return err
			}
			opt, err := f.options(cmd)
			if err != nil {
				return err
			}
			opt.Config = pipeline.DefaultConfig()
			if configPath != "" {
				if opt.Config, err = pipeline.LoadConfig(configPath); err != nil {
					return usageError{err}
				}
			}
			return runPipeline(cmd, opt, f.asJSON)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&configPath, "config", "", "experiments configuration (YAML); default: the built-in one")
	cmd.Flags().BoolVar(&printConfig, "print-config", false, "print the default configuration and exit")
	return cmd
}

func newTrainCmd() *cobra.Command {
	var (
		f        trainFlags
		e        = pipeline.Recipe{Hyper: train.DefaultHyper()}
		register bool
		seed     uint64
	)
	cmd := &cobra.Command{
		Use:   "train --data DIR --backbone FILE [flags]",
		Short: "Train one experiment as a tracked run (register it with --register)",
		Example: `  petbreed train --data pets --backbone mobilenetv2-12.onnx --lr 0.001 --batch-size 32 --epochs 10
  petbreed train --data pets --backbone b.onnx --name long --epochs 100 --patience 10 --flip --register`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opt, err := f.options(cmd)
			if err != nil {
				return err
			}
			if err := hyperFlagsError(e.Hyper); err != nil {
				return usageError{err}
			}
			cfg := pipeline.DefaultConfig()
			cfg.Recipes = []pipeline.Recipe{e}
			cfg.Refit, cfg.Seed = false, seed
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			opt.Config, opt.NoRegister = cfg, !register
			return runPipeline(cmd, opt, f.asJSON)
		},
	}
	f.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&e.Name, "name", "train", "run name")
	registerHyper(fs, &e.Hyper)
	fs.BoolVar(&e.Flip, "flip", false, "add left-right mirrored images as training views")
	fs.Uint64Var(&seed, "seed", 42, "seed of the split, initialisation, shuffling and dropout")
	fs.BoolVar(&register, "register", false, "evaluate on the test split and register the model as the champion")
	return cmd
}

// registerHyper adds a flag for each field of train.Hyper, named after its
// yaml key with '-' for '_', its default h's value (train.DefaultHyper).
func registerHyper(fs *pflag.FlagSet, h *train.Hyper) {
	fs.Float64Var(&h.LR, "lr", h.LR, "learning rate")
	fs.IntVar(&h.BatchSize, "batch-size", h.BatchSize, "mini-batch size")
	fs.IntVar(&h.Epochs, "epochs", h.Epochs, "epochs (the maximum with --patience)")
	fs.Float64Var(&h.Dropout, "dropout", h.Dropout, "dropout before the linear layer")
	fs.Float64Var(&h.WeightDecay, "weight-decay", h.WeightDecay, "weight decay")
	fs.BoolVar(&h.AdamW, "adamw", h.AdamW, "decoupled weight decay (AdamW) instead of L2 in Adam")
	fs.IntVar(&h.Patience, "patience", h.Patience, "early stopping: epochs without a better validation loss (0: off)")
	fs.Float64Var(&h.LabelSmoothing, "label-smoothing", h.LabelSmoothing, "label smoothing, in [0, 1]")
}

// hyperFlagsError is train.Hyper's validation in the flags' names.
func hyperFlagsError(h train.Hyper) error {
	var errs []error
	for _, p := range h.Problems() {
		errs = append(errs, fmt.Errorf("--%s %v: %s must be %s", strings.ReplaceAll(p.Key, "_", "-"), p.Value, p.Words, p.Want))
	}
	return errors.Join(errs...)
}

// runPipeline runs until done or interrupted and prints what was done,
// also when it failed part way.
func runPipeline(cmd *cobra.Command, opt pipeline.Options, asJSON bool) error {
	ctx, stop := interruptible(cmd.Context())
	defer stop()
	sum, err := pipeline.Run(ctx, opt)
	if sum != nil {
		printSummary(cmd.OutOrStdout(), sum, asJSON)
	}
	return err
}

func printSummary(w io.Writer, s *pipeline.Summary, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EXPERIMENT\tLR\tBATCH\tEPOCHS\tVAL ACC\tVAL LOSS\tTIME\tSTATUS\tRUN")
	for _, r := range s.Runs {
		e := r.Recipe
		epochs := fmt.Sprint(r.EpochsRun)
		if e.Patience > 0 {
			epochs = fmt.Sprintf("%d (best %d)", r.EpochsRun, r.BestEpoch)
		}
		val, loss := fmt.Sprintf("%.2f%%", 100*r.ValAcc), fmt.Sprintf("%.4f", r.ValLoss)
		if r.Status != "FINISHED" || r.ValLoss == 0 && r.ValAcc == 0 {
			val, loss = "-", "-"
		}
		mark := ""
		if r.RunID == s.SelectedRunID {
			mark = " *"
		}
		fmt.Fprintf(tw, "%s%s\t%g\t%d\t%s\t%s\t%s\t%.2fs\t%s\t%s\n", r.Name, mark, e.LR, e.BatchSize, epochs, val, loss,
			r.Duration.Seconds(), r.Status, r.RunID)
	}
	tw.Flush()
	if s.Selected != "" {
		fmt.Fprintf(w, "\nselected (by validation): %s\n", s.Selected)
	}
	if s.ModelVersion > 0 {
		fmt.Fprintf(w, "test accuracy: %.2f%% on %d test images (run %s)\n", 100*s.TestAcc, s.Test, s.ChampionRunID)
		fmt.Fprintf(w, "registered: %s (models:/%s@%s)\n", s.ModelURI, s.ModelName, s.ModelAlias)
		fmt.Fprintf(w, "model file: %s\n", s.ModelPath)
	}
	fmt.Fprintf(w, "features: %d images, %d cached, %d computed (%.0f images/s); total %.2fs\n",
		s.Features.Images, s.Features.Cached, s.Features.Computed, s.Features.PerSecond(), s.Elapsed.Seconds())
}
