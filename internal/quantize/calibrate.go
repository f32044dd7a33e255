package quantize

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"

	"petbreed"
	"petbreed/internal/imaging"
	"petbreed/internal/onnxrt"
)

// calibration is what a calibration pass measured.
type calibration struct {
	stats  map[string]*Stats
	sha256 []string // of each image file, in the order read
	first  []float32
	shape  []int64
}

// calibrate runs the float model on the images (through pre, batchSize at a
// time) with the named activations as extra outputs, and accumulates them.
func calibrate(ctx context.Context, model []byte, tensors []string, inputs map[string]bool,
	images []string, pre petbreed.Preprocess, opt Options) (*calibration, error) {
	var extra []string
	for _, t := range tensors {
		if !inputs[t] {
			extra = append(extra, t)
		}
	}
	sess, err := onnxrt.OpenData("calibration model", model, onnxrt.Options{ExtraOutputs: extra, IntraOpThreads: opt.Threads})
	if err != nil {
		return nil, fmt.Errorf("quantize: load the float model: %w", err)
	}
	defer sess.Close()
	ins := sess.Inputs()
	if len(ins) != 1 {
		return nil, fmt.Errorf("quantize: the model has %d inputs; calibration feeds one image tensor", len(ins))
	}
	own := len(sess.Outputs()) - len(extra)
	c := &calibration{stats: map[string]*Stats{}}
	for _, t := range tensors {
		c.stats[t] = newStats(opt.Method)
	}
	norm := imaging.NewNormalizer(pre.Mean, pre.Std)
	per := 3 * pre.Size * pre.Size
	batch := max(1, opt.BatchSize)
	buf := make([]float32, batch*per)
	for start := 0; start < len(images); start += batch {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("quantize: calibration: %w", err)
		}
		n := min(batch, len(images)-start)
		for i, path := range images[start : start+n] {
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("quantize: calibration image: %w", err)
			}
			sum := sha256.Sum256(data)
			c.sha256 = append(c.sha256, hex.EncodeToString(sum[:]))
			img, _, err := imaging.DecodeContext(ctx, data, opt.Decode)
			if err != nil {
				return nil, fmt.Errorf("quantize: calibration image %s: %w", path, err)
			}
			seen, err := imaging.Apply(img, pre)
			if err != nil {
				return nil, fmt.Errorf("quantize: calibration image %s: %w", path, err)
			}
			if err := norm.Normalize(seen, buf[i*per:(i+1)*per]); err != nil {
				return nil, fmt.Errorf("quantize: calibration image %s: %w", path, err)
			}
		}
		shape := []int64{int64(n), 3, int64(pre.Size), int64(pre.Size)}
		x := buf[:n*per]
		if c.first == nil {
			c.first, c.shape = slices.Clone(x), shape
		}
		outs, err := sess.Run(x, shape)
		if err != nil {
			return nil, fmt.Errorf("quantize: calibration run: %w", err)
		}
		for _, t := range tensors {
			v := x
			if !inputs[t] {
				o := outs[own+slices.Index(extra, t)]
				if o.Type != "float32" {
					return nil, fmt.Errorf("quantize: the activation %q is %s, not float32", t, o.Type)
				}
				v = o.Float32
			}
			if err := c.stats[t].Add(v); err != nil {
				return nil, fmt.Errorf("quantize: the activation %q has a %v on the calibration images", t, err)
			}
		}
	}
	return c, nil
}

// Digest is the calibration set's fingerprint: the sha256 of its images'
// sha256 (hex), sorted, one a line.
func Digest(sums []string) string {
	s := slices.Sorted(slices.Values(sums))
	d := sha256.Sum256([]byte(strings.Join(s, "\n") + "\n"))
	return hex.EncodeToString(d[:])
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Spread picks n of the paths, evenly spaced through them in sorted order
// (all of them when there are no more than n): a calibration set that
// covers every class of a dataset listed class by class, the same on every
// run.
func Spread(paths []string, n int) []string {
	s := slices.Sorted(slices.Values(paths))
	if n <= 0 || n >= len(s) {
		return s
	}
	out := make([]string, n)
	for i := range out {
		out[i] = s[i*len(s)/n]
	}
	return out
}
