package train

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// refLoss is a float64 reference of the mean cross-entropy (with label
// smoothing eps) of the head (w C×D, b) on rows.
func refLoss(w, b []float64, rows [][]float64, y []int32, eps float64) float64 {
	c := len(b)
	var total float64
	for i, x := range rows {
		logits := make([]float64, c)
		m := math.Inf(-1)
		for k := range c {
			s := b[k]
			for j, v := range x {
				s += w[k*len(x)+j] * v
			}
			logits[k] = s
			m = math.Max(m, s)
		}
		var sum float64
		for _, l := range logits {
			sum += math.Exp(l - m)
		}
		lse := m + math.Log(sum)
		var mean float64
		for _, l := range logits {
			mean += (lse - l) / float64(c)
		}
		total += (1-eps)*(lse-logits[y[i]]) + eps*mean
	}
	return total / float64(len(rows))
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// separable returns n samples of c well-separated Gaussian clusters in d
// dimensions.
func separable(n, d, c int, seed uint64) Data {
	r := rand.New(rand.NewPCG(seed, 7))
	centres := make([]float64, c*d)
	for i := range centres {
		centres[i] = 2 * r.NormFloat64()
	}
	x := make([]float32, n*d)
	y := make([]int32, n)
	for i := range n {
		k := r.IntN(c)
		y[i] = int32(k)
		for j := range d {
			x[i*d+j] = float32(centres[k*d+j] + 0.1*r.NormFloat64())
		}
	}
	return Data{X: x, Y: y, D: d}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Hyper: Hyper{LR: 0.001, BatchSize: 32, Epochs: 10, Dropout: 0.2}}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"adamw", func(c *Config) { c.AdamW, c.WeightDecay = true, 0.01 }, ""},
		{"full smoothing", func(c *Config) { c.LabelSmoothing = 1 }, ""},
		{"zero lr", func(c *Config) { c.LR = 0 }, "learning rate"},
		{"nan lr", func(c *Config) { c.LR = math.NaN() }, "learning rate"},
		{"inf lr", func(c *Config) { c.LR = math.Inf(1) }, "learning rate"},
		{"zero batch", func(c *Config) { c.BatchSize = 0 }, "batch size"},
		{"zero epochs", func(c *Config) { c.Epochs = 0 }, "epochs"},
		{"dropout 1", func(c *Config) { c.Dropout = 1 }, "dropout"},
		{"negative dropout", func(c *Config) { c.Dropout = -0.1 }, "dropout"},
		{"nan dropout", func(c *Config) { c.Dropout = math.NaN() }, "dropout"},
		{"negative decay", func(c *Config) { c.WeightDecay = -1 }, "weight decay"},
		{"negative patience", func(c *Config) { c.Patience = -1 }, "patience"},
		{"smoothing > 1", func(c *Config) { c.LabelSmoothing = 1.5 }, "label smoothing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate() = %v, want an error about %s", err, tc.field)
			}
		})
	}
}

func TestTrainInputErrors(t *testing.T) {
	good := separable(20, 4, 3, 1)
	cfg := Config{Hyper: Hyper{LR: 0.01, BatchSize: 8, Epochs: 1}}
	nan := Data{X: append([]float32(nil), good.X...), Y: good.Y, D: good.D}
	nan.X[5] = float32(math.NaN())
	inf := Data{X: append([]float32(nil), good.X...), Y: good.Y, D: good.D}
	inf.X[7] = float32(math.Inf(-1))
	badLabel := Data{X: good.X, Y: append([]int32(nil), good.Y...), D: good.D}
	badLabel.Y[3] = 3
	negLabel := Data{X: good.X, Y: append([]int32(nil), good.Y...), D: good.D}
	negLabel.Y[0] = -1
	tests := []struct {
		name       string
		cfg        Config
		train, val Data
		classes    int
		want       string
	}{
		{"bad config", Config{Hyper: Hyper{LR: -1, BatchSize: 8, Epochs: 1}}, good, good, 3, "learning rate"},
		{"empty train", cfg, Data{D: 4}, good, 3, "no samples"},
		{"empty val with early stopping", func() Config { c := cfg; c.Patience = 2; return c }(), good, Data{D: 4}, 3, "needs validation"},
		{"nil data", cfg, Data{}, good, 3, "feature dimension"},
		{"short X", cfg, Data{X: good.X[:10], Y: good.Y, D: 4}, good, 3, "X has 10"},
		{"D mismatch", cfg, good, Data{X: good.X, Y: good.Y[:16], D: 5}, 3, "features"},
		{"label too large", cfg, badLabel, good, 3, "label 3 out of range"},
		{"negative label", cfg, good, negLabel, 3, "label -1 out of range"},
		{"NaN feature", cfg, nan, good, 3, "NaN"},
		{"Inf feature", cfg, good, inf, 3, "-Inf"},
		{"one class", cfg, good, good, 1, "classes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, _, err := Train(tc.cfg, tc.train, tc.val, tc.classes, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Train error = %v, want one containing %q", err, tc.want)
			}
			if h != nil {
				t.Fatal("Train returned a head with an error")
			}
		})
	}
}

// TestGradient checks the analytic gradient of the batch loss (float32 path)
// against central finite differences of a float64 reference loss.
func TestGradient(t *testing.T) {
	tests := []struct {
		name           string
		n, d, c        int
		dropout, label float64
	}{
		{"plain", 6, 7, 5, 0, 0},
		{"smoothing", 6, 7, 5, 0, 0.1},
		{"dropout", 9, 13, 4, 0.3, 0},
		{"dropout+smoothing, one sample", 1, 5, 3, 0.5, 0.2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := randomData(tc.n, tc.d, tc.c, 5)
			cfg := Config{Hyper: Hyper{LR: 0.01, BatchSize: tc.n, Epochs: 1, Dropout: tc.dropout, LabelSmoothing: tc.label}, Seed: 9}
			tr := newTrainer(cfg, data, tc.c, newTeam(1))
			// Spread the weights so the softmax is not uniform.
			for i := range tr.h.W {
				tr.h.W[i] *= 5
			}
			idx := make([]int32, tc.n)
			for i := range idx {
				idx[i] = int32(tc.n - 1 - i)
			}
			loss, _ := tr.forward(idx)
			for k := range tc.c {
				tr.gradRow(k, tc.n)
			}
			rows := make([][]float64, tc.n)
			y := make([]int32, tc.n)
			for i := range rows {
				rows[i] = to64(tr.rows[i])
				y[i] = data.Y[idx[i]]
			}
			w, b := to64(tr.h.W), to64(tr.h.B)
			if ref := refLoss(w, b, rows, y, tc.label); math.Abs(loss/float64(tc.n)-ref) > 1e-5*math.Max(1, ref) {
				t.Errorf("loss %v, reference %v", loss/float64(tc.n), ref)
			}
			const h = 1e-6
			check := func(name string, p []float64, i int, got float32) {
				old := p[i]
				p[i] = old + h
				up := refLoss(w, b, rows, y, tc.label)
				p[i] = old - h
				down := refLoss(w, b, rows, y, tc.label)
				p[i] = old
				num := (up - down) / (2 * h)
				if math.Abs(float64(got)-num) > 1e-6+1e-4*math.Abs(num) {
					t.Errorf("∂loss/∂%s[%d] = %v, finite difference %v", name, i, got, num)
				}
			}
			for i := range w {
				check("W", w, i, tr.gW[i])
			}
			for i := range b {
				check("B", b, i, tr.gB[i])
			}
		})
	}
}

func trainBits(t *testing.T, cfg Config, train, val Data, c int) (*Head, []Epoch) {
	t.Helper()
	h, hist, err := Train(cfg, train, val, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h, hist
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestDeterminism(t *testing.T) {
	// Odd sizes: a partial last batch, D not a multiple of 4.
	train := randomData(301, 67, 5, 1)
	val := randomData(53, 67, 5, 2)
	cfg := Config{Hyper: Hyper{LR: 0.005, BatchSize: 32, Epochs: 3, Dropout: 0.2, WeightDecay: 1e-4, LabelSmoothing: 0.05}, Seed: 42}

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	ref, refHist := trainBits(t, cfg, train, val, 5)

	t.Run("same seed", func(t *testing.T) {
		h, hist := trainBits(t, cfg, train, val, 5)
		if !sameBits(h.W, ref.W) || !sameBits(h.B, ref.B) {
			t.Fatal("the same seed gave different weights")
		}
		for i := range hist {
			hist[i].Duration, refHist[i].Duration = 0, 0
			if hist[i] != refHist[i] {
				t.Fatalf("epoch %d: %+v, first run %+v", i+1, hist[i], refHist[i])
			}
		}
	})
	t.Run("different seed", func(t *testing.T) {
		c := cfg
		c.Seed++
		h, _ := trainBits(t, c, train, val, 5)
		if sameBits(h.W, ref.W) {
			t.Fatal("different seeds gave the same weights")
		}
	})
	for _, procs := range []int{1, 3, 4} {
		t.Run("GOMAXPROCS", func(t *testing.T) {
			runtime.GOMAXPROCS(procs)
			defer runtime.GOMAXPROCS(2)
			h, _ := trainBits(t, cfg, train, val, 5)
			if !sameBits(h.W, ref.W) || !sameBits(h.B, ref.B) {
				t.Fatalf("GOMAXPROCS %d gave different weights from GOMAXPROCS 2", procs)
			}
		})
	}
	t.Run("NewHead", func(t *testing.T) {
		a, b, c := NewHead(67, 5, 3), NewHead(67, 5, 3), NewHead(67, 5, 4)
		if !sameBits(a.W, b.W) || !sameBits(a.B, b.B) || sameBits(a.W, c.W) {
			t.Fatal("NewHead is not a function of its seed")
		}
		bound := float32(1 / math.Sqrt(67))
		for _, v := range append(a.W, a.B...) {
			if v < -bound || v > bound {
				t.Fatalf("init value %v outside ±%v", v, bound)
			}
		}
	})
}

func TestLearnsSeparable(t *testing.T) {
	for _, cfg := range []Config{
		{Hyper: Hyper{LR: 0.01, BatchSize: 32, Epochs: 10, Dropout: 0.2}, Seed: 1},
		{Hyper: Hyper{LR: 0.005, BatchSize: 64, Epochs: 10, Dropout: 0.2, AdamW: true, WeightDecay: 0.01}, Seed: 2},
		{Hyper: Hyper{LR: 0.01, BatchSize: 7, Epochs: 5, LabelSmoothing: 0.1}, Seed: 3},
	} {
		train := separable(500, 24, 6, 11)
		val := separable(200, 24, 6, 11) // same centres, fresh samples
		var calls int
		h, hist, err := Train(cfg, train, val, 6, func(Epoch) { calls++ })
		if err != nil {
			t.Fatal(err)
		}
		if calls != cfg.Epochs || len(hist) != cfg.Epochs {
			t.Fatalf("%d callbacks, %d epochs recorded, want %d", calls, len(hist), cfg.Epochs)
		}
		last := hist[len(hist)-1]
		if last.ValAcc != 1 || last.ValLoss >= hist[0].ValLoss && cfg.Epochs > 1 {
			t.Errorf("%+v: final epoch %+v, first %+v", cfg, last, hist[0])
		}
		if e := Evaluate(h, train); e.Acc != 1 {
			t.Errorf("%+v: training accuracy %v, want 1", cfg, e.Acc)
		}
		if ev := Evaluate(h, val); cfg.LabelSmoothing == 0 && ev.Loss != last.ValLoss {
			t.Errorf("Evaluate loss %v, epoch's validation loss %v", ev.Loss, last.ValLoss)
		}
	}
}

func TestAdamUpdate(t *testing.T) {
	// Three steps of Adam(lr=0.1) on one parameter p = 0.5 with gradients 0.2,
	// -0.1, 0.05; expected values by hand (in float64):
	// step 1: m̂ = 0.2, v̂ = 0.04, p = 0.5 − 0.1·0.2/(0.2+1e-8).
	want := []float64{0.40000000499999966, 0.37336630271867566, 0.3393233904720767}
	tr := &trainer{cfg: Config{Hyper: Hyper{LR: 0.1}}}
	p, m, v := []float32{0.5}, []float32{0}, []float32{0}
	for i, g := range []float32{0.2, -0.1, 0.05} {
		tr.steps++
		adamUpdate(p, []float32{g}, m, v, tr.adamScalars())
		if math.Abs(float64(p[0])-want[i]) > 1e-7 {
			t.Errorf("step %d: p = %v, want %v", i+1, p[0], want[i])
		}
	}
}

// TestAdamOneStep trains for one full-batch step and compares every weight
// with the hand-computed first Adam step: m̂ = g, v̂ = g², so
// w₁ = w₀ − lr·g/(|g| + ε), with g the float64 reference gradient.
func TestAdamOneStep(t *testing.T) {
	const n, d, c, lr, wd = 12, 6, 4, 0.01, 0.1
	data := randomData(n, d, c, 3)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"adam", Config{Hyper: Hyper{LR: lr, BatchSize: n, Epochs: 1}, Seed: 4}},
		{"adam L2", Config{Hyper: Hyper{LR: lr, BatchSize: n, Epochs: 1, WeightDecay: wd}, Seed: 4}},
		{"adamw", Config{Hyper: Hyper{LR: lr, BatchSize: n, Epochs: 1, WeightDecay: wd, AdamW: true}, Seed: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h0 := NewHead(d, c, tc.cfg.Seed)
			h1, hist := trainBits(t, tc.cfg, data, data, c)
			// The epoch's training metrics are those of the batch before the
			// update, that is of the initial head.
			if e := Evaluate(h0, data); hist[0].TrainLoss != e.Loss || hist[0].TrainAcc != e.Acc {
				t.Errorf("epoch 1 training loss %v, acc %v; initial head %v, %v",
					hist[0].TrainLoss, hist[0].TrainAcc, e.Loss, e.Acc)
			}
			w, b := to64(h0.W), to64(h0.B)
			rows := make([][]float64, n)
			for i := range rows {
				rows[i] = to64(data.X[i*d : (i+1)*d])
			}
			params := append(append([]float64(nil), w...), b...)
			got := append(append([]float32(nil), h1.W...), h1.B...)
			for i, p0 := range params {
				// Central difference of the float64 loss: the reference gradient.
				const eps = 1e-6
				params[i] = p0 + eps
				up := refLoss(params[:c*d], params[c*d:], rows, data.Y, 0)
				params[i] = p0 - eps
				down := refLoss(params[:c*d], params[c*d:], rows, data.Y, 0)
				params[i] = p0
				g := (up - down) / (2 * eps)
				want := p0
				switch {
				case tc.cfg.AdamW:
					want *= 1 - lr*wd
				case tc.cfg.WeightDecay != 0:
					g += wd * p0
				}
				want -= lr * g / (math.Abs(g) + 1e-8)
				if math.Abs(float64(got[i])-want) > 2e-7 {
					t.Errorf("param %d: %v, want %v (w0 %v, g %v)", i, got[i], want, p0, g)
				}
			}
		})
	}
}

func TestDropout(t *testing.T) {
	t.Run("train mode drops p and scales", func(t *testing.T) {
		for _, p := range []float64{0.2, 0.5, 0.9} {
			const d = 200001
			src := make([]float32, d)
			for i := range src {
				src[i] = float32(i%7) + 0.5
			}
			dst := make([]float32, d)
			var rng rand.PCG
			seedSample(&rng, 1, 2)
			thresh := uint32(math.Round(p * (1 << 32)))
			scale := float32(1 / (1 - p))
			dropRow(dst, src, &rng, thresh, scale)
			zeros := 0
			for i, v := range dst {
				switch v {
				case 0:
					zeros++
				case src[i] * scale:
				default:
					t.Fatalf("p=%v: feature %d is %v, want 0 or %v", p, i, v, src[i]*scale)
				}
			}
			frac := float64(zeros) / d
			if sd := math.Sqrt(p * (1 - p) / d); math.Abs(frac-p) > 5*sd {
				t.Errorf("p=%v: dropped fraction %v", p, frac)
			}
			// Same seed and position, same mask.
			again := make([]float32, d)
			seedSample(&rng, 1, 2)
			dropRow(again, src, &rng, thresh, scale)
			if !sameBits(dst, again) {
				t.Errorf("p=%v: mask not reproducible", p)
			}
		}
	})
	t.Run("eval mode deterministic", func(t *testing.T) {
		data := randomData(9, 33, 4, 8)
		cfg := Config{Hyper: Hyper{LR: 0.01, BatchSize: 9, Epochs: 1, Dropout: 0.5}, Seed: 1}
		tr := newTrainer(cfg, data, 4, newTeam(1))
		idx := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8}
		tr.forward(idx)
		train1 := append([]float32(nil), tr.logits...)
		tr.forward(idx) // new masks: the samples are at new positions in the run
		if sameBits(train1, tr.logits) {
			t.Error("two training-mode passes gave the same logits")
		}
		a := make([]float32, 9*4)
		b := make([]float32, 9*4)
		tr.h.Logits(data.X, 9, a)
		tr.h.Logits(data.X, 9, b)
		if !sameBits(a, b) {
			t.Error("eval mode is not deterministic")
		}
		noDrop := newTrainer(Config{Hyper: Hyper{LR: 0.01, BatchSize: 9, Epochs: 1}, Seed: 1}, data, 4, newTeam(1))
		noDrop.forward(idx)
		if !sameBits(a, noDrop.logits) {
			t.Error("eval-mode logits differ from training-mode logits without dropout")
		}
		w, bias := to64(tr.h.W), to64(tr.h.B)
		for i := range 9 {
			for k := range 4 {
				ref := bias[k]
				for j := range 33 {
					ref += w[k*33+j] * float64(data.X[i*33+j])
				}
				if math.Abs(float64(a[i*4+k])-ref) > 1e-5 {
					t.Errorf("logit[%d,%d] = %v, want %v", i, k, a[i*4+k], ref)
				}
			}
		}
	})
}

func TestEarlyStopping(t *testing.T) {
	// Random labels on few samples of many features: the head memorises the
	// training set and the validation loss soon rises.
	train := randomData(40, 300, 4, 21)
	val := randomData(60, 300, 4, 22)
	cfg := Config{Hyper: Hyper{LR: 0.02, BatchSize: 8, Epochs: 60, Patience: 3}, Seed: 5}
	h, hist, err := Train(cfg, train, val, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	best := 0
	for i, e := range hist {
		if e.ValLoss < hist[best].ValLoss {
			best = i
		}
	}
	if len(hist) == cfg.Epochs {
		t.Fatalf("no early stop in %d epochs", len(hist))
	}
	t.Logf("best epoch %d (val loss %.4f), stopped after epoch %d (val loss %.4f)",
		best+1, hist[best].ValLoss, len(hist), hist[len(hist)-1].ValLoss)
	if len(hist) != best+1+cfg.Patience {
		t.Errorf("stopped after %d epochs, best epoch %d, patience %d", len(hist), best+1, cfg.Patience)
	}
	if got := Evaluate(h, val).Loss; got != hist[best].ValLoss {
		t.Errorf("returned head's validation loss %v, best epoch's %v", got, hist[best].ValLoss)
	}
	// Without patience, the same run for as many epochs returns the last head.
	cfg.Patience, cfg.Epochs = 0, len(hist)
	last, hist2, err := Train(cfg, train, val, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := Evaluate(last, val).Loss; got != hist2[len(hist2)-1].ValLoss || got == hist[best].ValLoss {
		t.Errorf("Patience 0: head's validation loss %v, last epoch's %v", got, hist2[len(hist2)-1].ValLoss)
	}
}

func TestCrossEntropy(t *testing.T) {
	tests := []struct {
		logits []float32
		y      int
		eps    float64
		want   float64
	}{
		// lse(1,2,3) = 3.40760596444438; −log p = 2.4076, 1.4076, 0.4076.
		{[]float32{1, 2, 3}, 0, 0, 2.40760596444438},
		{[]float32{1, 2, 3}, 0, 0.1, 0.9*2.40760596444438 + 0.1*1.40760596444438},
		{[]float32{1, 2, 3}, 2, 1, 1.40760596444438}, // uniform target
		{[]float32{1000, 0}, 1, 0, 1000},             // stable for large logits
		{[]float32{-1000, 0}, 1, 0, 0},
		{[]float32{1000, 0}, 0, 0.2, 0.2 * 1000 / 2},
	}
	for _, tc := range tests {
		got, _ := crossEntropy(tc.logits, tc.y, tc.eps)
		if math.Abs(got-tc.want) > 1e-9*math.Max(1, tc.want) {
			t.Errorf("crossEntropy(%v, %d, %v) = %v, want %v", tc.logits, tc.y, tc.eps, got, tc.want)
		}
	}
}

func TestDiverged(t *testing.T) {
	data := randomData(64, 16, 3, 1)
	for i := range data.X {
		data.X[i] *= 1e9
	}
	// Adam moves every weight by about LR per step: the logits overflow.
	cfg := Config{Hyper: Hyper{LR: 1e30, BatchSize: 8, Epochs: 5}, Seed: 1}
	h, _, err := Train(cfg, data, data, 3, nil)
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "training diverged") ||
		!strings.Contains(err.Error(), "epoch ") || h != nil {
		t.Fatalf("Train = %v, %v; want a training diverged error", h, err)
	}
	t.Log(err)
}

func TestProbabilities(t *testing.T) {
	h := &Head{D: 2, C: 3, W: []float32{1, 0, 0, 1, 100, 100}, B: []float32{0, 0, -1}}
	p := h.Probabilities([]float32{1, 2, 1000, -3}, 2)
	for i := range 2 {
		var sum float64
		for _, v := range p[i*3 : (i+1)*3] {
			if math.IsNaN(float64(v)) || v < 0 {
				t.Fatalf("row %d: %v", i, p[i*3:(i+1)*3])
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-6 {
			t.Errorf("row %d sums to %v", i, sum)
		}
	}
	// Row 0: logits 1, 2, 299.
	if p[2] != 1 || p[5] != 1 {
		t.Errorf("probabilities %v", p)
	}
}

func TestTeam(t *testing.T) {
	for _, workers := range []int{1, 2, 5} {
		tm := newTeam(workers)
		for _, n := range []int{0, 1, 2, 37, 1000} {
			for range 20 {
				hits := make([]int, n)
				tm.run(n, func(i int) { hits[i]++ })
				for i, h := range hits {
					if h != 1 {
						t.Fatalf("workers %d, n %d: chunk %d ran %d times", workers, n, i, h)
					}
				}
			}
		}
		tm.close()
	}
}

// TestTrainWithoutValidation: a final refit on all the data has no
// validation set; its metrics are NaN, and early stopping is refused.
func TestTrainWithoutValidation(t *testing.T) {
	tr := separable(120, 8, 3, 1)
	cfg := Config{Hyper: Hyper{LR: 0.05, BatchSize: 16, Epochs: 5}, Seed: 3}
	h, hist, err := Train(cfg, tr, Data{}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 5 || !math.IsNaN(hist[4].ValLoss) || !math.IsNaN(hist[4].ValAcc) || hist[4].TrainAcc < 0.9 {
		t.Errorf("history %+v", hist[len(hist)-1])
	}
	// The same training with a validation set gives the same weights:
	// validation never changes what is learnt.
	h2, _, err := Train(cfg, tr, separable(30, 8, 3, 2), 3, nil)
	if err != nil || !sameBits(h.W, h2.W) {
		t.Errorf("validation changed the weights (%v)", err)
	}
	cfg.Patience = 2
	if _, _, err := Train(cfg, tr, Data{}, 3, nil); err == nil || !strings.Contains(err.Error(), "validation") {
		t.Errorf("early stopping without validation: %v", err)
	}
}
