// Package engine is the batch inference core shared by the CLI's file
// pipeline (classify.ClassifyFiles) and feature extraction
// (features.Compute): items are prepared in parallel (read, decoded,
// preprocessed into a tensor from a pool), flow through a bounded channel
// (back-pressure: at most two batches wait), are laid out in batches of a
// fixed size as one NCHW tensor, and each batch is run by the caller, who
// hands each item its own row. The model runs one batch while the workers
// prepare the next.
//
// Batcher (batcher.go) is the server's dynamic batching: jobs of several
// rows from many callers, collected up to a size and a deadline, laid out by
// the caller's hook into one reused buffer, run once, each job answered
// with its own rows or its context's error. internal/serve runs each loaded
// model on one, with admission and the memory budget in front.
package engine

import (
	"context"
	"errors"
	"sync"
)

// Options size a run.
type Options struct {
	BatchSize int // items per model run
	Workers   int // parallel preparers
	TensorLen int // values in one item's tensor
}

// Prep is a worker's side of a run: tensor buffers, and the items it sends
// to the batches.
type Prep[T any] struct{ s *state[T] }

// Tensor returns a buffer of TensorLen values (from a pool: its contents
// are not zero). Send it with an item, or give it back with Drop.
func (p Prep[T]) Tensor() []float32 { return p.s.pool.Get().([]float32) }

// Drop gives back a buffer that will not be sent.
func (p Prep[T]) Drop(t []float32) { p.s.pool.Put(t) }

// Send hands item, with its tensor, to the batches; an item with a nil
// tensor is not run and goes to Run's pass instead. It blocks while the
// batches are two behind, and returns false when the run is stopping (the
// worker should return).
func (p Prep[T]) Send(item T, tensor []float32) bool {
	select {
	case p.s.out <- prepared[T]{item, tensor}:
		return true
	case <-p.s.ctx.Done():
		return false
	}
}

type prepared[T any] struct {
	item   T
	tensor []float32
}

type state[T any] struct {
	ctx  context.Context
	pool sync.Pool
	out  chan prepared[T]
}

// Run prepares items 0..n-1, calling prepare(i, p) on opt.Workers
// goroutines, and on the calling goroutine lays the tensors sent out in
// batches of opt.BatchSize, in the order they arrive, and calls run with
// each batch's input (len(items)*TensorLen values, valid during the call)
// and its items; items sent without a tensor go to pass, also on the
// calling goroutine. An error from run stops the run: Run returns it once
// the workers have stopped. Otherwise it returns ctx's error if ctx is
// done, else runs the last, smaller batch and returns its error.
func Run[T any](ctx context.Context, n int, opt Options, prepare func(i int, p Prep[T]),
	run func(input []float32, items []T) error, pass func(T)) error {
	if opt.BatchSize < 1 || opt.Workers < 1 || opt.TensorLen < 1 {
		return errors.New("engine: batch size, workers and tensor length must be positive")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &state[T]{ctx: ctx, out: make(chan prepared[T], 2*opt.BatchSize)}
	tl := opt.TensorLen
	s.pool.New = func() any { return make([]float32, tl) }

	idxs := make(chan int)
	var wg sync.WaitGroup
	for range opt.Workers {
		wg.Go(func() {
			for i := range idxs {
				prepare(i, Prep[T]{s})
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	go func() {
		defer close(idxs)
		for i := range n {
			select {
			case idxs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(s.out) }()

	batch := make([]float32, 0, opt.BatchSize*tl)
	items := make([]T, 0, opt.BatchSize)
	var err error
	for p := range s.out {
		if err != nil { // stopping: only give the buffers back
			if p.tensor != nil {
				s.pool.Put(p.tensor)
			}
			continue
		}
		if p.tensor == nil {
			pass(p.item)
			continue
		}
		batch = append(batch, p.tensor...)
		s.pool.Put(p.tensor)
		items = append(items, p.item)
		if len(items) == opt.BatchSize {
			if err = run(batch, items); err != nil {
				cancel()
			}
			clear(items)
			batch, items = batch[:0], items[:0]
		}
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	return run(batch, items)
}
