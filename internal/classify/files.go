package classify

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"petbreed"
	"petbreed/internal/engine"
	"petbreed/internal/imaging"
)

// FilesOptions configure ClassifyFiles.
type FilesOptions struct {
	TopK      int                   // predictions per image (default 5)
	BatchSize int                   // images per model run (default 32)
	Workers   int                   // parallel decoders (default: one per core)
	Decode    imaging.DecodeOptions // pixel limit, EXIF orientation
}

// Result is the answer for one file.
type Result struct {
	Path        string
	Info        imaging.Info          // format and stored size
	Width       int                   // size after orientation
	Height      int                   //
	Predictions []petbreed.Prediction // nil when Err is set
	Pet         *petbreed.PetCheck    // whether it looks like a pet; nil when the model cannot tell or Err is set
	Elapsed     time.Duration         // read, decode, preprocess and its batch's inference
	Err         error
}

type prepared struct {
	idx int
	res Result
}

// ClassifyFiles reads, decodes and classifies files, calling emit once per
// file in the order of paths. Files are decoded and preprocessed by parallel
// workers while the model runs the previous batch (package engine). A file
// that fails gets a Result with Err and does not stop the others. It
// returns ctx's error if cancelled, or a model error, which stops the run.
func (c *Classifier) ClassifyFiles(ctx context.Context, paths []string, opt FilesOptions, emit func(Result)) error {
	if opt.TopK <= 0 {
		opt.TopK = 5
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 32
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.NumCPU()
	}

	// Results leave in input order: pending holds those that finished early.
	pending := make(map[int]Result)
	next := 0
	flush := func(p prepared) {
		pending[p.idx] = p.res
		for {
			r, ok := pending[next]
			if !ok {
				return
			}
			delete(pending, next)
			emit(r)
			next++
		}
	}
	prepare := func(i int, w engine.Prep[prepared]) {
		p := prepared{idx: i, res: Result{Path: paths[i]}}
		start := time.Now()
		t := w.Tensor()
		if err := c.prepareFile(paths[i], opt.Decode, t, &p.res); err != nil {
			p.res.Err = err
			w.Drop(t)
			t = nil
		}
		p.res.Elapsed = time.Since(start)
		w.Send(p, t)
	}
	run := func(batch []float32, members []prepared) error {
		start := time.Now()
		probs, err := c.Run(batch, len(members))
		if err != nil {
			return fmt.Errorf("classify: %w", err)
		}
		took := time.Since(start)
		for i, m := range members {
			m.res.Predictions = c.TopK(probs[i], opt.TopK)
			if pc, ok := c.Pet(probs[i]); ok {
				m.res.Pet = &pc
			}
			m.res.Elapsed += took
			flush(m)
		}
		return nil
	}
	return engine.Run(ctx, len(paths), engine.Options{BatchSize: opt.BatchSize, Workers: opt.Workers, TensorLen: c.TensorLen()},
		prepare, run, flush)
}

// prepareFile reads, decodes and preprocesses one file into dst.
func (c *Classifier) prepareFile(path string, opt imaging.DecodeOptions, dst []float32, res *Result) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	img, info, err := imaging.Decode(data, opt)
	res.Info = info
	if err != nil {
		return err
	}
	res.Width, res.Height = img.W, img.H
	return c.Prepare(img, dst)
}
