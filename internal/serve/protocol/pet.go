package protocol

import "petbreed"

// PetOutput names the pet check's output tensor (the exported model's
// onnx.ExportPetScore), for protocols that answer with tensors.
const PetOutput = "pet_score"

// PetChecker is a Predictor whose model may say whether an image looks like
// a cat or a dog (issue 13): the server's implements it; an adapter asks
// through HasPet and PetOf, so a Predictor without it (a test's fake) has
// no pet check.
type PetChecker interface {
	// HasPet reports whether the model has a pet check.
	HasPet() bool
	// Pet is the pet check of one row of PredictImages or PredictTensor,
	// false when the model has none.
	Pet(row []float32) (petbreed.PetCheck, bool)
}

// HasPet reports whether p's model has a pet check.
func HasPet(p Predictor) bool {
	pc, ok := p.(PetChecker)
	return ok && pc.HasPet()
}

// PetOf is the pet check of one of p's rows, nil when its model has none.
func PetOf(p Predictor, row []float32) *petbreed.PetCheck {
	pc, ok := p.(PetChecker)
	if !ok {
		return nil
	}
	c, ok := pc.Pet(row)
	if !ok {
		return nil
	}
	return &c
}
