package train

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestLogRegGradient checks the analytic gradient against central finite
// differences at a random point, every component, with features far from
// zero mean (so the centring inside the solver is exercised).
func TestLogRegGradient(t *testing.T) {
	d := randomData(23, 7, 4, 3)
	for i := range d.X {
		d.X[i] += 3
	}
	p := newLogRegProblem(d, 4, 0.05)
	theta := make([]float64, p.size())
	for i := range theta {
		theta[i] = 0.3 * math.Sin(float64(i)*1.7)
	}
	g := make([]float64, len(theta))
	p.eval(theta, g)
	scratch := make([]float64, len(theta))
	const h = 1e-6
	for i := range theta {
		old := theta[i]
		theta[i] = old + h
		fp := p.eval(theta, scratch)
		theta[i] = old - h
		fm := p.eval(theta, scratch)
		theta[i] = old
		num := (fp - fm) / (2 * h)
		if math.Abs(num-g[i]) > 1e-6*math.Max(1, math.Abs(num)) {
			t.Errorf("component %d: analytic %.9g, finite difference %.9g", i, g[i], num)
		}
	}
}

// TestLogRegKnownOptimum: two samples x = +1 (class 0) and x = −1 (class 1)
// in one dimension. By symmetry b = 0 and W = (w, −w); the loss is
// log(1+e^(−2w)) + λw², whose minimum solves λw(1+e^(2w)) = 1, found here by
// bisection.
func TestLogRegKnownOptimum(t *testing.T) {
	for _, l2 := range []float64{0.01, 0.1, 1} {
		lo, hi := 0.0, 100.0
		for range 200 {
			m := (lo + hi) / 2
			if l2*m*(1+math.Exp(2*m)) < 1 {
				lo = m
			} else {
				hi = m
			}
		}
		want := (lo + hi) / 2
		h, info, err := FitLogReg(LogReg{L2: l2, Tol: 1e-10}, Data{X: []float32{1, -1}, Y: []int32{0, 1}, D: 1}, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !info.Converged {
			t.Errorf("λ=%g: not converged: %+v", l2, info)
		}
		if math.Abs(float64(h.W[0])-want) > 1e-6 || math.Abs(float64(h.W[1])+want) > 1e-6 || math.Abs(float64(h.B[0])) > 1e-6 || math.Abs(float64(h.B[1])) > 1e-6 {
			t.Errorf("λ=%g: W %v B %v, want (%.7f, %.7f) and 0", l2, h.W, h.B, want, -want)
		}
	}
}

// TestLogRegBeatsAdam: on the same objective (no dropout, Adam's L2 is
// λ·w on the gradient, but Adam also decays the bias, so compare the
// objective FitLogReg minimises), the exact solution is at least as low as
// the one 200 epochs of Adam reach, and its gradient is zero to tolerance.
func TestLogRegBeatsAdam(t *testing.T) {
	d := randomData(300, 64, 5, 9)
	const l2 = 1e-3
	h, info, err := FitLogReg(LogReg{L2: l2}, d, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Converged || info.GradMax > DefaultLogRegTol {
		t.Fatalf("not converged: %+v", info)
	}
	adam, _, err := Train(Config{Hyper: Hyper{LR: 0.01, BatchSize: 300, Epochs: 200}, Seed: 1}, d, Data{}, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newLogRegProblem(d, 5, l2)
	theta := make([]float64, p.size())
	g := make([]float64, p.size())
	p.fromHead(h, theta)
	fExact := p.eval(theta, g)
	p.fromHead(adam, theta)
	fAdam := p.eval(theta, g)
	t.Logf("objective: exact %.6f (%d iterations, %d evaluations), Adam %.6f", fExact, info.Iter, info.Evals, fAdam)
	if fExact > fAdam+1e-6 {
		t.Errorf("exact objective %.6f above Adam's %.6f", fExact, fAdam)
	}
}

// TestLogRegDeterministic: the head is identical bit for bit for any
// GOMAXPROCS, and a warm start from the answer stays at it.
func TestLogRegDeterministic(t *testing.T) {
	d := randomData(2000, 96, 6, 4)
	fit := func(procs int) *Head {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		h, _, err := FitLogReg(LogReg{L2: 1e-3, MaxIter: 60}, d, 6, nil)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	one := fit(1)
	for _, procs := range []int{2, 3, 8} {
		h := fit(procs)
		if !slices.Equal(h.W, one.W) || !slices.Equal(h.B, one.B) {
			t.Errorf("GOMAXPROCS=%d: head differs from GOMAXPROCS=1", procs)
		}
	}
	h, _, _ := FitLogReg(LogReg{L2: 1e-3}, d, 6, nil)
	h2, info, err := FitLogReg(LogReg{L2: 1e-3}, d, 6, h)
	if err != nil || info.Iter > 3 {
		t.Errorf("warm start from the optimum: %+v, %v", info, err)
	}
	_ = h2
}

// TestLogRegSeparates: on well-separated clusters the solver classifies
// every training sample.
func TestLogRegSeparates(t *testing.T) {
	d := separable(200, 10, 4, 2)
	h, _, err := FitLogReg(LogReg{L2: 1e-4}, d, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if acc := Evaluate(h, d).Acc; acc != 1 {
		t.Errorf("training accuracy %v, want 1", acc)
	}
}

// TestLogRegHugeFeatures: features near float32's limit, where no step the
// line search tries decreases the loss, end the solve early with a finite
// head that says it did not converge (no NaN, no panic, no hang).
func TestLogRegHugeFeatures(t *testing.T) {
	d := Data{X: []float32{3e38, -3e38, 1e38, -1e38}, Y: []int32{0, 1}, D: 2}
	h, info, err := FitLogReg(LogReg{L2: 1e-3}, d, 2, nil)
	if err != nil && !errors.Is(err, ErrDiverged) {
		t.Fatalf("error %v", err)
	}
	if err == nil && (!allFinite(h.W) || !allFinite(h.B) || info.Converged) {
		t.Errorf("head %v, %+v: want a finite head, not converged", h, info)
	}
}

func TestLogRegErrors(t *testing.T) {
	ok := Data{X: []float32{1, -1}, Y: []int32{0, 1}, D: 1}
	tests := []struct {
		name    string
		cfg     LogReg
		d       Data
		classes int
		want    string
	}{
		{"zero l2", LogReg{}, ok, 2, "L2 strength (l2) 0"},
		{"NaN l2", LogReg{L2: math.NaN()}, ok, 2, "L2 strength"},
		{"inf l2", LogReg{L2: math.Inf(1)}, ok, 2, "L2 strength"},
		{"negative iterations", LogReg{L2: 1, MaxIter: -1}, ok, 2, "iterations (max_iter) -1"},
		{"NaN tol", LogReg{L2: 1, Tol: math.NaN()}, ok, 2, "tolerance"},
		{"one class", LogReg{L2: 1}, ok, 1, "need at least 2"},
		{"label out of range", LogReg{L2: 1}, Data{X: []float32{1}, Y: []int32{2}, D: 1}, 2, "label 2 out of range"},
		{"NaN feature", LogReg{L2: 1}, Data{X: []float32{float32(math.NaN())}, Y: []int32{0}, D: 1}, 2, "is NaN"},
		{"no samples", LogReg{L2: 1}, Data{D: 1}, 2, "no samples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, err := FitLogReg(tt.cfg, tt.d, tt.classes, nil)
			if err == nil || h != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, %v; want an error containing %q", h, err, tt.want)
			}
		})
	}
}
