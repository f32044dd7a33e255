package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"
)

// ErrDiverged is wrapped by the error Train returns when the loss stops being
// finite.
var ErrDiverged = errors.New("training diverged")

// Config is a training run's hyper-parameters and its seed.
type Config struct {
	Hyper
	Seed uint64
}

// Adam's constants (torch.optim.Adam defaults).
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// Validate checks c's hyper-parameters (Hyper.Validate), every field out of
// bounds named.
func (c Config) Validate() error {
	if err := c.Hyper.Validate(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// Data is a set of n samples: X holds n rows of D features, row-major, and Y
// their labels in [0, C).
type Data struct {
	X []float32
	Y []int32
	D int
}

// N returns the number of samples.
func (d Data) N() int { return len(d.Y) }

// check says why d is not a non-empty set of finite D-dimensional rows
// with labels in [0, classes), or returns nil.
func (d Data) check(classes int) error {
	switch {
	case d.D <= 0:
		return fmt.Errorf("feature dimension %d must be positive", d.D)
	case len(d.Y) == 0:
		return errors.New("no samples")
	case len(d.X) != len(d.Y)*d.D:
		return fmt.Errorf("%d labels of %d features need %d values, X has %d",
			len(d.Y), d.D, len(d.Y)*d.D, len(d.X))
	}
	for i, y := range d.Y {
		if y < 0 || int(y) >= classes {
			return fmt.Errorf("sample %d: label %d out of range [0, %d)", i, y, classes)
		}
	}
	for i, v := range d.X {
		if v-v != 0 { // NaN or ±Inf
			return fmt.Errorf("sample %d, feature %d is %v", i/d.D, i%d.D, v)
		}
	}
	return nil
}

// Epoch records one epoch. TrainLoss and TrainAcc are the means over the
// epoch's samples of the training-mode (dropout on) batch losses and
// predictions, computed before each batch's update, as the PyTorch loop's
// running_loss/running_corrects; ValLoss and ValAcc are computed in eval mode
// after the epoch. Both losses use the training criterion (so they include
// label smoothing when it is on). Accuracies are fractions in [0, 1].
type Epoch struct {
	Epoch                                int // 1-based
	TrainLoss, TrainAcc, ValLoss, ValAcc float64
	Duration                             time.Duration // training and validation
}

// Train trains a head of classes outputs on train, validating on val after
// every epoch, and calls onEpoch (if not nil) after each one. It returns the
// head (see Config.Patience) and the history of the epochs run.
//
// Both data sets must be non-empty sets of finite rows of the same D with
// labels in [0, classes), except that
// val may be empty when Patience is 0 (a final refit on all the data): the
// epochs' validation metrics are then NaN. A loss that is no longer finite stops
// training with an error wrapping ErrDiverged ("training diverged") that names
// the epoch. On error the head is nil and the history holds the epochs
// completed.
func Train(cfg Config, train, val Data, classes int, onEpoch func(Epoch)) (*Head, []Epoch, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if classes < 2 {
		return nil, nil, fmt.Errorf("train: %d classes, need at least 2", classes)
	}
	if err := train.check(classes); err != nil {
		return nil, nil, fmt.Errorf("train: training data: %w", err)
	}
	// Without validation data (a final refit on everything) there are no
	// validation metrics (they are NaN), so no early stopping either.
	hasVal := val.N() > 0 || len(val.X) > 0
	if !hasVal && cfg.Patience > 0 {
		return nil, nil, errors.New("train: early stopping (Patience) needs validation data")
	}
	if !hasVal {
		val.D = train.D
	} else if err := val.check(classes); err != nil {
		return nil, nil, fmt.Errorf("train: validation data: %w", err)
	}
	if val.D != train.D {
		return nil, nil, fmt.Errorf("train: validation rows have %d features, training rows %d", val.D, train.D)
	}

	// The forward section has BatchSize/2 chunks and the update section one
	// per class: more goroutines than that would idle.
	tm := newTeam(min(runtime.GOMAXPROCS(0), classes, (min(cfg.BatchSize, train.N())+1)/2))
	defer tm.close()
	t := newTrainer(cfg, train, classes, tm)
	shuffle := rand.New(newStream(cfg.Seed, streamShuffle))
	n := train.N()
	perm := make([]int32, n)
	valLogits := make([]float32, val.N()*classes)
	var history []Epoch
	var best *Head
	bestLoss, stale := math.Inf(1), 0

	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		start := time.Now()
		for i := range perm {
			perm[i] = int32(i)
		}
		shuffle.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })

		var lossSum float64
		var correct int
		for b := 0; b < n; b += cfg.BatchSize {
			l, c := t.step(perm[b:min(b+cfg.BatchSize, n)])
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return nil, history, fmt.Errorf("train: epoch %d, batch %d: %w (loss %v)",
					epoch, b/cfg.BatchSize+1, ErrDiverged, l)
			}
			lossSum += l
			correct += c
		}
		ev := Eval{Loss: math.NaN(), Acc: math.NaN()}
		if hasVal {
			ev = evaluate(t.h, val, cfg.LabelSmoothing, valLogits, tm)
		}
		if hasVal && (math.IsNaN(ev.Loss) || math.IsInf(ev.Loss, 0)) {
			return nil, history, fmt.Errorf("train: epoch %d, validation: %w (loss %v)", epoch, ErrDiverged, ev.Loss)
		}
		e := Epoch{
			Epoch:     epoch,
			TrainLoss: lossSum / float64(n),
			TrainAcc:  float64(correct) / float64(n),
			ValLoss:   ev.Loss,
			ValAcc:    ev.Acc,
			Duration:  time.Since(start),
		}
		history = append(history, e)
		if onEpoch != nil {
			onEpoch(e)
		}
		if cfg.Patience > 0 {
			if e.ValLoss < bestLoss {
				bestLoss, stale = e.ValLoss, 0
				best = t.h.Clone()
			} else if stale++; stale >= cfg.Patience {
				break
			}
		}
	}
	if cfg.Patience > 0 {
		return best, history, nil
	}
	return t.h, history, nil
}

// trainer holds the head, the optimiser state and the per-batch buffers.
// Nothing is allocated per batch or per sample.
//
// A step has two parallel sections (see team). The forward section's chunks
// are pairs of samples: a chunk draws their dropout masks and computes their
// logits, losses and ∂loss/∂logits. The update section's chunks are classes:
// a chunk computes the gradient of one row of W and of B (summing over the
// samples in batch order) and applies the Adam update to it. Every value is
// thus computed by exactly one goroutine in an order fixed by the data, which
// makes the result independent of the number of goroutines.
type trainer struct {
	cfg  Config
	h    *Head
	data Data
	team *team

	mW, vW, mB, vB []float32 // Adam moments
	gW, gB         []float32 // gradient of the last batch (C×D, C)
	steps          int
	sc             adamScalars // of the current step

	idx     []int32     // the current batch's sample indices
	rows    [][]float32 // the batch's (dropped-out) input rows
	xd      []float32   // BatchSize×D dropout buffer
	logits  []float32   // BatchSize×C
	dlog    []float32   // ∂loss/∂logits, BatchSize×C
	loss    []float64   // per-sample loss
	correct []bool      // per-sample training-mode prediction is right

	dropKey    uint64
	dropThresh uint32  // a feature is dropped when a uniform uint32 is below it
	dropScale  float32 // 1/(1-p)
	seen       uint64  // samples presented before the current batch

	forwardPart, updatePart func(i int) // method values, bound once
}

func newTrainer(cfg Config, data Data, classes int, tm *team) *trainer {
	d, c, bs := data.D, classes, min(cfg.BatchSize, data.N())
	cfg.BatchSize = bs
	t := &trainer{
		cfg:     cfg,
		h:       NewHead(d, c, cfg.Seed),
		data:    data,
		team:    tm,
		mW:      make([]float32, c*d),
		vW:      make([]float32, c*d),
		mB:      make([]float32, c),
		vB:      make([]float32, c),
		gW:      make([]float32, c*d),
		gB:      make([]float32, c),
		rows:    make([][]float32, bs),
		logits:  make([]float32, bs*c),
		dlog:    make([]float32, bs*c),
		loss:    make([]float64, bs),
		correct: make([]bool, bs),
	}
	if cfg.Dropout > 0 {
		t.xd = make([]float32, bs*d)
		t.dropKey = newStream(cfg.Seed, streamDropout).Uint64()
		t.dropThresh = uint32(min(math.Round(cfg.Dropout*(1<<32)), math.MaxUint32))
		t.dropScale = float32(1 / (1 - cfg.Dropout))
	}
	t.forwardPart = t.forwardPair
	t.updatePart = t.updateClass
	return t
}

// step runs one training step on the samples idx: dropout, forward, loss,
// backward and the optimiser update. It returns the sum over the batch of the
// per-sample losses (before the update) and the number of correct
// training-mode predictions.
func (t *trainer) step(idx []int32) (lossSum float64, correct int) {
	lossSum, correct = t.forward(idx)
	t.steps++
	t.sc = t.adamScalars()
	t.team.run(t.h.C, t.updatePart)
	return lossSum, correct
}

// forward computes the logits, losses and ∂loss/∂logits of the batch idx
// (training mode) and returns the batch's loss sum and correct count.
func (t *trainer) forward(idx []int32) (lossSum float64, correct int) {
	t.idx = idx
	t.team.run((len(idx)+1)/2, t.forwardPart)
	t.seen += uint64(len(idx))
	for i := range idx {
		lossSum += t.loss[i]
		if t.correct[i] {
			correct++
		}
	}
	return lossSum, correct
}

// forwardPair is the forward section's chunk i: samples 2i and 2i+1 of the
// batch (or 2i alone at the end of an odd batch).
func (t *trainer) forwardPair(i int) {
	lo, hi := 2*i, min(2*i+2, len(t.idx))
	d, c := t.h.D, t.h.C
	x := t.data.X
	for s := lo; s < hi; s++ {
		src := x[int(t.idx[s])*d : int(t.idx[s]+1)*d]
		if t.cfg.Dropout == 0 {
			t.rows[s] = src
			continue
		}
		// Each sample's mask comes from its own PCG, seeded by its position
		// in the run.
		var p rand.PCG
		seedSample(&p, t.dropKey, t.seen+uint64(s))
		row := t.xd[s*d : (s+1)*d]
		dropRow(row, src, &p, t.dropThresh, t.dropScale)
		t.rows[s] = row
	}
	if hi-lo == 2 {
		t.h.logits2(t.rows[lo], t.rows[lo+1], t.logits[lo*c:(lo+1)*c], t.logits[(lo+1)*c:(lo+2)*c])
	} else {
		t.h.logits1(t.rows[lo], t.logits[lo*c:(lo+1)*c])
	}
	inv := 1 / float64(len(t.idx))
	eps := t.cfg.LabelSmoothing
	for s := lo; s < hi; s++ {
		out := t.logits[s*c : (s+1)*c]
		y := int(t.data.Y[t.idx[s]])
		loss, lse := crossEntropy(out, y, eps)
		t.loss[s] = loss
		t.correct[s] = argmax(out) == y
		g := t.dlog[s*c : (s+1)*c]
		for k, v := range out {
			q := eps / float64(c)
			if k == y {
				q += 1 - eps
			}
			g[k] = float32((math.Exp(float64(v)-lse) - q) * inv)
		}
	}
}

// updateClass is the update section's chunk k: the gradient and the
// optimiser update of W's row k and B[k].
func (t *trainer) updateClass(k int) {
	t.gradRow(k, len(t.idx))
	t.adamRow(k, t.sc)
}

// crossEntropy returns the loss of one row of logits against label y with
// label smoothing eps (torch's definition: (1−ε)·(−log p_y) + ε/C·Σ_k −log p_k)
// and the row's log-sum-exp.
func crossEntropy(logits []float32, y int, eps float64) (loss, lse float64) {
	lse = logSumExp(logits)
	loss = lse - float64(logits[y])
	if eps != 0 {
		var sum float64
		for _, v := range logits {
			sum += lse - float64(v)
		}
		loss = (1-eps)*loss + eps*sum/float64(len(logits))
	}
	return loss, lse
}

// dropRow writes src with inverted dropout into dst: each feature is zeroed
// with probability thresh/2³² (≈ p) and otherwise multiplied by scale. One
// Uint64 gives the decisions of two features (its low then high 32 bits).
func dropRow(dst, src []float32, p *rand.PCG, thresh uint32, scale float32) {
	src = src[:len(dst)]
	j := 0
	for ; j+1 < len(dst); j += 2 {
		u := p.Uint64()
		if uint32(u) >= thresh {
			dst[j] = src[j] * scale
		} else {
			dst[j] = 0
		}
		if uint32(u>>32) >= thresh {
			dst[j+1] = src[j+1] * scale
		} else {
			dst[j+1] = 0
		}
	}
	if j < len(dst) {
		if uint32(p.Uint64()) >= thresh {
			dst[j] = src[j] * scale
		} else {
			dst[j] = 0
		}
	}
}

// gradRow computes the gradient of the mean batch loss with respect to W's row
// k and B[k] into t.gW and t.gB: Σ_i dlog[i,k]·x_i, accumulated in float32
// over the samples in batch order (four samples per pass over the row, added
// left to right, which rounds exactly as adding them one at a time).
func (t *trainer) gradRow(k, n int) {
	d, c := t.h.D, t.h.C
	g := t.gW[k*d : (k+1)*d]
	clear(g)
	rows := t.rows[:n]
	i := 0
	for ; i+3 < n; i += 4 {
		a0, a1, a2, a3 := t.dlog[i*c+k], t.dlog[(i+1)*c+k], t.dlog[(i+2)*c+k], t.dlog[(i+3)*c+k]
		x0, x1, x2, x3 := rows[i][:d], rows[i+1][:d], rows[i+2][:d], rows[i+3][:d]
		for j := range g {
			g[j] = g[j] + float32(a0*x0[j]) + float32(a1*x1[j]) + float32(a2*x2[j]) + float32(a3*x3[j])
		}
	}
	for ; i < n; i++ {
		a, x := t.dlog[i*c+k], rows[i][:d]
		for j := range g {
			g[j] += float32(a * x[j])
		}
	}
	var gb float32
	for i := range n {
		gb += t.dlog[i*c+k]
	}
	t.gB[k] = gb
}

// adamScalars are the per-step constants of the Adam update, rounded to
// float32 as torch does when it applies a Python scalar to a float32 tensor.
type adamScalars struct {
	oneMinusB1, b2, oneMinusB2 float32
	stepSize, bc2Sqrt, eps     float32
	l2, decay                  float32 // L2 coefficient (Adam), multiplicative decay (AdamW)
}

func (t *trainer) adamScalars() adamScalars {
	step := float64(t.steps)
	bc1 := 1 - math.Pow(adamBeta1, step)
	bc2 := 1 - math.Pow(adamBeta2, step)
	sc := adamScalars{
		oneMinusB1: float32(1 - adamBeta1),
		b2:         float32(adamBeta2),
		oneMinusB2: float32(1 - adamBeta2),
		stepSize:   float32(t.cfg.LR / bc1),
		bc2Sqrt:    float32(math.Sqrt(bc2)),
		eps:        float32(adamEps),
		decay:      1,
	}
	if t.cfg.AdamW {
		sc.decay = float32(1 - t.cfg.LR*t.cfg.WeightDecay)
	} else {
		sc.l2 = float32(t.cfg.WeightDecay)
	}
	return sc
}

// adamRow applies the Adam (or AdamW) update to W's row k and B[k].
func (t *trainer) adamRow(k int, sc adamScalars) {
	d := t.h.D
	lo, hi := k*d, (k+1)*d
	adamUpdate(t.h.W[lo:hi], t.gW[lo:hi], t.mW[lo:hi], t.vW[lo:hi], sc)
	adamUpdate(t.h.B[k:k+1], t.gB[k:k+1], t.mB[k:k+1], t.vB[k:k+1], sc)
}

// adamUpdate is torch.optim.Adam's _single_tensor_adam (and AdamW's), element
// by element in float32:
//
//	g += l2·p                      (Adam weight_decay)
//	p *= decay                     (AdamW: 1 − lr·weight_decay)
//	m = m + (1−β1)·(g − m)         (exp_avg.lerp_)
//	v = v·β2 + (1−β2)·g·g          (exp_avg_sq.mul_.addcmul_)
//	p = p − stepSize·m/(√v/√bc2 + ε), stepSize = lr/bc1
func adamUpdate(p, g, m, v []float32, sc adamScalars) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for j := range p {
		gj := g[j]
		if sc.l2 != 0 {
			gj += sc.l2 * p[j]
		}
		pj := p[j]
		if sc.decay != 1 {
			pj *= sc.decay
		}
		mj := m[j] + sc.oneMinusB1*(gj-m[j])
		vj := v[j]*sc.b2 + sc.oneMinusB2*gj*gj
		denom := float32(math.Sqrt(float64(vj)))/sc.bc2Sqrt + sc.eps
		p[j] = pj - sc.stepSize*(mj/denom)
		m[j], v[j] = mj, vj
	}
}
