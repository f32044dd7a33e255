package classify

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"petbreed"
	"petbreed/internal/onnx"
	"petbreed/internal/onnxrt"
)

// DefaultPetThreshold is the pet score threshold of a model that has a pet
// score output but no calibrated threshold in its metadata.
const DefaultPetThreshold = 0.5

// findPet looks for the pet score output (onnx.ExportPetScore, float32
// [N]) and its threshold (petbreed.MetaPetThreshold). A model without the
// output has no pet check; a threshold that is not a number in [0,1] is an
// error.
func (c *Classifier) findPet(outs []onnxrt.TensorInfo, meta map[string]string) error {
	c.pet, c.petMin = -1, DefaultPetThreshold
	for i, o := range outs {
		if o.Name == onnx.ExportPetScore {
			if o.Type != "float32" || len(o.Shape) != 1 {
				return fmt.Errorf("output %s, want float32 [N] pet scores", o)
			}
			c.pet = i
		}
	}
	s, ok := meta[petbreed.MetaPetThreshold]
	if !ok || c.pet < 0 {
		return nil
	}
	v, err := strconv.ParseFloat(s, 32)
	if err != nil || !(v >= 0 && v <= 1) {
		return fmt.Errorf("metadata %s is %q, want a number in [0,1]", petbreed.MetaPetThreshold, s)
	}
	c.petMin = float32(v)
	return nil
}

// HasPet reports whether the model says if an image looks like a pet.
func (c *Classifier) HasPet() bool { return c.pet >= 0 }

// PetThreshold is the pet score below which an image is not a pet.
func (c *Classifier) PetThreshold() float32 { return c.petMin }

// petMark follows the pet score in a row's capacity: a NaN whose payload
// says the value before it is one (a row copied elsewhere has no mark).
const petMark = 0x7fc0_5e7b

// withPet lays each image's probabilities out with its pet score and
// petMark right after them, and returns rows of the probabilities whose
// capacity holds the two: a row is probs[i][:k] of cap k+2. So the score
// travels with its row through any code that passes rows along (the
// server's batcher hands each request its rows) without a second slice
// beside them; Pet reads it.
func (c *Classifier) withPet(scores []float32, pet onnxrt.Output, n, k int) ([][]float32, error) {
	if len(pet.Shape) != 1 || pet.Shape[0] != int64(n) || len(pet.Float32) != n {
		return nil, fmt.Errorf("classify: output %s has shape %v for a batch of %d", pet.Name, pet.Shape, n)
	}
	const stride = 2 // the score and the mark
	buf := make([]float32, n*(k+stride))
	probs := make([][]float32, n)
	for i := range probs {
		at := i * (k + stride)
		row := buf[at : at+k : at+k+stride]
		copy(row, scores[i*k:(i+1)*k])
		if !isDistribution(row) {
			softmax(row)
		}
		buf[at+k], buf[at+k+1] = pet.Float32[i], math.Float32frombits(petMark)
		probs[i] = row
	}
	return probs, nil
}

// Pet returns the pet check of a row of Run's probabilities, and false when
// the model has no pet score, or row is not one of Run's rows (a copy).
func (c *Classifier) Pet(row []float32) (petbreed.PetCheck, bool) {
	if c.pet < 0 || cap(row) != len(row)+2 {
		return petbreed.PetCheck{}, false
	}
	ext := row[:len(row)+2]
	if math.Float32bits(ext[len(row)+1]) != petMark {
		return petbreed.PetCheck{}, false
	}
	score := ext[len(row)]
	if math.IsNaN(float64(score)) {
		return petbreed.PetCheck{}, false
	}
	return petbreed.PetCheck{Score: score, Threshold: c.petMin, IsPet: score >= c.petMin}, true
}

// PetAccept is the share of training pets the calibrated threshold accepts:
// 99%, not 99.5%, since on pets-3breeds the int8 backbone gives three of 300
// training pets (Bengals, which it takes for leopards) a pet score under
// 0.007, and a threshold that low lets a quarter of the non-pet photos
// through (docs/training.md has both).
const PetAccept = 0.99

// PetCalibration is a pet threshold and what it was chosen from.
type PetCalibration struct {
	Threshold float32
	Accept    float64 // the share of training images asked to be accepted
	Images    int     // training images scored
	Accepted  int     // of them, those at or above Threshold
}

// Meta is the model metadata that carries the threshold.
func (p PetCalibration) Meta() map[string]string {
	return map[string]string{petbreed.MetaPetThreshold: strconv.FormatFloat(float64(p.Threshold), 'g', -1, 32)}
}

// CalibratePet scores n training images (all cats and dogs) from their
// backbone features (feats, n x f.Dim, dequantized as a feature extractor
// gives them) with the backbone's own classifier, onnx.PetScoreModel run in
// ONNX Runtime, and chooses the threshold by PetThreshold.
func CalibratePet(backbone []byte, f onnx.Features, feats []float32, n int, accept float64) (PetCalibration, error) {
	scores, err := PetScores(backbone, f, feats, n)
	if err != nil {
		return PetCalibration{}, err
	}
	t, err := PetThreshold(scores, accept)
	if err != nil {
		return PetCalibration{}, err
	}
	cal := PetCalibration{Threshold: t, Accept: accept, Images: n}
	for _, s := range scores {
		if s >= t {
			cal.Accepted++
		}
	}
	return cal, nil
}

// PetScores computes the pet scores of n images from their backbone
// features.
func PetScores(backbone []byte, f onnx.Features, feats []float32, n int) ([]float32, error) {
	if n <= 0 || len(feats) != n*f.Dim {
		return nil, fmt.Errorf("pet scores: %d values for %d images of %d features", len(feats), n, f.Dim)
	}
	model, err := onnx.PetScoreModel(backbone, f)
	if err != nil {
		return nil, fmt.Errorf("pet scores: %w", err)
	}
	sess, err := onnxrt.OpenData("pet-score.onnx", model, onnxrt.Options{})
	if err != nil {
		return nil, fmt.Errorf("pet scores: %w", err)
	}
	defer sess.Close()
	const batch = 256
	scores := make([]float32, 0, n)
	for i := 0; i < n; i += batch {
		m := min(batch, n-i)
		outs, err := sess.Run(feats[i*f.Dim:(i+m)*f.Dim], []int64{int64(m), int64(f.Dim)})
		if err != nil {
			return nil, fmt.Errorf("pet scores: %w", err)
		}
		if len(outs) != 1 || len(outs[0].Float32) != m {
			return nil, fmt.Errorf("pet scores: the model gave %v for %d images", outs, m)
		}
		scores = append(scores, outs[0].Float32...)
	}
	return scores, nil
}

// PetThreshold is the calibration rule: the highest threshold that accepts
// at least the share accept of the scores (of training pets) — the score
// of rank ⌊(1−accept)·n⌋ from the lowest. With accept 0.99 and 300
// training images it is the fourth lowest score: three pets of 300 fall
// below it.
func PetThreshold(scores []float32, accept float64) (float32, error) {
	if len(scores) == 0 {
		return 0, fmt.Errorf("pet threshold: no scores")
	}
	if !(accept > 0 && accept <= 1) {
		return 0, fmt.Errorf("pet threshold: accept %v, want a share in (0,1]", accept)
	}
	s := slices.Clone(scores)
	for _, v := range s {
		if math.IsNaN(float64(v)) {
			return 0, fmt.Errorf("pet threshold: a score is NaN")
		}
	}
	slices.Sort(s)
	return s[int((1-accept)*float64(len(s))+1e-9)], nil
}
