package tracking

import (
	"errors"
	"testing"
	"time"
)

// A run copied from elsewhere keeps its start time, each metric value's
// timestamp and its end time; a zero timestamp is now.
func TestTimedRun(t *testing.T) {
	s := openStore(t)
	id, err := s.Experiment("e")
	if err != nil {
		t.Fatal(err)
	}
	start := time.UnixMilli(1_600_000_000_123)
	w, err := s.CreateRunAt(id, "copied", nil, start)
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_600_000_001_456)
	before := time.Now().Add(-time.Second)
	if err := w.LogMetrics([]Metric{{Key: "loss", Value: 0.5, Step: 3, Timestamp: at}, {Key: "loss", Value: 0.25, Step: 4}}); err != nil {
		t.Fatal(err)
	}
	end := time.UnixMilli(1_600_000_009_789)
	if err := w.(TimedEnder).EndAt(Finished, end); err != nil {
		t.Fatal(err)
	}
	info, err := s.GetRun(w.RunID())
	if err != nil {
		t.Fatal(err)
	}
	if !info.Start.Equal(start) || !info.End.Equal(end) || info.Status != Finished {
		t.Errorf("run: start %v end %v status %v; want %v %v FINISHED", info.Start, info.End, info.Status, start, end)
	}
	h, err := s.MetricHistory(w.RunID(), "loss")
	if err != nil || len(h) != 2 {
		t.Fatalf("history %v, %v", h, err)
	}
	if !h[0].Timestamp.Equal(at) || h[0].Step != 3 {
		t.Errorf("first point %+v, want step 3 at %v", h[0], at)
	}
	if h[1].Timestamp.Before(before) {
		t.Errorf("a zero timestamp was stored as %v, not now", h[1].Timestamp)
	}
	if err := w.(TimedEnder).EndAt(Failed, end); !errors.Is(err, ErrRunEnded) {
		t.Errorf("EndAt of an ended run: %v, want ErrRunEnded", err)
	}
}
