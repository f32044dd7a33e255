package train

import (
	"fmt"
	"math"
)

// Eval holds evaluation results. Loss is the mean cross-entropy, Acc the
// fraction of correct top-1 predictions, Confusion[true][pred] the counts and
// Pred the top-1 prediction of every sample.
type Eval struct {
	Loss, Acc float64
	Confusion [][]int // [true][pred]
	Pred      []int32
}

// Evaluate runs h in eval mode (no dropout) over d and returns the mean
// cross-entropy (without label smoothing), accuracy, confusion matrix and
// predictions. d must hold valid data for h (see Data.Validate); Evaluate
// panics otherwise.
func Evaluate(h *Head, d Data) Eval {
	mustMatch(h, d)
	return evaluate(h, d, 0, make([]float32, d.N()*h.C), nil)
}

// mustMatch panics with a descriptive message if d is not valid input for h.
func mustMatch(h *Head, d Data) {
	if d.D != h.D {
		panic(fmt.Sprintf("train: Evaluate: data has %d features, head expects %d", d.D, h.D))
	}
	if err := d.check(h.C); err != nil {
		panic("train: Evaluate: " + err.Error())
	}
}

// evaluate computes the metrics of h on d with the given label smoothing,
// using logits (n×C) as scratch space and tm (if not nil) for the logits.
func evaluate(h *Head, d Data, smoothing float64, logits []float32, tm *team) Eval {
	n, c := d.N(), h.C
	if tm != nil {
		const rows = 16 // per chunk
		tm.run((n+rows-1)/rows, func(i int) {
			h.logitRows(d.X, i*rows, min((i+1)*rows, n), logits)
		})
	} else {
		h.Logits(d.X, n, logits)
	}
	e := Eval{Confusion: newConfusion(c), Pred: make([]int32, n)}
	var loss float64
	correct := 0
	for i, y := range d.Y {
		row := logits[i*c : (i+1)*c]
		l, _ := crossEntropy(row, int(y), smoothing)
		loss += l
		p := argmax(row)
		e.Pred[i] = int32(p)
		e.Confusion[y][p]++
		if p == int(y) {
			correct++
		}
	}
	e.Loss = loss / float64(n)
	e.Acc = float64(correct) / float64(n)
	return e
}

func newConfusion(c int) [][]int {
	cells := make([]int, c*c)
	m := make([][]int, c)
	for i := range m {
		m[i] = cells[i*c : (i+1)*c : (i+1)*c]
	}
	return m
}

// minProb is the floor EvaluateProbs puts under a probability before taking
// its logarithm, so a zero probability gives a large finite loss (≈ 103.3)
// rather than +Inf.
const minProb = math.SmallestNonzeroFloat32

// EvaluateProbs evaluates rows of class probabilities (n×classes, e.g. the
// mean of the softmax outputs of several augmented views) against labels y:
// Loss is the mean −log p[y] (p floored at minProb), the prediction the
// first most probable class. It panics if probs is not len(y)×classes or a
// label is out of range.
func EvaluateProbs(probs []float32, y []int32, classes int) Eval {
	n := len(y)
	if classes <= 0 || len(probs) != n*classes {
		panic(fmt.Sprintf("train: EvaluateProbs: %d labels × %d classes need %d probabilities, have %d",
			n, classes, n*classes, len(probs)))
	}
	e := Eval{Confusion: newConfusion(classes), Pred: make([]int32, n)}
	var loss float64
	correct := 0
	for i, t := range y {
		if t < 0 || int(t) >= classes {
			panic(fmt.Sprintf("train: EvaluateProbs: sample %d: label %d out of range [0, %d)", i, t, classes))
		}
		row := probs[i*classes : (i+1)*classes]
		loss -= math.Log(math.Max(float64(row[t]), minProb))
		p := argmax(row)
		e.Pred[i] = int32(p)
		e.Confusion[t][p]++
		if p == int(t) {
			correct++
		}
	}
	if n > 0 {
		e.Loss = loss / float64(n)
		e.Acc = float64(correct) / float64(n)
	}
	return e
}
