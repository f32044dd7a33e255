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
