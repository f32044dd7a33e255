package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"petbreed"
	"petbreed/internal/atomicfile"
	"petbreed/internal/classify"
	"petbreed/internal/imaging"
	"petbreed/internal/onnxrt"
	"petbreed/internal/shard"
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
	fs.IntVar(&m.threads, "threads", 0, "ONNX Runtime intra-op threads (0: one per core) [$PETBREED_THREADS for predict]")
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
	Pet         *petbreed.PetCheck    `json:"pet,omitempty"` // absent when the model cannot tell
	Model       string                `json:"model"`
	Ms          float64               `json:"ms"`
	Error       string                `json:"error,omitempty"`
}

func newPredictCmd() *cobra.Command {
	var (
		mf        modelFlags
		dec       decodeFlags
		sf        shardFlags
		topK      int
		mode      string
		batchSize int
		asJSON    bool
		outDir    string
		mergeDir  string
	)
	cmd := &cobra.Command{
		Use:   "predict [flags] PATH...",
		Short: "Classify images (files, or directories searched recursively)",
		Long: `predict classifies each image and prints its top-k labels with their
probabilities. A directory is searched recursively for image files (.jpg,
.jpeg, .png, .gif, .bmp, .webp; the format itself is read from the bytes),
following symbolic links to files and to directories; broken links and
links that loop back are skipped and named on stderr. Files are taken in
argument order, each directory's sorted by path. Images are decoded in
parallel and run through the model in batches.

A file that cannot be read or decoded is reported on stderr and the others
go on; the exit code is then 1.

The preprocessing is the model's own when its metadata carries one, else
torchvision's evaluation transform (--mode crop); --mode overrides it.

Batch jobs: --shard I/N classifies only shard I (0 to N-1) of the files, so
that N processes (an indexed Job: --shard-from-env N reads I from
$JOB_COMPLETION_INDEX) share the work. A file's shard depends only on its
path below the argument it was found under (for a file argument, its
name), so every machine agrees and adding files never moves another.
--output DIR writes DIR/predictions-0000I-of-0000N.jsonl (written whole or
not at all), and --merge DIR prints every shard's lines as one JSON Lines
stream sorted by file, once all N are there: for one directory argument,
the same answers in the same order as one unsharded run.`,
		Example: `  petbreed predict --model model.onnx cat.jpg
  petbreed predict --model mobilenetv2.onnx --labels imagenet_labels.txt --top-k 3 photos/
  petbreed predict --model model.onnx --json images/ > predictions.jsonl
  petbreed predict --model model.onnx --shard 3/8 --output out/ images/
  petbreed predict --merge out/ > predictions.jsonl`,
		Args: func(cmd *cobra.Command, args []string) error {
			if mergeDir != "" {
				if len(args) > 0 {
					return usagef("--merge takes no image arguments (got %d)", len(args))
				}
				return nil
			}
			return cobra.MinimumNArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if mergeDir != "" {
				if outDir != "" || sf.changed(cmd) {
					return usagef("--merge cannot be combined with --output or --shard")
				}
				return mergePredictions(cmd.OutOrStdout(), cmd.ErrOrStderr(), mergeDir)
			}
			spec, err := sf.spec(cmd)
			if err != nil {
				return err
			}
			if err := threadsFromEnv(cmd, &mf.threads); err != nil {
				return err
			}
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
			files, listErrs := listImages(cmd.ErrOrStderr(), args, spec)
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
			opt := classify.FilesOptions{TopK: topK, BatchSize: batchSize, Decode: dec.options()}
			// SIGINT or SIGTERM (a Job's pod stopped) ends the run cleanly:
			// no output file, not even a temporary one.
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			cmd.SetContext(ctx)
			if outDir == "" {
				return predict(cmd, cmd.OutOrStdout(), c, files, listErrs, opt, asJSON)
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return err
			}
			var perr error
			out := filepath.Join(outDir, spec.FileName(predictionsPrefix, ".jsonl"))
			err = atomicfile.Write(out, 0o644, func(w io.Writer) error {
				bw := bufio.NewWriter(w)
				perr = predict(cmd, bw, c, files, listErrs, opt, true)
				if perr != nil && perr != errReported {
					return perr
				}
				return bw.Flush()
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "petbreed: shard %s: %d images, wrote %s\n", spec, len(files), out)
			return perr
		},
	}
	fs := cmd.Flags()
	mf.register(fs)
	dec.register(fs)
	sf.register(fs)
	fs.IntVarP(&topK, "top-k", "k", 5, "number of labels to print per image")
	fs.StringVar(&mode, "mode", petbreed.ModeCrop, "preprocessing: crop (resize short side 256, centre crop 224) or squash (resize to 224x224)")
	fs.IntVar(&batchSize, "batch", 32, "images per model run")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object per image (JSON Lines)")
	fs.StringVar(&outDir, "output", "", "write JSON Lines to DIR/predictions-IIIII-of-NNNNN.jsonl instead of stdout")
	fs.StringVar(&mergeDir, "merge", "", "print the JSON Lines of every shard in DIR as one stream sorted by file, and exit")
	return cmd
}

// predictionsPrefix names the shard files of predict --output.
const predictionsPrefix = "predictions"

func predict(cmd *cobra.Command, stdout io.Writer, c *classify.Classifier, files []string, listErrs []error,
	opt classify.FilesOptions, asJSON bool) error {
	stderr := cmd.ErrOrStderr()
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
				Predictions: r.Predictions, Pet: r.Pet, Model: c.Name(), Ms: ms})
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
		if cmd.Context().Err() != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
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
	if r.Pet != nil && !r.Pet.IsPet {
		fmt.Fprintf(w, "  NOT A CAT OR A DOG? pet score %.3f, under the model's threshold %.3f; the breeds, if it were one:\n",
			r.Pet.Score, r.Pet.Threshold)
	}
	for i, p := range r.Predictions {
		fmt.Fprintf(w, "  %d. %-*s %6.2f%%\n", i+1, width, p.Label, 100*p.Probability)
	}
}

// listImages expands the arguments (classify.ListFiles), reports on stderr
// what it skipped, and keeps the files of shard spec.
func listImages(stderr io.Writer, args []string, spec shard.Spec) (files []string, errs []error) {
	l := classify.ListFiles(args, imaging.HasImageExt)
	for _, s := range l.Skipped {
		fmt.Fprintf(stderr, "petbreed: %v\n", s)
	}
	for _, in := range l.Inputs {
		if spec.Contains(in.Key) {
			files = append(files, in.Path)
		}
	}
	return files, l.Errors
}

// runtimeVersion finds and loads ONNX Runtime and reports its version.
func runtimeVersion() (lib, version string, err error) {
	lib, err = onnxrt.Load()
	if err != nil {
		return "", "", err
	}
	return lib, onnxrt.Version(), nil
}

// shardFlags choose a slice of the inputs: --shard I/N or --shard-from-env N.
type shardFlags struct {
	value   string
	fromEnv int
}

func (f *shardFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.value, "shard", "", "process only shard I of N (I/N, 0 <= I < N), by a hash of each input's relative path")
	fs.IntVar(&f.fromEnv, "shard-from-env", 0, "process shard $"+shard.EnvIndex+" of N (an indexed Job's pods)")
}

func (f *shardFlags) changed(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("shard") || cmd.Flags().Changed("shard-from-env")
}

// spec is the chosen shard, shard.All without the flags.
func (f *shardFlags) spec(cmd *cobra.Command) (shard.Spec, error) {
	fl := cmd.Flags()
	switch {
	case fl.Changed("shard") && fl.Changed("shard-from-env"):
		return shard.Spec{}, usagef("--shard and --shard-from-env are exclusive")
	case fl.Changed("shard"):
		s, err := shard.Parse(f.value)
		if err != nil {
			return shard.Spec{}, usageError{fmt.Errorf("--shard: %w", err)}
		}
		return s, nil
	case fl.Changed("shard-from-env"):
		s, err := shard.FromEnv(f.fromEnv, os.Getenv)
		if err != nil {
			return shard.Spec{}, usageError{fmt.Errorf("--shard-from-env: %w", err)}
		}
		return s, nil
	}
	return shard.All, nil
}

// mergePredictions prints the lines of every predictions-I-of-N.jsonl in
// dir sorted by file, after checking that all N shards are there and no
// file is in two. Like predict, it exits 1 when some image had failed.
func mergePredictions(stdout, stderr io.Writer, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	byIndex := map[int]string{}
	count := 0
	for _, e := range ents {
		s, ok := shard.ParseFileName(e.Name(), predictionsPrefix, ".jsonl")
		if !ok {
			continue
		}
		if count != 0 && s.Count != count {
			return fmt.Errorf("%s: shards of different runs (of %d and of %d)", dir, count, s.Count)
		}
		count = s.Count
		byIndex[s.Index] = filepath.Join(dir, e.Name())
	}
	if count == 0 {
		return fmt.Errorf("%s: no %s files", dir, shard.Spec{}.FileName(predictionsPrefix, ".jsonl"))
	}
	var missing []int
	for i := range count {
		if _, ok := byIndex[i]; !ok {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: %d of %d shards missing: %v", dir, len(missing), count, missing)
	}
	type line struct {
		file string
		raw  []byte
	}
	var lines []line
	seen := map[string]string{}
	failed := 0
	for i := range count {
		path := byIndex[i]
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 64<<20)
		n := 0
		for sc.Scan() {
			n++
			var r jsonResult
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.File == "" {
				f.Close()
				return fmt.Errorf("%s:%d: not a predict --json line", path, n)
			}
			if other, dup := seen[r.File]; dup {
				f.Close()
				return fmt.Errorf("%s is in %s and %s", r.File, other, path)
			}
			seen[r.File] = path
			if r.Error != "" {
				failed++
			}
			lines = append(lines, line{r.File, append([]byte(nil), sc.Bytes()...)})
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].file < lines[j].file })
	w := bufio.NewWriter(stdout)
	for _, l := range lines {
		w.Write(l.raw)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "petbreed: merged %d shards: %d images, %d failed\n", count, len(lines), failed)
	if failed > 0 {
		return errReported
	}
	return nil
}
