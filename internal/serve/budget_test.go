package serve

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBudgetWakesWaiters: a charge that does not fit waits, and gets its
// room as soon as another is given back (not only at the end of its wait),
// again and again.
func TestBudgetWakesWaiters(t *testing.T) {
	b := newBudget(100, 10*time.Second)
	for round := range 3 {
		if err := b.take(context.Background(), 80); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		start := time.Now()
		go func() { got <- b.take(context.Background(), 50) }()
		time.Sleep(20 * time.Millisecond)
		b.give(80)
		if err := <-got; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("round %d: woken after %v, not at the release", round, d)
		}
		b.give(50)
		if n := b.inUse(); n != 0 {
			t.Fatalf("round %d: %d bytes still charged", round, n)
		}
	}
	// Over the whole budget: at once; no room within the wait: busy.
	var over errOverBudget
	if err := b.take(context.Background(), 101); !errors.As(err, &over) {
		t.Errorf("101 of 100: %v", err)
	}
	short := newBudget(10, 10*time.Millisecond)
	short.take(context.Background(), 10)
	if err := short.take(context.Background(), 1); !errors.Is(err, errBudgetBusy) {
		t.Errorf("no room: %v", err)
	}
}
