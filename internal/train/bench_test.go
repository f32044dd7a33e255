package train

import (
	"math/rand/v2"
	"testing"
	"time"
)

// randomData returns n random rows of d features (like the ReLU6-pooled
// MobileNetV2 features: non-negative, mean 0.5) with random labels.
func randomData(n, d, c int, seed uint64) Data {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(r.ExpFloat64() * 0.5)
	}
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(r.IntN(c))
	}
	return Data{X: x, Y: y, D: d}
}

// BenchmarkEpoch37 times training epochs at the real size: 7,360 samples ×
// 1,280 features, 37 classes, batch 32, dropout 0.2, lr 0.001, with a
// 1,472-sample validation pass after each epoch. ms/epoch is the mean
// Epoch.Duration (training plus validation); ns/op also counts Train's setup
// (input validation, allocation, initialisation).
func BenchmarkEpoch37(b *testing.B) {
	const n, d, c = 7360, 1280, 37
	train := randomData(n, d, c, 1)
	val := randomData(1472, d, c, 2)
	cfg := Config{Hyper: Hyper{LR: 0.001, BatchSize: 32, Epochs: 1, Dropout: 0.2}, Seed: 1}
	var total time.Duration
	var epochs int
	for b.Loop() {
		_, hist, err := Train(cfg, train, val, c, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range hist {
			total += e.Duration
			epochs++
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(epochs), "ms/epoch")
}

// BenchmarkLogReg37 is the exact solver at the 37-breed size: 3,680 samples
// × 1,280 features, 37 classes (clustered rows like pooled features, so the
// problem has the structure of a real probe), λ = 1e-3, from zero weights.
func BenchmarkLogReg37(b *testing.B) {
	const n, d, c = 3680, 1280, 37
	data := randomData(n, d, c, 1)
	centres := randomData(c, d, c, 2)
	for i, y := range data.Y {
		for j := range d {
			data.X[i*d+j] = 0.7*data.X[i*d+j] + 0.6*centres.X[int(y)*d+j]
		}
	}
	var iters, evals int
	for b.Loop() {
		_, info, err := FitLogReg(LogReg{L2: 1e-3}, data, c, nil)
		if err != nil {
			b.Fatal(err)
		}
		iters += info.Iter
		evals += info.Evals
	}
	b.ReportMetric(float64(iters)/float64(b.N), "iterations")
	b.ReportMetric(float64(evals)/float64(b.N), "evaluations")
	b.ReportMetric(b.Elapsed().Seconds()/float64(evals), "s/evaluation")
}
