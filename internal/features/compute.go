package features

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"petbreed/internal/dataset"
	"petbreed/internal/engine"
	"petbreed/internal/imaging"
)

// Options configure Compute.
type Options struct {
	Views     []View                // default: Original
	BatchSize int                   // images per backbone run (default 32)
	Workers   int                   // parallel decoders (default: one per core)
	Decode    imaging.DecodeOptions // pixel limit, EXIF orientation
	// Progress, when set, is called after each image with the number done.
	Progress func(done, total int)
}

// Result holds the features of a list of samples.
type Result struct {
	Dim int
	// X holds, per view, len(samples) rows of Dim features, row i for
	// samples[i] (zeros where OK[i] is false).
	X  map[View][]float32
	OK []bool
	// Skipped lists the images that could not be read or decoded.
	Skipped []error
	Stats   Stats
}

// Stats say how much work Compute did.
type Stats struct {
	Images   int           // samples processed
	Cached   int           // feature vectors found in the cache
	Computed int           // feature vectors the backbone computed
	Elapsed  time.Duration //
}

// PerSecond is the rate of images through the pipeline.
func (s Stats) PerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Images) / s.Elapsed.Seconds()
}

// job is one view of one sample, waiting for the backbone.
type job struct {
	idx  int
	view View
	key  Key
}

// flushEvery is how many new feature vectors may wait in memory before they
// are written to the cache (what a crash can lose).
const flushEvery = 256

// Compute returns the features of every sample in every view, from the cache
// when it has them, else by running the backbone. Reading, hashing, decoding
// and preprocessing run on Workers goroutines while the backbone runs the
// previous batch (package engine). An image that cannot be decoded is
// skipped and reported in Result.Skipped. The cache is flushed as work
// completes and on return, also when ctx is cancelled, so that a rerun
// resumes where this one stopped.
func Compute(ctx context.Context, e *Extractor, c *Cache, samples []dataset.Sample, opt Options) (*Result, error) {
	start := time.Now()
	if len(opt.Views) == 0 {
		opt.Views = []View{Original}
	}
	for _, v := range opt.Views {
		if _, err := ParseView(string(v)); err != nil {
			return nil, fmt.Errorf("features: %w", err)
		}
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 32
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.NumCPU()
	}
	dim := e.Dim()
	res := &Result{Dim: dim, X: map[View][]float32{}, OK: make([]bool, len(samples))}
	for _, v := range opt.Views {
		res.X[v] = make([]float32, len(samples)*dim)
	}
	var (
		mu      sync.Mutex // guards res.Skipped, res.OK, res.Stats, done
		done    int
		pending = make([]int, len(samples)) // views still to compute per sample
	)
	finish := func(i int, ok bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		res.OK[i] = ok
		if err != nil {
			res.Skipped = append(res.Skipped, err)
		}
		done++
		if opt.Progress != nil {
			opt.Progress(done, len(samples))
		}
	}
	prepare := func(i int, w engine.Prep[job]) {
		data, err := os.ReadFile(samples[i].Path)
		if err != nil {
			finish(i, false, err)
			return
		}
		key := KeyOf(data)
		var missing []View
		for _, v := range opt.Views {
			if x, ok := c.Get(v, key); ok {
				copy(res.X[v][i*dim:(i+1)*dim], x)
			} else {
				missing = append(missing, v)
			}
		}
		mu.Lock()
		res.Stats.Cached += len(opt.Views) - len(missing)
		pending[i] = len(missing)
		mu.Unlock()
		if len(missing) == 0 {
			finish(i, true, nil)
			return
		}
		img, _, err := imaging.Decode(data, opt.Decode)
		if err != nil {
			finish(i, false, fmt.Errorf("%s: %w", samples[i].Path, err))
			return
		}
		// The model's input once; every missing view is derived from it.
		base := w.Tensor()
		if perr := e.Prepare(img, false, base); perr != nil {
			w.Drop(base)
			finish(i, false, fmt.Errorf("%s: %w", samples[i].Path, perr))
			return
		}
		ts := make([][]float32, len(missing))
		for k, v := range missing {
			spec, _ := v.Spec()
			ts[k] = w.Tensor()
			applyView(spec, base, ts[k], e.pre.Size)
		}
		w.Drop(base)
		for k, v := range missing {
			if !w.Send(job{idx: i, view: v, key: key}, ts[k]) {
				return
			}
		}
	}
	unflushed := 0
	run := func(batch []float32, members []job) error {
		x, err := e.Run(batch, len(members))
		if err != nil {
			return fmt.Errorf("features: %w", err)
		}
		for j, m := range members {
			row := x[j*dim : (j+1)*dim : (j+1)*dim]
			copy(res.X[m.view][m.idx*dim:], row)
			c.Put(m.view, m.key, row)
			mu.Lock()
			res.Stats.Computed++
			pending[m.idx]--
			last := pending[m.idx] == 0
			mu.Unlock()
			if last {
				finish(m.idx, true, nil)
			}
		}
		unflushed += len(members)
		if unflushed >= flushEvery {
			unflushed = 0
			if err := c.Flush(); err != nil {
				return fmt.Errorf("features: %w", err)
			}
		}
		return nil
	}
	runErr := engine.Run(ctx, len(samples), engine.Options{BatchSize: opt.BatchSize, Workers: opt.Workers, TensorLen: e.TensorLen()},
		prepare, run, func(job) {})
	flushErr := c.Flush()
	if runErr != nil {
		return nil, runErr // a model or cache error, or ctx's
	}
	if flushErr != nil {
		return nil, flushErr
	}
	res.Stats.Images = len(samples)
	res.Stats.Elapsed = time.Since(start)
	if len(res.Skipped) == len(samples) && len(samples) > 0 {
		return nil, fmt.Errorf("features: no image could be decoded: %w", errors.Join(res.Skipped...))
	}
	return res, nil
}
