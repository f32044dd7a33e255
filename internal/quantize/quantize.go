// Package quantize makes a static int8 model from a float32 ONNX model, in
// the QDQ form (QuantizeLinear/DequantizeLinear pairs around the weights and
// activations, which ONNX Runtime's CPU provider fuses into its int8
// kernels): int8 weights symmetric per output channel (or per tensor), int32
// biases, uint8 activations whose ranges are calibrated by running the float
// model on the user's images through petbreed's own preprocessing.
//
// One image of calibration: imaging.Decode → imaging.Apply → Normalize →
// the float model with the activations as extra outputs (onnxrt) → Stats.
// Then the plan (plan.go: which nodes, which activations) is applied to the
// editable graph of package onnx (rewrite.go).
package quantize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"petbreed"
	"petbreed/internal/imaging"
	"petbreed/internal/onnx"
	"petbreed/internal/onnxrt"
)

// MetaQuantization is the metadata key of a model this package quantized:
// JSON Info.
const MetaQuantization = "petbreed.quantization"

// Defaults.
const (
	DefaultImages     = 200
	DefaultPercentile = 99.999
	DefaultBatch      = 4
	MaxBatch          = 256 // calibration batch: each image's activations are held (about 25 MB for MobileNetV2)
	// MaxImages bounds a calibration set (each image costs a float run).
	MaxImages = 100000
)

// Options configure Quantize. The zero value is minmax calibration with
// int8 per-channel weights, reduced range.
type Options struct {
	Method     Method  // "" is MinMax
	Percentile float64 // for Percentile; 0 is DefaultPercentile
	// PerTensor gives each weight one scale instead of one per output
	// channel (and keeps the model's opset when it is 10 or more).
	PerTensor bool
	// FullRange quantizes the weights of the convolutions that run as
	// matrix products (all but depthwise) and of Gemm/MatMul to ±127. By
	// default they are reduced to ±64, so that ONNX Runtime's AVX2 u8s8
	// kernels, which add pairs of uint8 × int8 products in int16
	// (vpmaddubsw), cannot saturate on a CPU without VNNI.
	FullRange bool
	// Uint8Weights stores weights as uint8 with zero point 128 (the
	// u8u8 kernels, which sum in int32) instead of int8.
	Uint8Weights bool
	BatchSize    int // calibration batch; 0 is DefaultBatch
	Threads      int // ONNX Runtime intra-op threads; 0 is every CPU
	// Preprocess is the images' transform; nil takes the model's
	// petbreed.preprocess metadata, else torchvision's ImageNet evaluation.
	Preprocess *petbreed.Preprocess
	Decode     imaging.DecodeOptions
}

// Info is what the quantizer records in the model (MetaQuantization).
type Info struct {
	Format      string  `json:"format"` // "qdq"
	Weights     string  `json:"weights"`
	Activations string  `json:"activations"`
	Bias        string  `json:"bias"`
	Granularity string  `json:"granularity"` // per-channel or per-tensor
	ReduceRange bool    `json:"reduce_range"`
	Method      string  `json:"method"`
	Percentile  float64 `json:"percentile,omitempty"`
	Images      int     `json:"images"`
	// ImagesDigest is Digest of the calibration images' sha256.
	ImagesDigest string `json:"images_sha256_digest"`
	// Source is the sha256 of the float model.
	Source string `json:"source_sha256,omitempty"`
}

// Report says what Quantize did.
type Report struct {
	Info
	Nodes       int      // compute nodes quantized
	Activations int      // activations with a QuantizeLinear/DequantizeLinear pair
	Folded      int      // Clip/Relu absorbed into their producer's quantization
	Float       []string // op types left in float32
	ImageSHA256 []string
}

// ErrNoImages is returned when there is nothing to calibrate on.
var ErrNoImages = errors.New("quantize: no calibration images")

// Quantize returns the int8 QDQ version of the float model, calibrated on
// the image files. It refuses a model it cannot quantize with an
// *UnsupportedError naming the node. The result is loaded into ONNX Runtime
// and run on the first calibration batch before it is returned.
func Quantize(ctx context.Context, model []byte, images []string, opt Options) ([]byte, *Report, error) {
	if opt.Method == "" {
		opt.Method = MinMax
	}
	if _, err := ParseMethod(string(opt.Method)); err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	if opt.Percentile == 0 {
		opt.Percentile = DefaultPercentile
	}
	if !(opt.Percentile > 50 && opt.Percentile <= 100) {
		return nil, nil, fmt.Errorf("quantize: percentile %v is not in (50, 100]", opt.Percentile)
	}
	if opt.BatchSize == 0 {
		opt.BatchSize = DefaultBatch
	}
	if opt.BatchSize < 0 || opt.BatchSize > MaxBatch {
		return nil, nil, fmt.Errorf("quantize: calibration batch %d is not in [1, %d]", opt.BatchSize, MaxBatch)
	}
	if len(images) == 0 {
		return nil, nil, ErrNoImages
	}
	if len(images) > MaxImages {
		return nil, nil, fmt.Errorf("quantize: %d calibration images, more than %d", len(images), MaxImages)
	}
	m, err := onnx.Decode(model)
	if err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	info, err := m.Info()
	if err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	if len(info.Inputs) != 1 || info.Inputs[0].ElemType != onnx.Float {
		return nil, nil, fmt.Errorf("quantize: the model must have one float32 image input (it has %d inputs)", len(info.Inputs))
	}
	pre, err := preprocessOf(info, opt.Preprocess)
	if err != nil {
		return nil, nil, err
	}
	p, err := newPlan(m, opt)
	if err != nil {
		return nil, nil, err
	}
	if len(p.compute) == 0 {
		return nil, nil, errors.New("quantize: the model has no Conv, Gemm, MatMul or Add to quantize")
	}
	cal, err := calibrate(ctx, model, p.calibrated(), p.inputs, images, pre, opt)
	if err != nil {
		return nil, nil, err
	}
	params := map[string]Params{}
	for t, s := range cal.stats {
		lo, hi := s.Range(opt.Method, opt.Percentile)
		params[t] = ActivationParams(lo, hi)
	}
	rep := &Report{Nodes: len(p.compute), Activations: len(p.quantized), Folded: len(p.folded), ImageSHA256: cal.sha256}
	rep.Float = p.floatOps()
	if err := p.apply(params, opt); err != nil {
		return nil, nil, err
	}
	rep.Info = Info{Format: "qdq", Weights: "int8 symmetric", Activations: "uint8 asymmetric", Bias: "int32",
		Granularity: "per-channel", ReduceRange: !opt.FullRange, Method: string(opt.Method),
		Images: len(cal.sha256), ImagesDigest: Digest(cal.sha256), Source: sha256Hex(model)}
	if opt.PerTensor {
		rep.Granularity = "per-tensor"
	}
	if opt.Uint8Weights {
		rep.Weights = "uint8 (zero point 128)"
	}
	if opt.Method == Percentile {
		rep.Percentile = opt.Percentile
	}
	meta, err := json.Marshal(rep.Info)
	if err != nil {
		return nil, nil, err
	}
	m.SetMetadata(map[string]string{MetaQuantization: string(meta)})
	out := m.Encode()
	if err := check(out, cal); err != nil {
		return nil, nil, err
	}
	return out, rep, nil
}

// check loads the quantized model and runs it on the first calibration
// batch: it must give finite outputs of the float model's shapes.
func check(model []byte, cal *calibration) error {
	sess, err := onnxrt.OpenData("quantized model", model, onnxrt.Options{})
	if err != nil {
		return fmt.Errorf("quantize: the quantized model does not load: %w", err)
	}
	defer sess.Close()
	outs, err := sess.Run(cal.first, cal.shape)
	if err != nil {
		return fmt.Errorf("quantize: the quantized model does not run: %w", err)
	}
	for _, o := range outs {
		for _, v := range o.Float32 {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("quantize: the quantized model's output %q is not finite", o.Name)
			}
		}
	}
	return nil
}

func preprocessOf(info *onnx.ModelInfo, p *petbreed.Preprocess) (petbreed.Preprocess, error) {
	if p != nil {
		return *p, p.Validate()
	}
	pre := petbreed.DefaultPreprocess()
	if s, ok := info.Metadata[petbreed.MetaPreprocess]; ok {
		if err := json.Unmarshal([]byte(s), &pre); err != nil {
			return pre, fmt.Errorf("quantize: metadata %s: %w", petbreed.MetaPreprocess, err)
		}
	}
	if err := pre.Validate(); err != nil {
		return pre, fmt.Errorf("quantize: %w", err)
	}
	return pre, nil
}

// floatOps lists the op types left in float32, once each.
func (p *plan) floatOps() []string {
	quantized := map[*onnx.Node]bool{}
	for _, n := range p.compute {
		quantized[n] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range p.g.Nodes {
		if quantized[n] || passOps[n.OpType] || p.folded[n] != nil || n.OpType == "Constant" || seen[n.OpType] {
			continue
		}
		seen[n.OpType] = true
		out = append(out, n.OpType)
	}
	return out
}
