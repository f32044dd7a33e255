// Command petbreed trains, tracks, serves and runs image classifiers for the
// Oxford-IIIT Pet breeds. This package only parses flags and wires the
// internal packages together.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"petbreed/internal/imaging"
)

// version is set at build time (-X main.version=...).
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks an error as the caller's mistake (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// failedError says the command already reported its failures (exit 1).
var errReported = errors.New("some inputs failed")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	started := false // set once flags and arguments were accepted
	root := newRootCmd(stdout, stderr, &started)
	root.SetArgs(args)
	err := root.Execute()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errReported):
		return exitFailure
	}
	fmt.Fprintf(stderr, "petbreed: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || !started {
		fmt.Fprintln(stderr, "Run 'petbreed --help' for usage.")
		return exitUsage
	}
	return exitFailure
}

func newRootCmd(stdout, stderr io.Writer, started *bool) *cobra.Command {
	root := &cobra.Command{
		Use:   "petbreed",
		Short: "Train, track, serve and run pet-breed image classifiers",
		Long: `petbreed trains, tracks, serves and runs image classifiers (first for the 37
Oxford-IIIT Pet breeds) with ONNX Runtime on the CPU, preprocessing images
exactly as torchvision does (Pillow's decoder and resampling), so a model
behaves here as it did where it was trained.

  pull, pipeline, train      data, features, experiments, selection, registry
  runs, models, sync         the MLflow store or server ($MLFLOW_TRACKING_URI); copy runs
  predict, classes, inspect  models by path or models:/pet-breed@champion
  serve                      REST, KServe V2, metrics, the web page
  ab report                  which served version is better (prediction log)
  preprocess, resize         what the model sees; Pillow's filters
  quantize                   int8 models from float ones, calibrated on images`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			*started = true
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newPredictCmd(),
		newPreprocessCmd(),
		newResizeCmd(),
		newClassesCmd(),
		newInspectCmd(),
		newPullCmd(),
		newPipelineCmd(),
		newFeaturesCmd(),
		newTrainCmd(),
		newRunsCmd(),
		newModelsCmd(),
		newSyncCmd(),
		newServeCmd(),
		newVersionCmd(),
		newHealthcheckCmd(),
		newQuantizeCmd(),
		newABCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of petbreed and of the ONNX Runtime it finds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "petbreed %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if lib, v, err := runtimeVersion(); err != nil {
				fmt.Fprintf(w, "onnxruntime: %v\n", err)
			} else {
				fmt.Fprintf(w, "onnxruntime %s (%s)\n", v, lib)
			}
			return nil
		},
	}
}

// decodeFlags are the image-decoding options of every command that reads images.
type decodeFlags struct {
	noEXIF    bool
	maxPixels int64
}

func (d *decodeFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&d.noEXIF, "no-exif", false, "keep the stored pixel order: do not apply the EXIF orientation")
	fs.Int64Var(&d.maxPixels, "max-pixels", imaging.DefaultMaxPixels, "refuse images with more pixels than this (decompression-bomb guard; -1: no limit)")
}

func (d *decodeFlags) options() imaging.DecodeOptions {
	return imaging.DecodeOptions{MaxPixels: d.maxPixels, IgnoreOrientation: d.noEXIF}
}

// decodeFile reads and decodes one image file.
func decodeFile(path string, opt imaging.DecodeOptions) (*imaging.RGB, imaging.Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, imaging.Info{}, err
	}
	img, info, err := imaging.Decode(data, opt)
	if err != nil {
		return nil, info, fmt.Errorf("%s: %w", path, err)
	}
	return img, info, nil
}
