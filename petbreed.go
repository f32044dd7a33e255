// Package petbreed holds the domain types every stage shares: how an image is
// prepared for a model (Preprocess), what a classifier answers (Prediction),
// and the metadata keys a petbreed model carries in its ONNX file.
//
// The stages live in packages named after them: internal/imaging (decode and
// Pillow-exact transforms), internal/onnxrt (the ONNX Runtime adapter),
// internal/onnx (the ONNX file format), internal/classify (model + labels +
// preprocessing → top-k), wired together in cmd/petbreed.
package petbreed

import (
	"errors"
	"fmt"
)

// Preprocessing modes.
const (
	// ModeCrop is torchvision's evaluation transform: resize the short side
	// to Resize, then centre-crop Size x Size.
	ModeCrop = "crop"
	// ModeSquash resizes straight to Size x Size, ignoring the aspect ratio
	// (the original project's transform).
	ModeSquash = "squash"
)

// ImageNet normalisation constants, as torchvision's models expect them.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Preprocess says how an image becomes the tensor a model sees. A model may
// carry one in its metadata (key MetaPreprocess, JSON); otherwise
// DefaultPreprocess applies.
type Preprocess struct {
	Mode      string     `json:"mode"`             // ModeCrop or ModeSquash
	Resize    int        `json:"resize,omitempty"` // crop: short side before the centre crop
	Size      int        `json:"size"`             // side of the square the model sees
	Filter    string     `json:"filter"`           // bilinear, bicubic, lanczos, nearest
	Mean      [3]float32 `json:"mean"`
	Std       [3]float32 `json:"std"`
	Grayscale bool       `json:"grayscale,omitempty"` // convert('L'), then replicate to 3 channels
}

// DefaultPreprocess is torchvision's ImageNet evaluation transform:
// Resize(256) (bilinear, antialiased), CenterCrop(224), ToTensor, Normalize.
func DefaultPreprocess() Preprocess {
	return Preprocess{
		Mode:   ModeCrop,
		Resize: 256,
		Size:   224,
		Filter: "bilinear",
		Mean:   ImageNetMean,
		Std:    ImageNetStd,
	}
}

// Validate reports whether p describes a transform petbreed can run.
func (p Preprocess) Validate() error {
	switch p.Mode {
	case ModeCrop:
		if p.Resize < p.Size {
			return fmt.Errorf("preprocess: resize %d is smaller than the crop %d", p.Resize, p.Size)
		}
	case ModeSquash:
	default:
		return fmt.Errorf("preprocess: unknown mode %q (want %s or %s)", p.Mode, ModeCrop, ModeSquash)
	}
	if p.Size <= 0 || p.Size > 4096 {
		return fmt.Errorf("preprocess: size %d out of range", p.Size)
	}
	switch p.Filter {
	case "nearest", "bilinear", "bicubic", "lanczos":
	default:
		return fmt.Errorf("preprocess: unknown filter %q (want bilinear, bicubic, lanczos or nearest)", p.Filter)
	}
	for i, s := range p.Std {
		if !(s > 0) {
			return fmt.Errorf("preprocess: std[%d] = %v must be positive", i, s)
		}
	}
	return nil
}

// Prediction is one class of a classifier's answer.
type Prediction struct {
	Label       string  `json:"label"`
	Index       int     `json:"index"`
	Probability float32 `json:"probability"`
}

// Metadata keys of a petbreed model's ONNX metadata_props.
const (
	MetaLabels     = "petbreed.labels"     // JSON array of class names, in output order
	MetaPreprocess = "petbreed.preprocess" // JSON Preprocess
	MetaRunID      = "petbreed.run_id"     // MLflow run that trained the head
	MetaBackbone   = "petbreed.backbone_sha256"
	// MetaPetThreshold is the pet score (a decimal in [0,1]) below which an
	// image is flagged as not a cat or a dog, calibrated on training images.
	MetaPetThreshold = "petbreed.pet_threshold"
	MetaTTA          = "petbreed.tta" // JSON array of the test-time views averaged in the graph
)

// PetCheck says whether an image looks like a cat or a dog: Score is the
// backbone's probability of ImageNet's dog and domestic cat classes, IsPet
// whether it reaches the model's calibrated Threshold. The breed answer of
// an image that is not a pet is still given, flagged by IsPet false.
type PetCheck struct {
	Score     float32 `json:"score"`
	Threshold float32 `json:"threshold"`
	IsPet     bool    `json:"is_pet"`
}

// ErrNoLabels is returned when neither a labels file nor the model's
// metadata names the classes.
var ErrNoLabels = errors.New("no labels: pass --labels or use a model that carries them")
