package classify

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"petbreed"
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
	Elapsed     time.Duration         // read, decode, preprocess and its batch's inference
	Err         error
}

type prepared struct {
	idx    int
	res    Result
	tensor []float32
}

// ClassifyFiles reads, decodes and classifies files, calling emit once per
// file in the order of paths. Files are decoded and preprocessed by parallel
// workers while the model runs the previous batch. A file that fails gets a
// Result with Err and does not stop the others. It returns ctx's error if
// cancelled, or a model error, which stops the run.
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	n := c.TensorLen()
	pool := sync.Pool{New: func() any { return make([]float32, n) }}
	jobs := make(chan int)
	ready := make(chan prepared, 2*opt.BatchSize)
	var wg sync.WaitGroup
	for range opt.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				p := prepared{idx: i, res: Result{Path: paths[i]}}
				start := time.Now()
				t := pool.Get().([]float32)
				if err := c.prepareFile(paths[i], opt.Decode, t, &p.res); err != nil {
					p.res.Err = err
					pool.Put(t)
				} else {
					p.tensor = t
				}
				p.res.Elapsed = time.Since(start)
				select {
				case ready <- p:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range paths {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(ready) }()

	// Results leave in input order: pending holds those that finished early.
	pending := make(map[int]Result)
	next := 0
	flush := func(r Result, i int) {
		pending[i] = r
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
	batch := make([]float32, 0, opt.BatchSize*n)
	var members []prepared
	run := func() error {
		if len(members) == 0 {
			return nil
		}
		start := time.Now()
		probs, err := c.Run(batch, len(members))
		if err != nil {
			return fmt.Errorf("classify: %w", err)
		}
		took := time.Since(start)
		for i, m := range members {
			m.res.Predictions = c.TopK(probs[i], opt.TopK)
			m.res.Elapsed += took
			flush(m.res, m.idx)
		}
		batch, members = batch[:0], members[:0]
		return nil
	}
	for p := range ready {
		if p.res.Err != nil {
			flush(p.res, p.idx)
			continue
		}
		batch = append(batch, p.tensor...)
		pool.Put(p.tensor)
		p.tensor = nil
		members = append(members, p)
		if len(members) == opt.BatchSize {
			if err := run(); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return run()
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
