package train

import (
	"math"
	"reflect"
	"testing"
)

func TestEvaluate(t *testing.T) {
	// Head on 2 features, 3 classes: logits = (x0, x1, 0.5).
	h := &Head{D: 2, C: 3, W: []float32{1, 0, 0, 1, 0, 0}, B: []float32{0, 0, 0.5}}
	d := Data{D: 2,
		X: []float32{
			2, 0, // → 0
			0, 2, // → 1
			0, 0, // → 2
			3, 1, // → 0
			1, 3, // → 1
		},
		Y: []int32{0, 1, 2, 1, 2},
	}
	e := Evaluate(h, d)
	if want := []int32{0, 1, 2, 0, 1}; !reflect.DeepEqual(e.Pred, want) {
		t.Errorf("Pred = %v, want %v", e.Pred, want)
	}
	want := [][]int{{1, 0, 0}, {1, 1, 0}, {0, 1, 1}}
	if !reflect.DeepEqual(e.Confusion, want) {
		t.Errorf("Confusion = %v, want %v", e.Confusion, want)
	}
	if e.Acc != 3.0/5 {
		t.Errorf("Acc = %v, want 0.6", e.Acc)
	}
	rows := [][]float64{{2, 0}, {0, 2}, {0, 0}, {3, 1}, {1, 3}}
	if ref := refLoss(to64(h.W), to64(h.B), rows, d.Y, 0); math.Abs(e.Loss-ref) > 1e-12 {
		t.Errorf("Loss = %v, want %v", e.Loss, ref)
	}

	// EvaluateProbs on the softmax of the same logits gives the same result.
	p := EvaluateProbs(h.Probabilities(d.X, 5), d.Y, 3)
	if !reflect.DeepEqual(p.Pred, e.Pred) || !reflect.DeepEqual(p.Confusion, e.Confusion) ||
		p.Acc != e.Acc || math.Abs(p.Loss-e.Loss) > 1e-6 {
		t.Errorf("EvaluateProbs = %+v, Evaluate = %+v", p, e)
	}
	// A zero probability gives a large finite loss.
	z := EvaluateProbs([]float32{1, 0, 0, 0.25, 0.5, 0.25}, []int32{1, 1}, 3)
	if want := (-math.Log(math.SmallestNonzeroFloat32) - math.Log(0.5)) / 2; math.Abs(z.Loss-want) > 1e-9 {
		t.Errorf("loss with a zero probability = %v, want %v", z.Loss, want)
	}
}

func TestEvaluatePanicsOnBadInput(t *testing.T) {
	h := NewHead(2, 3, 1)
	tests := []struct {
		name string
		f    func()
	}{
		{"D mismatch", func() { Evaluate(h, Data{X: make([]float32, 3), Y: []int32{0}, D: 3}) }},
		{"label", func() { Evaluate(h, Data{X: make([]float32, 2), Y: []int32{3}, D: 2}) }},
		{"probs size", func() { EvaluateProbs(make([]float32, 5), []int32{0, 1}, 3) }},
		{"probs label", func() { EvaluateProbs(make([]float32, 3), []int32{-1}, 3) }},
		{"logits size", func() { h.Logits(make([]float32, 3), 2, make([]float32, 6)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f()
		})
	}
}

func TestReport(t *testing.T) {
	// Class 2 is never predicted; class 3 never occurs and is never predicted.
	confusion := [][]int{
		{5, 1, 0, 0},
		{2, 6, 0, 0},
		{1, 3, 0, 0},
		{0, 0, 0, 0},
	}
	per, macro := Report(confusion)
	p0, r0 := 5.0/8, 5.0/6
	p1, r1 := 6.0/10, 6.0/8
	f := func(p, r float64) float64 { return 2 * p * r / (p + r) }
	want := []ClassStats{
		{Class: 0, Precision: p0, Recall: r0, F1: f(p0, r0), Support: 6},
		{Class: 1, Precision: p1, Recall: r1, F1: f(p1, r1), Support: 8},
		{Class: 2, Precision: 0, Recall: 0, F1: 0, Support: 4},
		{Class: 3, Support: 0},
	}
	if len(per) != len(want) {
		t.Fatalf("%d classes, want %d", len(per), len(want))
	}
	for i := range want {
		g, w := per[i], want[i]
		if g.Class != w.Class || g.Support != w.Support ||
			math.Abs(g.Precision-w.Precision) > 1e-15 || math.Abs(g.Recall-w.Recall) > 1e-15 ||
			math.Abs(g.F1-w.F1) > 1e-15 {
			t.Errorf("class %d: %+v, want %+v", i, g, w)
		}
	}
	// F1: 0.7142857…, 0.6666…, 0, 0.
	if wantMacro := (f(p0, r0) + f(p1, r1)) / 4; math.Abs(macro-wantMacro) > 1e-15 || math.IsNaN(macro) {
		t.Errorf("macro F1 = %v, want %v", macro, wantMacro)
	}
	if math.Abs(per[0].F1-5.0/7) > 1e-15 || math.Abs(per[1].F1-2.0/3) > 1e-15 {
		t.Errorf("F1 = %v, %v; want 5/7, 2/3", per[0].F1, per[1].F1)
	}
	if per, macro := Report(nil); len(per) != 0 || macro != 0 {
		t.Errorf("Report(nil) = %v, %v", per, macro)
	}
}
