package serve

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"petbreed"
	"petbreed/internal/classify"
	"petbreed/internal/engine"
	"petbreed/internal/imaging"
	"petbreed/internal/onnxrt"
)

// errOverloaded is returned when the queue is full: the caller answers 503.
var errOverloaded = errors.New("the server is overloaded: the queue is full")

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

// batcher runs one model on engine.Batcher: a goroutine takes prepared
// jobs from a bounded channel and runs them together, up to maxBatch images
// per model run. It waits for more jobs at most maxDelay after the first one
// of a batch, and only while other requests are being prepared (so a lone
// request never waits for company that is not coming).
type batcher struct {
	clf     runner
	norm    *imaging.Normalizer
	single  bool // the model takes one image a run (its batch size is fixed to 1)
	in      chan *job
	quit    chan struct{}
	stopped chan struct{}
	core    engine.Batcher[*job]

	// Shared with the server: images being prepared (decoded, preprocessed),
	// and images in the channel.
	preparing *atomic.Int64
	queued    *atomic.Int64
	m         *metrics
	stats     *modelStats // its model's (nil: none)
}

// runner is what a batcher runs: a whole model (*classify.Classifier), or a
// backbone shared by several models' heads (*classify.Trunk, trunk.go).
type runner interface {
	Run(batch []float32, n int) ([][]float32, error)
	TensorLen() int
	Preprocess() petbreed.Preprocess
	Session() *onnxrt.Session
}

var (
	_ runner = (*classify.Classifier)(nil)
	_ runner = (*classify.Trunk)(nil)
)

func newBatcher(clf runner, maxBatch int, maxDelay time.Duration, capacity int,
	preparing, queued *atomic.Int64, m *metrics) *batcher {
	pre := clf.Preprocess()
	single := clf.Session().Inputs()[0].Shape[0] == 1
	if single {
		maxBatch = 1
	}
	b := &batcher{
		single: single,
		clf:    clf, norm: imaging.NewNormalizer(pre.Mean, pre.Std),
		in: make(chan *job, capacity), quit: make(chan struct{}), stopped: make(chan struct{}),
		preparing: preparing, queued: queued, m: m,
	}
	b.core = engine.Batcher[*job]{
		Max: maxBatch, Delay: maxDelay, TensorLen: clf.TensorLen(),
		More: b.more, Run: b.runModel, Ran: b.ran,
		Jobs: engine.Jobs[*job]{
			Rows: jobRows, Context: jobContext, Enqueued: jobEnqueued,
			Layout: b.layout, Own: jobTensor, Taken: b.taken, Done: jobDone,
		},
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
	b.core.Loop(b.in, b.quit)
}

func (b *batcher) more() bool { return b.preparing.Load() > 0 }
func (b *batcher) ran(n int) {
	b.m.batchSize.Observe(float64(n))
	if b.stats != nil {
		b.stats.executions.Add(1)
	}
}
func (b *batcher) taken(j *job)         { b.queued.Add(-int64(j.n)) }
func jobRows(j *job) int                { return j.n }
func jobEnqueued(j *job) time.Time      { return j.enq }
func jobContext(j *job) context.Context { return j.ctx }
func jobTensor(j *job) []float32        { return j.tensor }

func jobDone(j *job, rows [][]float32, err error, start time.Time, took time.Duration) {
	j.done <- jobResult{probs: rows, err: err, queued: start.Sub(j.enq), inference: took}
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

// layout writes j's images into dst: its tensor copied, or its images
// normalised straight into the batch.
func (b *batcher) layout(j *job, dst []float32) error {
	if j.tensor != nil {
		copy(dst, j.tensor[:len(dst)])
		return nil
	}
	tl := b.core.TensorLen
	for i, img := range j.images {
		if err := b.norm.Normalize(img, dst[i*tl:(i+1)*tl]); err != nil {
			return err
		}
	}
	return nil
}
