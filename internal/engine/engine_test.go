package engine

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"
)

// TestRun: every prepared item is run exactly once with its own tensor, in
// batches of the size asked (the last smaller), items without a tensor
// pass, and a run error or a cancelled context stops the run.
func TestRun(t *testing.T) {
	boom := errors.New("model failed")
	for _, tt := range []struct {
		name                string
		n, batch, workers   int
		skip                func(i int) bool // sent without a tensor
		failAt              int              // the batch whose run fails (1-based); 0: none
		cancelled           bool
		wantRun, wantPassed int
		wantErr             error
	}{
		{name: "even", n: 12, batch: 4, workers: 3, wantRun: 12},
		{name: "last batch smaller", n: 7, batch: 3, workers: 2, wantRun: 7},
		{name: "one worker, batch of one", n: 5, batch: 1, workers: 1, wantRun: 5},
		{name: "none", n: 0, batch: 4, workers: 2},
		{name: "some pass", n: 10, batch: 4, workers: 2, skip: func(i int) bool { return i%3 == 0 }, wantRun: 6, wantPassed: 4},
		{name: "run error", n: 40, batch: 4, workers: 2, failAt: 2, wantErr: boom},
		{name: "cancelled", n: 10, batch: 4, workers: 2, cancelled: true, wantErr: context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelled {
				cancel()
			}
			const tl = 3
			var ran, passed []int
			batches := 0
			prepare := func(i int, p Prep[int]) {
				if tt.skip != nil && tt.skip(i) {
					p.Send(i, nil)
					return
				}
				tensor := p.Tensor()
				for k := range tensor {
					tensor[k] = float32(i*tl + k)
				}
				p.Send(i, tensor)
			}
			run := func(input []float32, items []int) error {
				batches++
				if len(items) > tt.batch || len(input) != len(items)*tl {
					t.Errorf("batch of %d items, %d values", len(items), len(input))
				}
				if batches == tt.failAt {
					return boom
				}
				for j, i := range items {
					if input[j*tl] != float32(i*tl) || input[j*tl+tl-1] != float32(i*tl+tl-1) {
						t.Errorf("item %d got the row of %v", i, input[j*tl])
					}
					ran = append(ran, i)
				}
				return nil
			}
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, tt.n, Options{BatchSize: tt.batch, Workers: tt.workers, TensorLen: tl}, prepare, run,
					func(i int) { passed = append(passed, i) })
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if tt.failAt > 0 && batches != tt.failAt {
					t.Errorf("%d batches ran after the failing one", batches-tt.failAt)
				}
				return
			}
			sort.Ints(ran)
			if len(ran) != tt.wantRun || len(passed) != tt.wantPassed {
				t.Fatalf("ran %d, passed %d; want %d, %d", len(ran), len(passed), tt.wantRun, tt.wantPassed)
			}
			for k := 1; k < len(ran); k++ {
				if ran[k] == ran[k-1] {
					t.Fatalf("item %d ran twice", ran[k])
				}
			}
			if want := (tt.wantRun + tt.batch - 1) / tt.batch; batches != want {
				t.Errorf("%d batches, want %d", batches, want)
			}
		})
	}
}

func TestRunOptions(t *testing.T) {
	err := Run(context.Background(), 1, Options{}, func(int, Prep[int]) {}, func([]float32, []int) error { return nil }, func(int) {})
	if err == nil {
		t.Fatal("zero options accepted")
	}
}
