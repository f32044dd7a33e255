package serve

import (
	"context"
	"sync"
	"time"

	"petbreed/internal/serve/protocol"
)

// budget is the server's one memory budget: the bytes that requests may
// hold at once for what the client sends (bodies as they are read) and what
// it makes the server allocate (decoded images, tensors, outputs), each
// charged by its declared cost before it is allocated. A charge that does
// not fit waits up to wait for others to finish, then fails with 503; a
// charge larger than the whole budget fails at once.
type budget struct {
	limit  int64
	wait   time.Duration
	onBusy func() // counts the 503s (nil: none)

	mu      sync.Mutex
	used    int64
	changed chan struct{} // closed when used goes down; made only while someone waits
}

func newBudget(limit int64, wait time.Duration) *budget {
	return &budget{limit: limit, wait: wait}
}

// inUse is the bytes charged now (the petbreed_memory_budget_bytes_in_use
// gauge).
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// errOverBudget is a single charge larger than the whole budget: what
// answers a request that could never be served (its status is the caller's
// choice: 413 for a body, 422 for an image).
type errOverBudget = protocol.OverBudget

var errBudgetBusy = protocol.ErrBudgetBusy

// take charges n bytes, waiting up to b.wait (or until ctx is done) for
// room. It returns errOverBudget when n alone exceeds the budget, and
// errBudgetBusy when the wait ends without room.
func (b *budget) take(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	if n > b.limit {
		return errOverBudget{Need: n, Limit: b.limit}
	}
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		if timer == nil {
			if b.wait <= 0 {
				return b.busy()
			}
			timer = time.NewTimer(b.wait)
		}
		select {
		case <-ch:
		case <-timer.C:
			return b.busy()
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
}

func (b *budget) busy() error {
	if b.onBusy != nil {
		b.onBusy()
	}
	return errBudgetBusy
}

// give returns n bytes to the budget.
func (b *budget) give(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		panic("serve: memory budget released more than it was charged")
	}
	if b.changed != nil { // wake the waiters; the next one to wait makes a new channel
		close(b.changed)
		b.changed = nil
	}
	b.mu.Unlock()
}

// charge is what one request holds of the budget; it grows as the request
// goes, and is given back whole when the request ends (release).
// It is safe for concurrent use (a request's images are prepared in
// parallel).
type charge struct {
	b   *budget
	ctx context.Context

	mu   sync.Mutex
	held int64
}

func (b *budget) newCharge(ctx context.Context) *charge { return &charge{b: b, ctx: ctx} }

// grow charges n more bytes. A request whose charges together exceed the
// whole budget gets errOverBudget at once: no wait could make room for it.
func (c *charge) grow(n int64) error {
	if n <= 0 {
		return nil
	}
	c.mu.Lock()
	total := c.held + n
	c.mu.Unlock()
	if total > c.b.limit {
		return errOverBudget{Need: total, Limit: c.b.limit}
	}
	if err := c.b.take(c.ctx, n); err != nil {
		return err
	}
	c.mu.Lock()
	c.held += n
	c.mu.Unlock()
	return nil
}

// shrink gives back n of the bytes held (a stage whose memory is freed).
func (c *charge) shrink(n int64) {
	c.mu.Lock()
	n = min(n, c.held)
	c.held -= n
	c.mu.Unlock()
	c.b.give(n)
}

// release gives back everything held.
func (c *charge) release() {
	c.mu.Lock()
	n := c.held
	c.held = 0
	c.mu.Unlock()
	c.b.give(n)
}
