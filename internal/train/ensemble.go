package train

import "fmt"

// AverageHeads returns the head whose W and B are the means of the heads'
// (all of one shape). On one backbone its logits are the mean of the heads'
// logits, exactly up to rounding (the logits are linear in W and B), so an
// ensemble of linear heads costs one head at serving time. It averages
// logits, not probabilities: the mean of softmaxes is not a linear head
// and would need every head in the exported graph.
func AverageHeads(heads []*Head) (*Head, error) {
	if len(heads) == 0 {
		return nil, fmt.Errorf("train: AverageHeads: no heads")
	}
	d, c := heads[0].D, heads[0].C
	w := make([]float64, c*d)
	b := make([]float64, c)
	for i, h := range heads {
		if h.D != d || h.C != c || len(h.W) != c*d || len(h.B) != c {
			return nil, fmt.Errorf("train: AverageHeads: head %d is %d→%d, head 0 is %d→%d", i, h.D, h.C, d, c)
		}
		for j, v := range h.W {
			w[j] += float64(v)
		}
		for k, v := range h.B {
			b[k] += float64(v)
		}
	}
	out := &Head{D: d, C: c, W: make([]float32, c*d), B: make([]float32, c)}
	inv := 1 / float64(len(heads))
	for j, v := range w {
		out.W[j] = float32(v * inv)
	}
	for k, v := range b {
		out.B[k] = float32(v * inv)
	}
	return out, nil
}
