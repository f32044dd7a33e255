package engine

import (
	"context"
	"errors"
	"time"
)

// ErrClosing answers a job still queued when its Batcher stops.
var ErrClosing = errors.New("the model is being unloaded")

// Jobs is what a Batcher needs to know of its jobs (J, usually a pointer
// to the caller's own job type): each is Rows(j) items of TensorLen values,
// laid out by Layout, and answered by Done with its own rows.
type Jobs[J any] struct {
	Rows     func(j J) int
	Context  func(j J) context.Context
	Enqueued func(j J) time.Time
	// Layout writes j's Rows(j)*TensorLen values into dst.
	Layout func(j J, dst []float32) error
	// Own, if set, gives a job's tensor when it is already laid out: a batch
	// of that job alone runs from it, without a copy.
	Own func(j J) []float32
	// Taken is called for each job as its batch starts, before it runs or is
	// answered (the caller's queue accounting).
	Taken func(j J)
	// Done answers j: its rows of out (nil on error), the error of its batch
	// or of its context, and when its batch started and how long it took.
	Done func(j J, out [][]float32, err error, start time.Time, took time.Duration)
}

// Batcher runs jobs from a channel together, across callers: a batch holds
// at most Max rows, and after its first job it waits for more at most Delay
// from that job's Enqueued time, and only while More says others are coming
// (so a lone job never waits for company that is not coming). Jobs whose
// context is done by the time their batch starts are answered without
// running. Each batch is laid out in one reused buffer and run once.
type Batcher[J any] struct {
	Max       int
	Delay     time.Duration
	TensorLen int
	More      func() bool                                       // nil: never wait
	Run       func(input []float32, n int) ([][]float32, error) // n rows of input
	Ran       func(n int)                                       // after each run, with its rows
	Jobs      Jobs[J]

	buf   []float32
	batch []J
	live  []J
}

// Loop runs batches from in until quit is closed, then answers the jobs
// left in in with ErrClosing and returns.
func (b *Batcher[J]) Loop(in <-chan J, quit <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var carry J // a job that did not fit in the previous batch
	hasCarry := false
	for {
		var first J
		if hasCarry {
			first, hasCarry = carry, false
		} else {
			select {
			case first = <-in:
			case <-quit:
				b.drain(in)
				return
			}
		}
		batch := append(b.batch[:0], first)
		n := b.Jobs.Rows(first)
		deadline := b.Jobs.Enqueued(first).Add(b.Delay)
	collect:
		for n < b.Max {
			var j J
			select {
			case j = <-in:
			default:
				wait := time.Until(deadline)
				if wait <= 0 || b.More == nil || !b.More() {
					break collect
				}
				timer.Reset(wait)
				select {
				case j = <-in:
					if !timer.Stop() {
						<-timer.C
					}
				case <-timer.C:
					break collect
				}
			}
			if r := b.Jobs.Rows(j); n+r > b.Max {
				carry, hasCarry = j, true
				break
			} else {
				n += r
			}
			batch = append(batch, j)
		}
		b.batch = batch
		b.runBatch(batch)
		clear(batch)
	}
}

func (b *Batcher[J]) drain(in <-chan J) {
	for {
		select {
		case j := <-in:
			b.Jobs.Taken(j)
			b.Jobs.Done(j, nil, ErrClosing, time.Now(), 0)
		default:
			return
		}
	}
}

// runBatch runs one batch and answers each job with its own rows.
func (b *Batcher[J]) runBatch(batch []J) {
	start := time.Now()
	live := b.live[:0]
	n := 0
	for _, j := range batch {
		b.Jobs.Taken(j)
		if err := b.Jobs.Context(j).Err(); err != nil {
			b.Jobs.Done(j, nil, err, start, 0)
			continue
		}
		live = append(live, j)
		n += b.Jobs.Rows(j)
	}
	b.live = live
	defer clear(b.live)
	if n == 0 {
		return
	}
	input, err := b.layout(live, n)
	var out [][]float32
	if err == nil {
		out, err = b.Run(input, n)
	}
	took := time.Since(start)
	if b.Ran != nil {
		b.Ran(n)
	}
	row := 0
	for _, j := range live {
		r := b.Jobs.Rows(j)
		var rows [][]float32
		if err == nil {
			rows = out[row : row+r : row+r]
		}
		row += r
		b.Jobs.Done(j, rows, err, start, took)
	}
}

// layout lays the jobs' rows out as one tensor, in job order, in the
// reused buffer (grown up to Max rows; a lone job larger than Max gets its
// own, not kept), or a lone job's own tensor.
func (b *Batcher[J]) layout(live []J, n int) ([]float32, error) {
	tl := b.TensorLen
	if len(live) == 1 && b.Jobs.Own != nil {
		if t := b.Jobs.Own(live[0]); t != nil {
			return t[:n*tl], nil
		}
	}
	var input []float32
	switch {
	case n*tl <= cap(b.buf):
		input = b.buf[:n*tl]
	case n <= b.Max:
		b.buf = make([]float32, n*tl, max(n, min(2*cap(b.buf)/tl, b.Max))*tl)
		input = b.buf
	default:
		input = make([]float32, n*tl)
	}
	off := 0
	for _, j := range live {
		m := b.Jobs.Rows(j) * tl
		if err := b.Jobs.Layout(j, input[off:off+m]); err != nil {
			return nil, err
		}
		off += m
	}
	return input, nil
}
