// Package train trains and evaluates petbreed's classification head, the
// PyTorch model nn.Sequential(nn.Dropout(p), nn.Linear(D, C)) on frozen
// backbone features, with CrossEntropyLoss (optionally label-smoothed) and
// torch.optim.Adam (or AdamW), mini-batches reshuffled every epoch and the
// last partial batch kept (drop_last=False). It is plain Go on float32
// slices, standard library only.
//
// # Semantics
//
//   - Initialisation as nn.Linear: W and B from U(−1/√D, 1/√D).
//   - Dropout: inverted, each input feature kept with probability 1−p and
//     scaled by 1/(1−p) in training; identity in eval mode (Head never drops).
//   - Loss: the mean over the batch of the cross-entropy computed from a
//     max-subtracted log-sum-exp in float64; with label smoothing ε the target
//     is (1−ε)·onehot + ε/C, as torch.
//   - Optimiser: torch's single-tensor Adam, β=(0.9, 0.999), ε=1e-8, bias
//     correction, element by element in float32 with the step scalars
//     rounded from float64. Config.WeightDecay is Adam's L2 term (added to the
//     gradient) unless Config.AdamW, which makes it AdamW's decoupled decay.
//
// # Precision
//
// Parameters, gradients and Adam moments are float32, as in torch. Dot
// products (logits) accumulate in float32 with four fixed partial sums; the
// weight gradient accumulates in float32 over the batch's samples in batch
// order. Softmax, losses and the per-epoch metrics are float64; ∂loss/∂logits
// is computed in float64 and rounded to float32.
//
// # Determinism and parallelism
//
// The init, shuffle and dropout streams are PCGs (math/rand/v2) derived from
// Config.Seed; each sample's dropout mask has its own PCG seeded from the
// sample's position in the run, so masks can be drawn in parallel. A training
// step has two parallel sections run by a team of long-lived goroutines: the
// forward pass split by pairs of samples, then the gradient and Adam update
// split by classes (rows of W). Each output value is computed entirely by one
// goroutine in an order fixed by the data, so there is no cross-goroutine
// reduction at all, and the weights are identical bit for bit for any
// GOMAXPROCS and any scheduling. The kernels round each product explicitly,
// so this also holds where the compiler may fuse multiply-adds (arm64,
// GOAMD64=v3); such builds can differ from a GOAMD64=v1 build in the last
// bits, as two BLAS builds would.
package train
