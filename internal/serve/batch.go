package serve

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"petbreed/internal/classify"
	"petbreed/internal/imaging"
)

// errOverloaded is returned when the queue is full: the caller answers 503.
var errOverloaded = errors.New("the server is overloaded: the queue is full")

// errClosing is returned to a job still queued when its batcher stops (which
// only happens once every request holding the model is done, so never in
// practice).
var errClosing = errors.New("the model is being unloaded")

// job is one request's images, prepared, waiting for a model run: either
// preprocessed images (resized and cropped, not yet normalised: the batcher
// normalises them straight into the batch, which costs what copying a
// tensor would, and keeps a queued image at a quarter of a tensor's size),
// or a tensor already normalised (V2's FP32 input).
type job struct {
	ctx    context.Context
	images []*imaging.RGB // n images of the model's size, or nil
	tensor []float32      // or n tensors, one after the other, TensorLen values each
	n      int
	enq    time.Time
	done   chan jobResult // buffered: the batcher never blocks on it
}

type jobResult struct {
	probs     [][]float32 // n rows of class probabilities, the job's own
	err       error
	queued    time.Duration // from submission to the start of its batch
	inference time.Duration // the batch: laying out its tensor and the model run
}

// batcher runs one model: a goroutine takes prepared jobs from a bounded
// channel and runs them together, up to maxBatch images per model run. It
// waits for more jobs at most maxDelay after the first one of a batch, and
// only while other requests are being prepared (so a lone request never
// waits for company that is not coming).
type batcher struct {
	clf      *classify.Classifier
	norm     *imaging.Normalizer
	maxBatch int
	single   bool // the model takes one image a run (its batch size is fixed to 1)
	maxDelay time.Duration
	in       chan *job
	quit     chan struct{}
	stopped  chan struct{}

	// Shared with the server: images being prepared (decoded, preprocessed),
	// and images in the channel.
	preparing *atomic.Int64
	queued    *atomic.Int64
	m         *metrics

	buf  []float32 // the batch, reused; grown up to maxBatch images
	live []*job
}

func newBatcher(clf *classify.Classifier, maxBatch int, maxDelay time.Duration, capacity int,
	preparing, queued *atomic.Int64, m *metrics) *batcher {
	pre := clf.Preprocess()
	single := clf.Session().Inputs()[0].Shape[0] == 1
	if single {
		maxBatch = 1
	}
	b := &batcher{
		single: single,
		clf:    clf, norm: imaging.NewNormalizer(pre.Mean, pre.Std), maxBatch: maxBatch, maxDelay: maxDelay,
		in: make(chan *job, capacity), quit: make(chan struct{}), stopped: make(chan struct{}),
		preparing: preparing, queued: queued, m: m,
	}
	go b.loop()
	return b
}

// submit queues j without blocking; a full channel is errOverloaded (the
// server's admission control keeps it from filling, so this is a safety net).
func (b *batcher) submit(j *job) error {
	j.enq = time.Now()
	b.queued.Add(int64(j.n))
	select {
	case b.in <- j:
		return nil
	default:
		b.queued.Add(-int64(j.n))
		return errOverloaded
	}
}

// stop ends the loop after the jobs already queued, and waits for it.
func (b *batcher) stop() {
	close(b.quit)
	<-b.stopped
}

func (b *batcher) loop() {
	defer close(b.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var carry *job // a job that did not fit in the previous batch
	batch := make([]*job, 0, b.maxBatch)
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-b.in:
			case <-b.quit:
				b.drain()
				return
			}
		}
		batch = append(batch[:0], first)
		n := first.n
		deadline := first.enq.Add(b.maxDelay)
	collect:
		for n < b.maxBatch {
			var j *job
			select {
			case j = <-b.in:
			default:
				wait := time.Until(deadline)
				if wait <= 0 || b.preparing.Load() == 0 {
					break collect
				}
				timer.Reset(wait)
				select {
				case j = <-b.in:
					if !timer.Stop() {
						<-timer.C
					}
				case <-timer.C:
					break collect
				}
			}
			if n+j.n > b.maxBatch {
				carry = j
				break
			}
			batch = append(batch, j)
			n += j.n
		}
		b.run(batch)
		clear(batch)
	}
}

// drain answers the jobs left in the channel when the loop stops.
func (b *batcher) drain() {
	for {
		select {
		case j := <-b.in:
			b.queued.Add(-int64(j.n))
			j.done <- jobResult{err: errClosing}
		default:
			return
		}
	}
}

// run runs one batch and answers each job with its own rows.
func (b *batcher) run(batch []*job) {
	start := time.Now()
	// Jobs whose caller went away are answered without running them.
	live := b.live[:0]
	n := 0
	for _, j := range batch {
		b.queued.Add(-int64(j.n))
		if err := j.ctx.Err(); err != nil {
			j.done <- jobResult{err: err, queued: start.Sub(j.enq)}
			continue
		}
		live = append(live, j)
		n += j.n
	}
	b.live = live
	defer clear(b.live)
	if n == 0 {
		return
	}
	input, err := b.assemble(live, n)
	var probs [][]float32
	if err == nil {
		probs, err = b.runModel(input, n)
	}
	took := time.Since(start)
	b.m.batchSize.Observe(float64(n))
	row := 0
	for _, j := range live {
		r := jobResult{err: err, queued: start.Sub(j.enq), inference: took}
		if err == nil {
			r.probs = probs[row : row+j.n : row+j.n]
		}
		row += j.n
		j.done <- r
	}
}

// runModel runs n images, one at a time for a model whose batch size is
// fixed to 1.
func (b *batcher) runModel(input []float32, n int) ([][]float32, error) {
	if !b.single || n == 1 {
		return b.clf.Run(input, n)
	}
	tl := b.clf.TensorLen()
	probs := make([][]float32, 0, n)
	for i := range n {
		p, err := b.clf.Run(input[i*tl:(i+1)*tl], 1)
		if err != nil {
			return nil, err
		}
		probs = append(probs, p[0])
	}
	return probs, nil
}

// assemble lays the jobs' images out as one NCHW tensor, in job order.
func (b *batcher) assemble(live []*job, n int) ([]float32, error) {
	tl := b.clf.TensorLen()
	if len(live) == 1 && live[0].tensor != nil {
		return live[0].tensor[:n*tl], nil
	}
	var input []float32
	switch {
	case n*tl <= cap(b.buf):
		input = b.buf[:n*tl]
	case n <= b.maxBatch:
		b.buf = make([]float32, n*tl, max(n, min(2*cap(b.buf)/tl, b.maxBatch))*tl)
		input = b.buf
	default: // one job larger than a batch: not kept
		input = make([]float32, n*tl)
	}
	off := 0
	for _, j := range live {
		if j.tensor != nil {
			copy(input[off:], j.tensor[:j.n*tl])
			off += j.n * tl
			continue
		}
		for _, img := range j.images {
			if err := b.norm.Normalize(img, input[off:off+tl]); err != nil {
				return nil, err
			}
			off += tl
		}
	}
	return input, nil
}
