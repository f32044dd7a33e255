package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"petbreed"
	"petbreed/internal/classify"
	"petbreed/internal/imaging"
	"petbreed/internal/onnxrt"
)

// modelFlags choose a model and its labels.
type modelFlags struct {
	model   string
	labels  string
	threads int
}

func (m *modelFlags) register(fs *pflag.FlagSet) {
	def := os.Getenv("PETBREED_MODEL")
	if def == "" {
		def = defaultModelURI
	}
	fs.StringVar(&m.model, "model", def, "ONNX model file, or models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/PATH from $MLFLOW_TRACKING_URI (default $PETBREED_MODEL, else "+defaultModelURI+")")
	fs.StringVar(&m.labels, "labels", "", "class names: one a line, or JSON {\"classes\": [...]} (default: the model's own)")
	fs.IntVar(&m.threads, "threads", 0, "ONNX Runtime intra-op threads (0: one per core)")
}

// open loads the classifier.
func (m *modelFlags) open() (*classify.Classifier, error) {
	if m.model == "" {
		return nil, usagef("no model: pass --model FILE (or set PETBREED_MODEL)")
	}
	path, err := resolveModel(m.model)
	if err != nil {
		return nil, err
	}
	opts := classify.Options{Threads: m.threads, Name: m.model}
	if m.labels != "" {
		labels, err := classify.LoadLabels(m.labels)
		if err != nil {
			return nil, err
		}
		opts.Labels = labels
	}
	return classify.Open(path, opts)
}

// jsonResult is one line of `predict --json`.
type jsonResult struct {
	File        string                `json:"file"`
	Format      string                `json:"format,omitempty"`
	Width       int                   `json:"width,omitempty"`
	Height      int                   `json:"height,omitempty"`
	Predictions []petbreed.Prediction `json:"predictions,omitempty"`
	Model       string                `json:"model"`
	Ms          float64               `json:"ms"`
	Error       string                `json:"error,omitempty"`
}

func newPredictCmd() *cobra.Command {
	var (
		mf        modelFlags
		dec       decodeFlags
		topK      int
		mode      string
		batchSize int
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "predict [flags] PATH...",
		Short: "Classify images (files, or directories searched recursively)",
		Long: `predict classifies each image and prints its top-k labels with their
probabilities. A directory is searched recursively for image files (.jpg,
.jpeg, .png, .gif, .bmp, .webp; the format itself is read from the bytes).
Images are decoded in parallel and run through the model in batches.

A file that cannot be read or decoded is reported on stderr and the others
go on; the exit code is then 1.

The preprocessing is the model's own when its metadata carries one, else
torchvision's evaluation transform (--mode crop); --mode overrides it.`,
		Example: `  petbreed predict --model model.onnx cat.jpg
  petbreed predict --model mobilenetv2.onnx --labels imagenet_labels.txt --top-k 3 photos/
  petbreed predict --model model.onnx --json images/ > predictions.jsonl`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if topK < 1 {
				return usagef("--top-k must be at least 1 (got %d)", topK)
			}
			if batchSize < 1 || batchSize > 1024 {
				return usagef("--batch must be between 1 and 1024 (got %d)", batchSize)
			}
			if cmd.Flags().Changed("mode") {
				if mode != petbreed.ModeCrop && mode != petbreed.ModeSquash {
					return usagef("--mode must be crop or squash (got %q)", mode)
				}
			}
			files, listErrs := listImages(args)
			c, err := mf.open()
			if err != nil {
				return err
			}
			defer c.Close()
			if cmd.Flags().Changed("mode") && mode != c.Preprocess().Mode {
				// --mode overrides the model's own transform.
				p := c.Preprocess()
				p.Mode = mode
				if mode == petbreed.ModeCrop && p.Resize < p.Size {
					p.Resize = p.Size * 256 / 224
				}
				if err := c.SetPreprocess(p); err != nil {
					return err
				}
			}
			return predict(cmd, c, files, listErrs, classify.FilesOptions{
				TopK: topK, BatchSize: batchSize, Decode: dec.options(),
			}, asJSON)
		},
	}
	fs := cmd.Flags()
	mf.register(fs)
	dec.register(fs)
	fs.IntVarP(&topK, "top-k", "k", 5, "number of labels to print per image")
	fs.StringVar(&mode, "mode", petbreed.ModeCrop, "preprocessing: crop (resize short side 256, centre crop 224) or squash (resize to 224x224)")
	fs.IntVar(&batchSize, "batch", 32, "images per model run")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per image (JSON Lines)")
	return cmd
}

func predict(cmd *cobra.Command, c *classify.Classifier, files []string, listErrs []error,
	opt classify.FilesOptions, asJSON bool) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	failed := len(listErrs) > 0
	for _, err := range listErrs {
		fmt.Fprintf(stderr, "petbreed: %v\n", err)
	}
	var bar *progressbar.ProgressBar
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && len(files) > 1 {
		bar = progressbar.NewOptions(len(files),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("classifying"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("img"),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100_000_000),
		)
	}
	enc := json.NewEncoder(stdout)
	err := c.ClassifyFiles(cmd.Context(), files, opt, func(r classify.Result) {
		if bar != nil {
			bar.Clear()
		}
		ms := float64(r.Elapsed.Microseconds()) / 1000
		if r.Err != nil {
			failed = true
			fmt.Fprintf(stderr, "petbreed: %s: %v\n", r.Path, r.Err)
			if asJSON {
				enc.Encode(jsonResult{File: r.Path, Model: c.Name(), Ms: ms, Error: r.Err.Error()})
			}
		} else if asJSON {
			enc.Encode(jsonResult{File: r.Path, Format: r.Info.Format, Width: r.Width, Height: r.Height,
				Predictions: r.Predictions, Model: c.Name(), Ms: ms})
		} else {
			printText(stdout, r, ms)
		}
		if bar != nil {
			bar.Add(1)
		}
	})
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	if failed {
		return errReported
	}
	return nil
}

func printText(w io.Writer, r classify.Result, ms float64) {
	fmt.Fprintf(w, "%s (%s %dx%d, %.1f ms)\n", r.Path, r.Info.Format, r.Width, r.Height, ms)
	width := 0
	for _, p := range r.Predictions {
		width = max(width, len(p.Label))
	}
	width = min(width, 32)
	for i, p := range r.Predictions {
		fmt.Fprintf(w, "  %d. %-*s %6.2f%%\n", i+1, width, p.Label, 100*p.Probability)
	}
}

// listImages expands the arguments: files as given, directories searched
// recursively for image files (sorted), hidden entries skipped.
func listImages(args []string) (files []string, errs []error) {
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if p != a && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && imaging.HasImageExt(p) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
		sort.Strings(found)
		if len(found) == 0 {
			errs = append(errs, fmt.Errorf("%s: no image files found", a))
		}
		files = append(files, found...)
	}
	return files, errs
}

// runtimeVersion finds and loads ONNX Runtime and reports its version.
func runtimeVersion() (lib, version string, err error) {
	lib, err = onnxrt.Load()
	if err != nil {
		return "", "", err
	}
	return lib, onnxrt.Version(), nil
}
