package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Head is the linear classifier nn.Linear(D, C): logits = W·x + B.
// Dropout has no parameters and is applied by Train only; a Head always
// computes in eval mode.
type Head struct {
	D, C int
	W    []float32 // C×D row-major, as torch Linear.weight
	B    []float32 // C
}

// NewHead returns a D→C head initialised as torch's nn.Linear: weight from
// kaiming_uniform_(a=√5), which is U(-1/√D, 1/√D), and bias from
// U(-1/√D, 1/√D). The values are drawn from the init stream of seed (weights
// row-major first, then the bias), so the same seed gives the same head.
// It panics if d or c is not positive.
func NewHead(d, c int, seed uint64) *Head {
	if d <= 0 || c <= 0 {
		panic(fmt.Sprintf("train: NewHead(%d, %d): sizes must be positive", d, c))
	}
	h := &Head{D: d, C: c, W: make([]float32, c*d), B: make([]float32, c)}
	r := rand.New(newStream(seed, streamInit))
	bound := 1 / math.Sqrt(float64(d))
	for i := range h.W {
		h.W[i] = float32(bound * (2*r.Float64() - 1))
	}
	for i := range h.B {
		h.B[i] = float32(bound * (2*r.Float64() - 1))
	}
	return h
}

// Clone returns a deep copy of h.
func (h *Head) Clone() *Head {
	return &Head{D: h.D, C: h.C, W: append([]float32(nil), h.W...), B: append([]float32(nil), h.B...)}
}

// Logits writes the n×C logits of the n×D rows of x into out. Rows are
// computed in parallel, each by one goroutine in a fixed order, so the result
// does not depend on GOMAXPROCS. It panics if x or out is too short or n < 0
// (a programming error; Train and Evaluate validate their data first).
func (h *Head) Logits(x []float32, n int, out []float32) {
	if n < 0 || len(x) < n*h.D || len(out) < n*h.C {
		panic(fmt.Sprintf("train: Logits: n=%d needs x of %d and out of %d values, have %d and %d",
			n, n*h.D, n*h.C, len(x), len(out)))
	}
	parallel(workersFor(n*h.C*h.D), n, func(lo, hi int) {
		h.logitRows(x, lo, hi, out)
	})
}

// logitRows computes the logits of rows [lo, hi) of x.
func (h *Head) logitRows(x []float32, lo, hi int, out []float32) {
	d := h.D
	i := lo
	for ; i+1 < hi; i += 2 {
		h.logits2(x[i*d:(i+1)*d], x[(i+1)*d:(i+2)*d], out[i*h.C:(i+1)*h.C], out[(i+1)*h.C:(i+2)*h.C])
	}
	if i < hi {
		h.logits1(x[i*d:(i+1)*d], out[i*h.C:(i+1)*h.C])
	}
}

// logits1 writes the C logits of one row x into o.
func (h *Head) logits1(x, o []float32) {
	d := h.D
	for k := range o {
		o[k] = dot(h.W[k*d:(k+1)*d], x) + h.B[k]
	}
}

// logits2 writes the logits of rows x and y into ox and oy.
func (h *Head) logits2(x, y, ox, oy []float32) {
	d := h.D
	oy = oy[:len(ox)]
	for k := range ox {
		a, b := dot2(h.W[k*d:(k+1)*d], x, y)
		ox[k], oy[k] = a+h.B[k], b+h.B[k]
	}
}

// Probabilities returns the n×C softmax of the logits of x (max-subtracted,
// accumulated in float64).
func (h *Head) Probabilities(x []float32, n int) []float32 {
	out := make([]float32, n*h.C)
	h.Logits(x, n, out)
	for i := range n {
		softmaxInPlace(out[i*h.C : (i+1)*h.C])
	}
	return out
}

// softmaxInPlace replaces a row of logits by its softmax.
func softmaxInPlace(row []float32) {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - m)
	}
	for k, v := range row {
		row[k] = float32(math.Exp(float64(v)-m) / sum)
	}
}

// logSumExp returns log Σ exp(l_k) of a row of logits, max-subtracted and in
// float64, so that log p_k = l_k - logSumExp(row).
func logSumExp(row []float32) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	if math.IsInf(m, 0) || math.IsNaN(m) {
		return m
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - m)
	}
	return m + math.Log(sum)
}

// argmax returns the index of the first largest value (as torch.argmax).
func argmax(row []float32) int {
	best := 0
	for k := 1; k < len(row); k++ {
		if row[k] > row[best] {
			best = k
		}
	}
	return best
}

// The dot-product kernels. Every logit is computed the same way, whichever
// kernel computes it: four float32 partial sums over j mod 4, combined as
// (s0+s1)+(s2+s3), then the tail j >= 4⌊len/4⌋ added in order. The
// independent sums keep the FP adders busy, and the fixed pattern makes dot
// and dot2 agree bit for bit, so a logit does not depend on which rows share
// a kernel call or a goroutine. The explicit float32 conversions of the
// products forbid the compiler to fuse multiply and add (it may on arm64 or
// GOAMD64=v3), which could otherwise differ between the two kernels.

// dot returns w·x.
func dot(w, x []float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	j := 0
	for ; j+3 < len(w); j += 4 {
		s0 += float32(w[j] * x[j])
		s1 += float32(w[j+1] * x[j+1])
		s2 += float32(w[j+2] * x[j+2])
		s3 += float32(w[j+3] * x[j+3])
	}
	s := (s0 + s1) + (s2 + s3)
	for ; j < len(w); j++ {
		s += float32(w[j] * x[j])
	}
	return s
}

// dot2 returns w·x and w·y, reading w once (about 12% faster than two dot
// calls when W does not fit in L1).
func dot2(w, x, y []float32) (float32, float32) {
	x = x[:len(w)]
	y = y[:len(w)]
	var a0, a1, a2, a3, b0, b1, b2, b3 float32
	j := 0
	for ; j+3 < len(w); j += 4 {
		a0 += float32(w[j] * x[j])
		a1 += float32(w[j+1] * x[j+1])
		a2 += float32(w[j+2] * x[j+2])
		a3 += float32(w[j+3] * x[j+3])
		b0 += float32(w[j] * y[j])
		b1 += float32(w[j+1] * y[j+1])
		b2 += float32(w[j+2] * y[j+2])
		b3 += float32(w[j+3] * y[j+3])
	}
	a := (a0 + a1) + (a2 + a3)
	b := (b0 + b1) + (b2 + b3)
	for ; j < len(w); j++ {
		a += float32(w[j] * x[j])
		b += float32(w[j] * y[j])
	}
	return a, b
}

// minWorkPerGoroutine is the number of multiply-adds below which a parallel
// section runs on the calling goroutine.
const minWorkPerGoroutine = 1 << 16

// workersFor returns how many goroutines a section of the given number of
// multiply-adds should use. It only affects speed: every parallel section in
// this package computes each output value wholly inside one goroutine, in an
// order fixed by the data, so results are identical for any worker count.
func workersFor(work int) int {
	w := runtime.GOMAXPROCS(0)
	if max := work / minWorkPerGoroutine; max < w {
		w = max
	}
	return max(w, 1)
}

// parallel splits [0, n) into at most workers contiguous ranges and runs fn on
// each, the first on the calling goroutine.
func parallel(workers, n int, fn func(lo, hi int)) {
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, n/workers)
	wg.Wait()
}
