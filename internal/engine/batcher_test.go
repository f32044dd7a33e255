package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// tjob is a test job: n rows, each row's values all equal to id*100+row.
type tjob struct {
	ctx  context.Context
	id   int
	n    int
	enq  time.Time
	own  []float32
	done chan tres
}

type tres struct {
	rows [][]float32
	err  error
}

// newTestBatcher runs the model "first value of each row" and records each
// run's row count.
func newTestBatcher(max int, delay time.Duration, more func() bool, fail error, runs *[]int) *Batcher[*tjob] {
	const tl = 2
	return &Batcher[*tjob]{
		Max: max, Delay: delay, TensorLen: tl, More: more,
		Run: func(input []float32, n int) ([][]float32, error) {
			if len(input) != n*tl {
				return nil, errors.New("input length is not n rows")
			}
			if fail != nil {
				return nil, fail
			}
			out := make([][]float32, n)
			for i := range n {
				out[i] = []float32{input[i*tl], input[i*tl+1]}
			}
			return out, nil
		},
		Ran: func(n int) { *runs = append(*runs, n) },
		Jobs: Jobs[*tjob]{
			Rows:     func(j *tjob) int { return j.n },
			Context:  func(j *tjob) context.Context { return j.ctx },
			Enqueued: func(j *tjob) time.Time { return j.enq },
			Layout: func(j *tjob, dst []float32) error {
				if len(dst) != j.n*tl {
					return errors.New("dst is not the job's rows")
				}
				for i := range dst {
					dst[i] = float32(j.id*100 + i/tl)
				}
				return nil
			},
			Own:   func(j *tjob) []float32 { return j.own },
			Taken: func(*tjob) {},
			Done: func(j *tjob, out [][]float32, err error, _ time.Time, _ time.Duration) {
				j.done <- tres{out, err}
			},
		},
	}
}

// TestBatcher: jobs queued together run in batches of at most Max rows (a
// job that does not fit starts the next), each job gets its own rows, a job
// whose context is done is answered without running, a lone job's own
// tensor is used, a run error reaches every job of its batch, and jobs left
// when the loop stops get ErrClosing.
func TestBatcher(t *testing.T) {
	boom := errors.New("model failed")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	for _, tt := range []struct {
		name     string
		max      int
		sizes    []int
		ctxs     map[int]context.Context // job index → its context, else bg
		own      bool                    // jobs carry their own tensor (7, 7, ...)
		fail     error
		wantRuns []int
	}{
		{name: "together", max: 8, sizes: []int{1, 2, 3}, wantRuns: []int{6}},
		{name: "split at max", max: 4, sizes: []int{2, 1, 3, 4}, wantRuns: []int{3, 3, 4}},
		{name: "one larger than max", max: 2, sizes: []int{5, 1}, wantRuns: []int{5, 1}},
		{name: "cancelled not run", max: 8, sizes: []int{1, 2, 1}, ctxs: map[int]context.Context{1: cancelled}, wantRuns: []int{2}},
		{name: "all cancelled", max: 8, sizes: []int{1}, ctxs: map[int]context.Context{0: cancelled}},
		{name: "lone own tensor", max: 8, sizes: []int{2}, own: true, wantRuns: []int{2}},
		{name: "run error", max: 8, sizes: []int{1, 2}, fail: boom, wantRuns: []int{3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var runs []int
			b := newTestBatcher(tt.max, time.Second, nil, tt.fail, &runs)
			in := make(chan *tjob, len(tt.sizes))
			jobs := make([]*tjob, len(tt.sizes))
			for i, n := range tt.sizes {
				ctx := bg
				if c, ok := tt.ctxs[i]; ok {
					ctx = c
				}
				j := &tjob{ctx: ctx, id: i + 1, n: n, enq: time.Now(), done: make(chan tres, 1)}
				if tt.own {
					j.own = make([]float32, 2*n)
					for k := range j.own {
						j.own[k] = 7
					}
				}
				jobs[i] = j
				in <- j
			}
			quit := make(chan struct{})
			stopped := make(chan struct{})
			go func() { b.Loop(in, quit); close(stopped) }()
			for i, j := range jobs {
				r := <-j.done
				switch {
				case tt.ctxs[i] != nil:
					if !errors.Is(r.err, context.Canceled) {
						t.Errorf("job %d: err %v, want context.Canceled", i, r.err)
					}
				case tt.fail != nil:
					if !errors.Is(r.err, tt.fail) || r.rows != nil {
						t.Errorf("job %d: %v, %v; want the run's error and no rows", i, r.rows, r.err)
					}
				default:
					if r.err != nil || len(r.rows) != j.n {
						t.Fatalf("job %d: %d rows, %v; want %d rows", i, len(r.rows), r.err, j.n)
					}
					for k, row := range r.rows {
						want := float32(j.id*100 + k)
						if tt.own {
							want = 7
						}
						if row[0] != want || row[1] != want {
							t.Errorf("job %d row %d = %v, want %v", i, k, row, want)
						}
					}
				}
			}
			close(quit)
			<-stopped
			if len(runs) != len(tt.wantRuns) {
				t.Fatalf("runs %v, want %v", runs, tt.wantRuns)
			}
			for i := range runs {
				if runs[i] != tt.wantRuns[i] {
					t.Fatalf("runs %v, want %v", runs, tt.wantRuns)
				}
			}
		})
	}
}

// TestBatcherWaits: after a batch's first job the loop waits up to Delay
// for more while More says others are coming, and not at all when it says
// none are; jobs left in the channel at stop get ErrClosing.
func TestBatcherWaits(t *testing.T) {
	for _, coming := range []bool{true, false} {
		var runs []int
		b := newTestBatcher(2, 2*time.Second, func() bool { return coming }, nil, &runs) // full at two: no wait for the deadline
		in := make(chan *tjob, 4)
		quit, stopped := make(chan struct{}), make(chan struct{})
		go func() { b.Loop(in, quit); close(stopped) }()
		a := &tjob{ctx: context.Background(), id: 1, n: 1, enq: time.Now(), done: make(chan tres, 1)}
		c := &tjob{ctx: context.Background(), id: 2, n: 1, done: make(chan tres, 1)}
		in <- a
		time.Sleep(50 * time.Millisecond)
		c.enq = time.Now()
		in <- c
		<-a.done
		<-c.done
		close(quit)
		<-stopped
		want := []int{2}
		if !coming {
			want = []int{1, 1}
		}
		if len(runs) != len(want) || runs[0] != want[0] {
			t.Errorf("others coming %v: runs %v, want %v", coming, runs, want)
		}
	}

	// Stopping: a job already in the channel when quit closes, with the loop
	// blocked on nothing, is answered ErrClosing or run, never lost.
	var runs []int
	b := newTestBatcher(8, 0, nil, nil, &runs)
	in := make(chan *tjob, 1)
	quit := make(chan struct{})
	close(quit)
	j := &tjob{ctx: context.Background(), id: 1, n: 1, enq: time.Now(), done: make(chan tres, 1)}
	in <- j
	b.Loop(in, quit)
	if r := <-j.done; r.err != nil && !errors.Is(r.err, ErrClosing) {
		t.Errorf("job at stop: %v, want rows or ErrClosing", r.err)
	}
}

// TestBatcherAllocs: the loop itself allocates nothing per job (the
// server's hot path: a job's cost is its own struct and channel).
func TestBatcherAllocs(t *testing.T) {
	out := [][]float32{{0, 0}, {0, 0}}
	b := &Batcher[*tjob]{
		Max: 8, TensorLen: 2,
		Run: func([]float32, int) ([][]float32, error) { return out[:1], nil },
		Ran: func(int) {},
		Jobs: Jobs[*tjob]{
			Rows:     func(j *tjob) int { return j.n },
			Context:  func(j *tjob) context.Context { return j.ctx },
			Enqueued: func(j *tjob) time.Time { return j.enq },
			Layout:   func(*tjob, []float32) error { return nil },
			Taken:    func(*tjob) {},
			Done:     func(j *tjob, _ [][]float32, err error, _ time.Time, _ time.Duration) { j.done <- tres{nil, err} },
		},
	}
	in := make(chan *tjob)
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() { b.Loop(in, quit); close(stopped) }()
	j := &tjob{ctx: context.Background(), n: 1, done: make(chan tres, 1)}
	allocs := testing.AllocsPerRun(200, func() {
		in <- j
		if r := <-j.done; r.err != nil {
			t.Fatal(r.err)
		}
	})
	close(quit)
	<-stopped
	if allocs != 0 {
		t.Errorf("%.1f allocations per job, want 0", allocs)
	}
}
