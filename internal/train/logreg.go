package train

import (
	"errors"
	"fmt"
	"math"
	"runtime"
)

// LogReg configures FitLogReg, the exact solver of the head: multinomial
// logistic regression on the full batch, the linear-probe protocol. It
// minimises
//
//	f(W, b) = (1/n) Σ_i [ logΣ_k exp(z_ik) − z_i,y_i ] + (λ/2)‖W‖²,  z_i = W·x_i + b
//
// (the bias is not penalised), a strictly convex problem for λ > 0 with one
// minimum, found by L-BFGS. There is no learning rate, batch or epoch: the
// answer depends only on the data and λ.
type LogReg struct {
	L2      float64 // λ, > 0
	MaxIter int     // L-BFGS iterations at most (0: DefaultLogRegIter)
	// Tol stops the solver when the gradient's largest component is below
	// it (0: DefaultLogRegTol).
	Tol float64
}

// Defaults and bounds of LogReg.
const (
	DefaultLogRegIter = 500
	DefaultLogRegTol  = 1e-5
	MaxLogRegIter     = 100000
	lbfgsMemory       = 10 // correction pairs kept
)

// Validate checks the configuration's bounds.
func (c LogReg) Validate() error {
	var errs []error
	if !(c.L2 > 0) || math.IsInf(c.L2, 1) {
		errs = append(errs, &HyperError{Key: "l2", Words: "L2 strength", Value: c.L2, Want: "a finite positive number"})
	}
	if c.MaxIter < 0 || c.MaxIter > MaxLogRegIter {
		errs = append(errs, &HyperError{Key: "max_iter", Words: "iterations", Value: c.MaxIter, Want: fmt.Sprintf("in [0, %d] (0: %d)", MaxLogRegIter, DefaultLogRegIter)})
	}
	if !(c.Tol >= 0) || math.IsInf(c.Tol, 1) {
		errs = append(errs, &HyperError{Key: "tol", Words: "tolerance", Value: c.Tol, Want: "a finite non-negative number"})
	}
	return errors.Join(errs...)
}

// LogRegInfo says how the solver ended.
type LogRegInfo struct {
	Iter      int     // L-BFGS iterations done
	Evals     int     // objective and gradient evaluations
	Objective float64 // f at the answer
	GradMax   float64 // the gradient's largest |component| at the answer
	Converged bool    // GradMax ≤ Tol
}

// FitLogReg solves the head exactly on d (see LogReg) and returns it. The
// features are centred inside the solver (the same minimum, better
// conditioned); the returned head applies to the raw features. Arithmetic is
// float64; the parallel sections compute every value wholly in one goroutine
// in an order fixed by the data and every sum is sequential, so the head is
// identical bit for bit for any GOMAXPROCS. The result starts from zero
// weights unless warm is a head of the same shape (a previous λ of a path).
func FitLogReg(cfg LogReg, d Data, classes int, warm *Head) (*Head, LogRegInfo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, LogRegInfo{}, fmt.Errorf("train: %w", err)
	}
	if classes < 2 {
		return nil, LogRegInfo{}, fmt.Errorf("train: %d classes, need at least 2", classes)
	}
	if err := d.check(classes); err != nil {
		return nil, LogRegInfo{}, fmt.Errorf("train: training data: %w", err)
	}
	if cfg.MaxIter == 0 {
		cfg.MaxIter = DefaultLogRegIter
	}
	if cfg.Tol == 0 {
		cfg.Tol = DefaultLogRegTol
	}
	p := newLogRegProblem(d, classes, cfg.L2)
	theta := make([]float64, p.size())
	if warm != nil && warm.D == d.D && warm.C == classes {
		p.fromHead(warm, theta)
	}
	info := lbfgs(p, theta, cfg.MaxIter, cfg.Tol)
	h := p.toHead(theta)
	if !finite(info.Objective) || !finite(info.GradMax) || !allFinite(h.W) || !allFinite(h.B) {
		return nil, info, fmt.Errorf("train: lbfgs (l2 %g): %w (objective %v, gradient %v): features too large?", cfg.L2, ErrDiverged, info.Objective, info.GradMax)
	}
	return h, info, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func allFinite(v []float32) bool {
	for _, x := range v {
		if x-x != 0 {
			return false
		}
	}
	return true
}

// logRegProblem is f and its gradient on one data set. θ is W (C×D,
// row-major, for centred features) followed by b̃ (C).
type logRegProblem struct {
	x       []float32
	y       []int32
	n, d    int
	c       int
	l2      float64
	mu      []float64 // feature means
	z       []float64 // n×C logits, then the residuals (p − onehot)/n
	loss    []float64 // per-sample loss
	rsum    []float64 // Σ_i residual_ik per class
	theta   []float64 // the point being evaluated (read by the sections)
	grad    []float64
	workers int
}

func newLogRegProblem(d Data, classes int, l2 float64) *logRegProblem {
	n := d.N()
	p := &logRegProblem{
		x: d.X, y: d.Y, n: n, d: d.D, c: classes, l2: l2,
		mu:   make([]float64, d.D),
		z:    make([]float64, n*classes),
		loss: make([]float64, n),
		rsum: make([]float64, classes),
	}
	for i := range n {
		row := d.X[i*d.D : (i+1)*d.D]
		for j, v := range row {
			p.mu[j] += float64(v)
		}
	}
	for j := range p.mu {
		p.mu[j] /= float64(n)
	}
	p.workers = min(runtime.GOMAXPROCS(0), max(n*classes*d.D/minWorkPerGoroutine, 1))
	return p
}

func (p *logRegProblem) size() int { return p.c*p.d + p.c }

// eval returns f(θ) and writes its gradient into grad.
func (p *logRegProblem) eval(theta, grad []float64) float64 {
	p.theta, p.grad = theta, grad
	d, c := p.d, p.c
	w, bt := theta[:c*d], theta[c*d:]
	// The bias of the raw features: b = b̃ − W·μ.
	b := make([]float64, c)
	for k := range c {
		b[k] = bt[k] - dot64(w[k*d:(k+1)*d], p.mu)
	}
	inv := 1 / float64(p.n)
	parallel(p.workers, p.n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := p.x[i*d : (i+1)*d]
			z := p.z[i*c : (i+1)*c]
			m := math.Inf(-1)
			for k := range c {
				z[k] = dotMixed(w[k*d:(k+1)*d], x) + b[k]
				m = math.Max(m, z[k])
			}
			var s float64
			for k := range c {
				s += math.Exp(z[k] - m)
			}
			lse := m + math.Log(s)
			y := int(p.y[i])
			p.loss[i] = lse - z[y]
			for k := range c {
				r := math.Exp(z[k] - lse)
				if k == y {
					r--
				}
				z[k] = r * inv
			}
		}
	})
	var f, reg float64
	for _, l := range p.loss {
		f += l
	}
	f *= inv
	for _, v := range w {
		reg += v * v
	}
	f += 0.5 * p.l2 * reg
	// ∂f/∂W_k = Σ_i r_ik (x_i − μ) + λ W_k; ∂f/∂b̃_k = Σ_i r_ik. Classes are
	// split among the goroutines in blocks of four, each block reading a
	// sample's row once.
	blocks := (c + 3) / 4
	parallel(min(p.workers, blocks), blocks, func(lo, hi int) {
		for blk := lo; blk < hi; blk++ {
			p.gradBlock(4*blk, min(4*blk+4, c))
		}
	})
	return f
}

// gradBlock computes the gradient rows of classes [k0, k1), at most four.
func (p *logRegProblem) gradBlock(k0, k1 int) {
	d, c := p.d, p.c
	var g [4][]float64
	for k := k0; k < k1; k++ {
		g[k-k0] = p.grad[k*d : (k+1)*d]
		clear(g[k-k0])
		p.rsum[k] = 0
	}
	for i := range p.n {
		x := p.x[i*d : (i+1)*d]
		r := p.z[i*c : (i+1)*c]
		switch k1 - k0 {
		case 4:
			a0, a1, a2, a3 := r[k0], r[k0+1], r[k0+2], r[k0+3]
			g0, g1, g2, g3 := g[0][:d], g[1][:d], g[2][:d], g[3][:d]
			for j, v := range x[:d] {
				xv := float64(v)
				g0[j] += a0 * xv
				g1[j] += a1 * xv
				g2[j] += a2 * xv
				g3[j] += a3 * xv
			}
		default:
			for k := k0; k < k1; k++ {
				a, gk := r[k], g[k-k0][:d]
				for j, v := range x[:d] {
					gk[j] += a * float64(v)
				}
			}
		}
		for k := k0; k < k1; k++ {
			p.rsum[k] += r[k]
		}
	}
	w := p.theta[:c*d]
	for k := k0; k < k1; k++ {
		gk, wk, s := g[k-k0], w[k*d:(k+1)*d], p.rsum[k]
		for j := range gk {
			gk[j] += p.l2*wk[j] - s*p.mu[j]
		}
		p.grad[c*d+k] = s
	}
}

// toHead converts θ into a head on the raw features.
func (p *logRegProblem) toHead(theta []float64) *Head {
	d, c := p.d, p.c
	h := &Head{D: d, C: c, W: make([]float32, c*d), B: make([]float32, c)}
	for i, v := range theta[:c*d] {
		h.W[i] = float32(v)
	}
	for k := range c {
		h.B[k] = float32(theta[c*d+k] - dot64(theta[k*d:(k+1)*d], p.mu))
	}
	return h
}

// fromHead sets θ from a head on the raw features.
func (p *logRegProblem) fromHead(h *Head, theta []float64) {
	d, c := p.d, p.c
	for i, v := range h.W {
		theta[i] = float64(v)
	}
	for k := range c {
		theta[c*d+k] = float64(h.B[k]) + dot64(theta[k*d:(k+1)*d], p.mu)
	}
}

// dot64 returns a·b in float64, four partial sums as dot.
func dot64(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+3 < len(a); j += 4 {
		s0 += a[j] * b[j]
		s1 += a[j+1] * b[j+1]
		s2 += a[j+2] * b[j+2]
		s3 += a[j+3] * b[j+3]
	}
	s := (s0 + s1) + (s2 + s3)
	for ; j < len(a); j++ {
		s += a[j] * b[j]
	}
	return s
}

// dotMixed returns w·x in float64 for float32 x.
func dotMixed(w []float64, x []float32) float64 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+3 < len(w); j += 4 {
		s0 += w[j] * float64(x[j])
		s1 += w[j+1] * float64(x[j+1])
		s2 += w[j+2] * float64(x[j+2])
		s3 += w[j+3] * float64(x[j+3])
	}
	s := (s0 + s1) + (s2 + s3)
	for ; j < len(w); j++ {
		s += w[j] * float64(x[j])
	}
	return s
}

// objective is what lbfgs minimises: f(θ), with its gradient written into
// grad.
type objective interface {
	eval(theta, grad []float64) float64
}

// lbfgs minimises f from θ (updated in place) with limited-memory BFGS
// (Nocedal and Wright, algorithm 7.4: the two-loop recursion, H₀ = γI with
// γ = sᵀy/yᵀy) and a backtracking line search on the Armijo condition. A
// pair with sᵀy ≤ 0 (impossible for a strictly convex f but for rounding)
// is not stored. It stops at ‖∇f‖∞ ≤ tol, after maxIter iterations, or when
// the line search can no longer decrease f.
func lbfgs(f objective, theta []float64, maxIter int, tol float64) LogRegInfo {
	n := len(theta)
	g := make([]float64, n)
	fx := f.eval(theta, g)
	info := LogRegInfo{Evals: 1}
	var (
		s, y  [lbfgsMemory][]float64
		rho   [lbfgsMemory]float64
		alpha [lbfgsMemory]float64
		head  int // next slot
		count int // stored pairs
	)
	for i := range lbfgsMemory {
		s[i], y[i] = make([]float64, n), make([]float64, n)
	}
	dir := make([]float64, n)
	xNew := make([]float64, n)
	gNew := make([]float64, n)
	for info.Iter < maxIter {
		if infNorm(g) <= tol {
			break
		}
		// dir = −H·g by the two-loop recursion.
		for i := range dir {
			dir[i] = -g[i]
		}
		for j := range count {
			k := (head - 1 - j + lbfgsMemory) % lbfgsMemory
			alpha[k] = rho[k] * dot64(s[k], dir)
			axpy(-alpha[k], y[k], dir)
		}
		if count > 0 {
			k := (head - 1 + lbfgsMemory) % lbfgsMemory
			scale(dot64(s[k], y[k])/dot64(y[k], y[k]), dir)
		} else {
			scale(1/math.Max(norm2(g), 1), dir)
		}
		for j := count - 1; j >= 0; j-- {
			k := (head - 1 - j + lbfgsMemory) % lbfgsMemory
			beta := rho[k] * dot64(y[k], dir)
			axpy(alpha[k]-beta, s[k], dir)
		}
		slope := dot64(g, dir)
		if !(slope < 0) { // not a descent direction: restart from −g
			count = 0
			for i := range dir {
				dir[i] = -g[i]
			}
			scale(1/math.Max(norm2(g), 1), dir)
			slope = dot64(g, dir)
		}
		// Backtracking: the first step satisfying Armijo's condition.
		step, fNew, ok := 1.0, 0.0, false
		for range 40 {
			for i := range xNew {
				xNew[i] = theta[i] + step*dir[i]
			}
			fNew = f.eval(xNew, gNew)
			info.Evals++
			if fNew <= fx+1e-4*step*slope {
				ok = true
				break
			}
			step *= 0.5
		}
		if !ok {
			break // no decrease is representable any more
		}
		k := head
		var sy float64
		for i := range theta {
			s[k][i] = xNew[i] - theta[i]
			y[k][i] = gNew[i] - g[i]
		}
		sy = dot64(s[k], y[k])
		if sy > 0 {
			rho[k] = 1 / sy
			head = (head + 1) % lbfgsMemory
			count = min(count+1, lbfgsMemory)
		}
		copy(theta, xNew)
		copy(g, gNew)
		improved := fx - fNew
		fx = fNew
		info.Iter++
		if improved <= 1e-15*math.Max(math.Abs(fx), 1) {
			break
		}
	}
	info.Objective = fx
	info.GradMax = infNorm(g)
	info.Converged = info.GradMax <= tol
	return info
}

func axpy(a float64, x, y []float64) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
}

func scale(a float64, x []float64) {
	for i := range x {
		x[i] *= a
	}
}

func norm2(x []float64) float64 { return math.Sqrt(dot64(x, x)) }

func infNorm(x []float64) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}
