package classify

import (
	"fmt"
	"math"

	"petbreed/internal/imaging"
)

// CheckServable checks what a model server needs of a classifier beyond
// Open's own checks, so that the server's load and a promotion's trial load
// (package web) cannot disagree: a batch size that is dynamic or 1, a known
// class count, and one run on a grey image through the model's own
// preprocessing that gives one row of finite scores per class. The run also
// warms ONNX Runtime up (it plans its memory on the first run). The error
// says what is wrong, without the model's name: the caller adds its own.
func (c *Classifier) CheckServable() error {
	if b := c.input.Shape[0]; b > 1 {
		return fmt.Errorf("the model's batch size is fixed to %d: the server needs a dynamic batch size, or 1", b)
	}
	classes := c.Classes()
	if len(classes) == 0 {
		return fmt.Errorf("the model's class count is not fixed and it has no labels")
	}
	img := imaging.NewRGB(320, 240)
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	batch := make([]float32, c.TensorLen())
	if err := c.Prepare(img, batch); err != nil {
		return fmt.Errorf("preprocessing: %w", err)
	}
	probs, err := c.Run(batch, 1)
	if err != nil {
		return fmt.Errorf("test run: %w", err)
	}
	if len(probs) != 1 || len(probs[0]) != len(classes) {
		first := 0
		if len(probs) > 0 {
			first = len(probs[0])
		}
		return fmt.Errorf("test run gave %d rows of %d scores, want 1 of %d", len(probs), first, len(classes))
	}
	for _, p := range probs[0] {
		if math.IsNaN(float64(p)) || math.IsInf(float64(p), 0) {
			return fmt.Errorf("test run gave a non-finite score (%v)", p)
		}
	}
	if pc, ok := c.Pet(probs[0]); c.HasPet() && (!ok || !(pc.Score >= 0 && pc.Score <= 1.0001)) {
		return fmt.Errorf("test run gave a pet score of %v, want a probability", pc.Score)
	}
	return nil
}
