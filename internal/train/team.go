package train

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// team runs the parallel sections of a training run on a fixed set of
// goroutines. Train has two sections per mini-batch, a few hundred
// microseconds each; starting goroutines per section costs a thread wake-up
// (~0.1 ms on a VM), so the helpers live for the whole run and spin briefly
// between sections before parking.
//
// A section is n independent chunks handed out dynamically through an atomic
// counter, the caller taking part: a helper that the OS has descheduled (the
// machine may be shared) simply takes no chunk instead of stalling the
// section. Whichever goroutine runs a chunk, the chunk computes the same values
// in the same order, so results never depend on the number of goroutines or on
// scheduling.
type team struct {
	helpers int
	gen     atomic.Uint64       // incremented to post a job (or to stop)
	cur     atomic.Pointer[job] // the latest job
	stop    atomic.Bool
	mu      sync.Mutex // with cond, parks idle helpers
	cond    sync.Cond
	wg      sync.WaitGroup
}

// job is one parallel section: fn(i) for i in [0, n).
type job struct {
	fn        func(i int)
	n         int32
	next      atomic.Int32 // next chunk to hand out
	completed atomic.Int32
	done      chan struct{} // closed when completed reaches n
}

// work runs chunks of j until none is left.
func (j *job) work() {
	for {
		i := j.next.Add(1) - 1
		if i >= j.n {
			return
		}
		j.fn(int(i))
		if j.completed.Add(1) == j.n {
			close(j.done)
		}
	}
}

// spinFor is how long a goroutine spins before blocking, both an idle helper
// waiting for the next section and the caller waiting for a section's last
// chunks.
const spinFor = 200 * time.Microsecond

// newTeam returns a team of the caller plus workers-1 helpers.
func newTeam(workers int) *team {
	t := &team{helpers: max(workers-1, 0)}
	t.cond.L = &t.mu
	for range t.helpers {
		t.wg.Add(1)
		go t.helper()
	}
	return t
}

func (t *team) helper() {
	defer t.wg.Done()
	var seen uint64
	for {
		if t.gen.Load() == seen {
			deadline := time.Now().Add(spinFor)
			for i := 0; t.gen.Load() == seen; i++ {
				if i&255 == 255 {
					if time.Now().After(deadline) {
						t.mu.Lock()
						for t.gen.Load() == seen {
							t.cond.Wait()
						}
						t.mu.Unlock()
						break
					}
					runtime.Gosched()
				}
			}
		}
		seen = t.gen.Load()
		if t.stop.Load() {
			return
		}
		t.cur.Load().work()
	}
}

// run calls fn(i) for every i in [0, n), in parallel, and returns when all
// calls have returned.
func (t *team) run(n int, fn func(i int)) {
	if t.helpers == 0 || n <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	j := &job{fn: fn, n: int32(n), done: make(chan struct{})}
	t.cur.Store(j)
	t.mu.Lock()
	t.gen.Add(1)
	t.cond.Broadcast()
	t.mu.Unlock()
	j.work()
	// Wait for chunks still running on helpers: spin (they normally end
	// within microseconds), then block, so that a helper descheduled by the
	// OS is not kept from the CPU by this goroutine's spinning.
	deadline := time.Now().Add(spinFor)
	for i := 0; j.completed.Load() != j.n; i++ {
		if i&255 == 255 && time.Now().After(deadline) {
			<-j.done
			break
		}
	}
}

// close stops the helpers and waits for them to exit.
func (t *team) close() {
	if t.helpers == 0 {
		return
	}
	t.stop.Store(true)
	t.mu.Lock()
	t.gen.Add(1)
	t.cond.Broadcast()
	t.mu.Unlock()
	t.wg.Wait()
}
