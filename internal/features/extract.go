// Package features runs a frozen backbone once per image and view and keeps
// its pooled features in an on-disk cache keyed by the image's content, the
// backbone's sha256 and the transform, so every experiment, epoch and rerun
// reuses them. Decoding, preprocessing and the backbone run as a pipeline
// that keeps every core busy.
package features

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"petbreed"
	"petbreed/internal/imaging"
	"petbreed/internal/onnx"
	"petbreed/internal/onnxrt"
)

// Extractor is a backbone opened for feature extraction.
type Extractor struct {
	path  string
	sha   string
	f     onnx.Features
	sess  *onnxrt.Session
	out   int // index of the features among the session's outputs
	pre   petbreed.Preprocess
	norm  *imaging.Normalizer
	bytes []byte
}

// NewExtractor opens the backbone at path. Its features are the classifier's
// input (for the int8 MobileNetV2, the uint8 tensor 472_quantized,
// dequantized here exactly as ONNX Runtime's DequantizeLinear does). Images
// are prepared with torchvision's evaluation transform.
func NewExtractor(path string, threads int) (*Extractor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backbone: %w", err)
	}
	f, err := onnx.FindFeatures(data)
	if err != nil {
		return nil, fmt.Errorf("backbone %s: %w", path, err)
	}
	// A copy of the graph that ends at the features: nothing is computed
	// after them.
	fm, err := onnx.FeatureModel(data, f)
	if err != nil {
		return nil, fmt.Errorf("backbone %s: %w", path, err)
	}
	sess, err := onnxrt.OpenData(path, fm, onnxrt.Options{IntraOpThreads: threads, NoSpin: true})
	if err != nil {
		return nil, err
	}
	out := -1
	for i, o := range sess.Outputs() {
		if o.Name == f.Tensor {
			out = i
		}
	}
	if out < 0 {
		sess.Close()
		return nil, fmt.Errorf("backbone %s: feature tensor %s is not an output", path, f.Tensor)
	}
	sum := sha256.Sum256(data)
	pre := petbreed.DefaultPreprocess()
	return &Extractor{
		path: path, sha: hex.EncodeToString(sum[:]), f: f, sess: sess, out: out,
		pre: pre, norm: imaging.NewNormalizer(pre.Mean, pre.Std), bytes: data,
	}, nil
}

// SHA256 is the backbone file's sha256, hex.
func (e *Extractor) SHA256() string { return e.sha }

// Dim is the feature size (1280 for MobileNetV2).
func (e *Extractor) Dim() int { return e.f.Dim }

// Features describes where the features come from in the backbone's graph.
func (e *Extractor) Features() onnx.Features { return e.f }

// Model returns the backbone file's bytes (for export).
func (e *Extractor) Model() []byte { return e.bytes }

// Preprocess is the transform images go through before the backbone.
func (e *Extractor) Preprocess() petbreed.Preprocess { return e.pre }

// TensorLen is the number of float32 values one image takes in a batch.
func (e *Extractor) TensorLen() int { return 3 * e.pre.Size * e.pre.Size }

// Prepare transforms a decoded image into dst, flipped left-right if flip.
func (e *Extractor) Prepare(img *imaging.RGB, flip bool, dst []float32) error {
	seen, err := imaging.Apply(img, e.pre)
	if err != nil {
		return err
	}
	if flip {
		seen = imaging.Orient(seen, 2) // EXIF 2 is a left-right mirror
	}
	return e.norm.Normalize(seen, dst)
}

// Run returns the features of n prepared images (n×Dim values).
func (e *Extractor) Run(batch []float32, n int) ([]float32, error) {
	s := int64(e.pre.Size)
	outs, err := e.sess.Run(batch, []int64{int64(n), 3, s, s})
	if err != nil {
		return nil, err
	}
	o := outs[e.out]
	want := n * e.f.Dim
	switch {
	case e.f.Quantized && o.Uint8 != nil && len(o.Uint8) == want:
		return dequantize(o.Uint8, e.f.ScaleValue, e.f.ZeroPointValue), nil
	case e.f.Quantized && o.Int8 != nil && len(o.Int8) == want:
		x := make([]float32, want)
		for i, q := range o.Int8 {
			x[i] = float32(int32(q)-e.f.ZeroPointValue) * e.f.ScaleValue
		}
		return x, nil
	case !e.f.Quantized && o.Float32 != nil && len(o.Float32) == want:
		return o.Float32, nil
	}
	return nil, fmt.Errorf("backbone %s: feature output %s is %s%v, want %d values", e.path, o.Name, o.Type, o.Shape, want)
}

// dequantize is ONNX's DequantizeLinear: (q - zero_point) * scale in float32.
func dequantize(q []uint8, scale float32, zp int32) []float32 {
	x := make([]float32, len(q))
	for i, v := range q {
		x[i] = float32(int32(v)-zp) * scale
	}
	return x
}

// Close releases the backbone.
func (e *Extractor) Close() error { return e.sess.Close() }
