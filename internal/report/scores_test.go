package report

import (
	"math"
	"testing"
)

// TestSummarizeScores is the test of train.Report (the same scores, now
// computed only here): per-class precision, recall, F1 and support and the
// macro F1, with a class never predicted and one never present.
func TestSummarizeScores(t *testing.T) {
	confusion := [][]int{
		{5, 1, 0, 0},
		{2, 6, 0, 0},
		{1, 3, 0, 0},
		{0, 0, 0, 0},
	}
	s := Summarize(confusion, nil)
	p0, r0 := 5.0/8, 5.0/6
	p1, r1 := 6.0/10, 6.0/8
	f := func(p, r float64) float64 { return 2 * p * r / (p + r) }
	want := []ClassRow{
		{Precision: p0, Recall: r0, F1: f(p0, r0), Support: 6},
		{Precision: p1, Recall: r1, F1: f(p1, r1), Support: 8},
		{Precision: 0, Recall: 0, F1: 0, Support: 4},
		{Support: 0},
	}
	if len(s.Rows) != len(want) {
		t.Fatalf("%d classes, want %d", len(s.Rows), len(want))
	}
	for i := range want {
		g, w := s.Rows[i], want[i]
		if g.Support != w.Support ||
			math.Abs(g.Precision-w.Precision) > 1e-15 || math.Abs(g.Recall-w.Recall) > 1e-15 ||
			math.Abs(g.F1-w.F1) > 1e-15 {
			t.Errorf("class %d: %+v, want %+v", i, g, w)
		}
	}
	// F1: 0.7142857…, 0.6666…, 0, 0.
	if wantMacro := (f(p0, r0) + f(p1, r1)) / 4; math.Abs(s.MacroF1-wantMacro) > 1e-15 || math.IsNaN(s.MacroF1) {
		t.Errorf("macro F1 = %v, want %v", s.MacroF1, wantMacro)
	}
	if math.Abs(s.Rows[0].F1-5.0/7) > 1e-15 || math.Abs(s.Rows[1].F1-2.0/3) > 1e-15 {
		t.Errorf("F1 = %v, %v; want 5/7, 2/3", s.Rows[0].F1, s.Rows[1].F1)
	}
	if e := Summarize(nil, nil); len(e.Rows) != 0 || e.MacroF1 != 0 {
		t.Errorf("Summarize(nil) = %+v", e)
	}
}
