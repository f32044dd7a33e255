package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/pipeline"
)

// featuresSummary is what `petbreed features --json` prints.
type featuresSummary struct {
	Dataset  string   `json:"dataset"`
	Shard    string   `json:"shard"`
	Samples  int      `json:"dataset_images"` // in the whole dataset
	Images   int      `json:"images"`         // in this shard
	Views    []string `json:"views"`
	Cached   int      `json:"cached"`   // feature vectors already in the cache
	Computed int      `json:"computed"` // feature vectors the backbone computed
	Skipped  []string `json:"skipped_images,omitempty"`
	Cache    string   `json:"cache"`
	Seconds  float64  `json:"seconds"`
}

func newFeaturesCmd() *cobra.Command {
	var (
		data, backbone, cacheDir, configPath string
		threads                              int
		sf                                   shardFlags
		asJSON                               bool
	)
	cmd := &cobra.Command{
		Use:   "features --data DIR --backbone FILE [--shard I/N]",
		Short: "Compute the backbone's features of a dataset (or one shard of it) into the feature cache",
		Long: `features runs the frozen backbone over the dataset's images (trainval and
test) in every view the experiments need (the original, and the mirrored one
when an experiment of --config, by default the built-in configuration, uses
flip) and stores the features in the cache, where pipeline and train find
them: after every shard has run, a pipeline with the same backbone computes
none.

--shard I/N computes only shard I of N (--shard-from-env N reads I from
$JOB_COMPLETION_INDEX), by a hash of each image's path below --data, so N
processes on N machines share one cache folder (each writes its own cache
files, whole or not at all) and split the work between them.`,
		Example: `  petbreed features --data pets --backbone mobilenetv2-12.onnx
  petbreed features --data pets --backbone mobilenetv2-12.onnx --shard 0/4 --cache /shared/cache`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" || backbone == "" {
				return usagef("--data and --backbone are required")
			}
			spec, err := sf.spec(cmd)
			if err != nil {
				return err
			}
			if err := threadsFromEnv(cmd, &threads); err != nil {
				return err
			}
			cfg := pipeline.DefaultConfig()
			if configPath != "" {
				if cfg, err = pipeline.LoadConfig(configPath); err != nil {
					return usageError{err}
				}
			}
			views := cfg.TrainViews() // as pipeline decides which views it needs
			ds, err := dataset.Load(data)
			if err != nil {
				return err
			}
			all := append(append([]dataset.Sample{}, ds.TrainVal...), ds.Test...)
			var samples []dataset.Sample
			for _, s := range all {
				key, err := filepath.Rel(data, s.Path)
				if err != nil {
					key = s.Path
				}
				if spec.Contains(key) {
					samples = append(samples, s)
				}
			}
			ext, err := features.NewExtractor(backbone, threads)
			if err != nil {
				return err
			}
			defer ext.Close()
			if cacheDir == "" {
				cacheDir = features.DefaultDir()
			}
			cache, err := features.OpenCache(cacheDir, ext)
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			res, err := features.Compute(ctx, ext, cache, samples, features.Options{Views: views})
			if err != nil {
				return err
			}
			sum := featuresSummary{
				Dataset: data, Shard: spec.String(), Samples: len(all), Images: len(samples),
				Cached: res.Stats.Cached, Computed: res.Stats.Computed, Cache: cache.Dir(),
				Seconds: res.Stats.Elapsed.Seconds(),
			}
			for _, v := range views {
				sum.Views = append(sum.Views, string(v))
			}
			stderr := cmd.ErrOrStderr()
			for _, e := range res.Skipped {
				sum.Skipped = append(sum.Skipped, e.Error())
				fmt.Fprintf(stderr, "petbreed: skipped %v\n", e)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.Encode(sum)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "features: shard %s: %d of %d images, %d cached, %d computed (%.0f images/s); cache %s\n",
					sum.Shard, sum.Images, sum.Samples, sum.Cached, sum.Computed, res.Stats.PerSecond(), sum.Cache)
			}
			if len(res.Skipped) > 0 {
				return errReported
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&data, "data", "", "dataset: the Oxford-IIIT Pet layout (images/, annotations/) or a folder per class (required)")
	fs.StringVar(&backbone, "backbone", "", "frozen backbone ONNX file, e.g. mobilenetv2-12.onnx (required)")
	fs.StringVar(&cacheDir, "cache", "", "feature cache folder (default $PETBREED_CACHE, else the user cache dir)")
	fs.StringVar(&configPath, "config", "", "experiments configuration whose views to compute (default: the built-in one)")
	fs.IntVar(&threads, "threads", 0, "ONNX Runtime intra-op threads (0: one per core) [$PETBREED_THREADS]")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	sf.register(fs)
	return cmd
}

// threadsFromEnv sets *threads from $PETBREED_THREADS unless --threads was
// given (a Job sets it from its CPU limit), and checks it.
func threadsFromEnv(cmd *cobra.Command, threads *int) error {
	if v := os.Getenv("PETBREED_THREADS"); v != "" && !cmd.Flags().Changed("threads") {
		n, err := strconv.Atoi(v)
		if err != nil {
			return usagef("$PETBREED_THREADS=%q is not a number", v)
		}
		*threads = n
	}
	if *threads < 0 {
		return usagef("--threads must be 0 (one per core) or more (got %d)", *threads)
	}
	return nil
}
