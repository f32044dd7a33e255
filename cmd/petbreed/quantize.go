package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"petbreed/internal/atomicfile"
	"petbreed/internal/dataset"
	"petbreed/internal/quantize"
	"petbreed/internal/shard"
)

func newQuantizeCmd() *cobra.Command {
	var (
		calDir, data string
		images       int
		method       string
		perChannel   bool
		fullRange    bool
		percentile   float64
		batch        int
		df           decodeFlags
	)
	cmd := &cobra.Command{
		Use:   "quantize IN.onnx OUT.onnx (--calibration DIR | --data DATASET)",
		Short: "Make a static int8 (QDQ) model from a float one, calibrated on images",
		Long: `quantize writes an int8 version of a float32 ONNX model in the QDQ form, which
ONNX Runtime runs with its int8 kernels: int8 weights (per output channel by
default), int32 biases, uint8 activations whose ranges are calibrated by running
the float model on images through the model's own preprocessing. The images
are --images of the files under --calibration, or of the training split of
--data (never its test split), evenly spaced in path order.

Weights of the convolutions run as matrix products are kept to ±64 (7 bits) by
default: on x86 CPUs without AVX-512 VNNI, ONNX Runtime's uint8 × int8 kernels
add pairs of products in 16 bits and would saturate at full range
(--full-range to keep ±127, for VNNI or ARM machines). The model's metadata is
kept, and petbreed.quantization records the method, the image count and the
digest of the images' sha256. IN may be a models:/ or runs:/ URI; OUT is written
to a temporary file and renamed.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (calDir == "") == (data == "") {
				return usagef("give one of --calibration DIR and --data DATASET")
			}
			m, err := quantize.ParseMethod(method)
			if err != nil {
				return usageError{err}
			}
			if images < 1 || images > quantize.MaxImages {
				return usagef("--images %d is not in [1, %d]", images, quantize.MaxImages)
			}
			if batch < 1 || batch > quantize.MaxBatch {
				return usagef("--batch %d is not in [1, %d]", batch, quantize.MaxBatch)
			}
			if !(percentile > 50 && percentile <= 100) {
				return usagef("--percentile %v is not in (50, 100]", percentile)
			}
			in, err := resolveModel(args[0])
			if err != nil {
				return err
			}
			model, err := os.ReadFile(in)
			if err != nil {
				return err
			}
			var paths []string
			if data != "" {
				ds, err := dataset.Load(data)
				if err != nil {
					return err
				}
				for _, s := range ds.TrainVal {
					paths = append(paths, s.Path)
				}
			} else {
				files, errs := listImages(cmd.ErrOrStderr(), []string{calDir}, shard.All)
				if len(errs) > 0 {
					return errs[0]
				}
				paths = files
			}
			if len(paths) == 0 {
				return fmt.Errorf("no calibration images in %s%s", calDir, data)
			}
			paths = quantize.Spread(paths, images)
			opt := quantize.Options{Method: m, Percentile: percentile, PerTensor: !perChannel, FullRange: fullRange,
				BatchSize: batch, Decode: df.options()}
			out, rep, err := quantize.Quantize(cmd.Context(), model, paths, opt)
			if err != nil {
				return fmt.Errorf("%s: %w", in, err)
			}
			if err := atomicfile.WriteFile(args[1], out, 0o644); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "quantized %d nodes (%d activations, %d Clip/Relu folded; float: %v), %s %s, %s on %d images\n",
				rep.Nodes, rep.Activations, rep.Folded, rep.Float, rep.Weights, rep.Granularity, rep.Method, rep.Images)
			fmt.Fprintf(w, "%s: %d bytes -> %s: %d bytes (%.0f%%)\n", in, len(model), args[1], len(out), 100*float64(len(out))/float64(len(model)))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&calDir, "calibration", "", "a directory of calibration images (searched recursively)")
	f.StringVar(&data, "data", "", "a dataset (Oxford-IIIT Pet layout or a folder per class): calibrate on its training split")
	f.IntVar(&images, "images", quantize.DefaultImages, "how many calibration images to use")
	f.StringVar(&method, "method", string(quantize.MinMax), "activation range calibration: minmax, percentile or entropy")
	f.Float64Var(&percentile, "percentile", quantize.DefaultPercentile, "for --method percentile: the percentile of |x| kept")
	f.BoolVar(&perChannel, "per-channel", true, "one weight scale per output channel (false: one per tensor, keeping the model's opset)")
	f.BoolVar(&fullRange, "full-range", false, "int8 weights to ±127 (for CPUs with VNNI); default ±64, which cannot saturate ONNX Runtime's AVX2 kernels")
	f.IntVar(&batch, "batch", quantize.DefaultBatch, "calibration batch size (each image's activations are held in memory)")
	df.register(f)
	return cmd
}
