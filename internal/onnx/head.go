package onnx

import (
	"errors"
	"fmt"
	"math"
)

// A petbreed model is a backbone and its own head (Export): the server runs
// the backbone once for several models that share it and each head on the
// features. SplitHead takes an exported model apart into the two.

// Head is the linear head Export appended to a backbone:
//
//	probabilities = mean over views of Softmax(features · Weightᵀ + Bias)
//
// with Views rows of features an image (1 without test-time views; with
// them the trunk's rows are view-major, row v·N+i for image i of N).
type Head struct {
	Weight  []float32 // Classes × Dim, row-major
	Bias    []float32 // Classes
	Classes int
	Dim     int
	Views   int
}

// Split is an exported model taken apart.
type Split struct {
	// Trunk is the model without its head and without metadata: its outputs
	// are Features, float32 [Views·batch, Dim], then ExportPetScore, float32
	// [batch], when the model has one. Two models whose Trunk bytes are equal
	// compute the same features.
	Trunk    []byte
	Features string
	PetScore bool
	Head     Head
}

// ErrNoHead is wrapped by SplitHead's error for a model that does not end in
// the head Export makes (a backbone, a quantized head, another tool's model).
var ErrNoHead = errors.New("the model does not end in a petbreed head")

// SplitHead finds the head of a model made by Export or ExportWith — its
// ExportProbabilities output computed by Softmax(axis=1) of a Gemm (transB=1,
// alpha and beta 1) of the features and two constant float tensors,
// optionally averaged over views (Reshape to [views, -1, classes], then
// ReduceMean over axis 0) — and returns the head's weights and the model
// cut before it.
func SplitHead(model []byte) (Split, error) {
	var s Split
	m, g, err := modelGraphOf(model)
	if err != nil {
		return s, err
	}
	info, err := m.Info()
	if err != nil {
		return s, fmt.Errorf("onnx: %w", err)
	}
	noHead := func(format string, a ...any) error {
		return fmt.Errorf("onnx: %w: %s", ErrNoHead, fmt.Sprintf(format, a...))
	}
	if len(info.Inputs) != 1 {
		return s, noHead("it has %d inputs, want one (the image)", len(info.Inputs))
	}
	for _, o := range info.Outputs {
		switch o.Name {
		case ExportProbabilities:
		case ExportPetScore:
			s.PetScore = true
		default:
			return s, noHead("its output %q is not one Export makes", o.Name)
		}
	}
	n := g.producer[ExportProbabilities]
	if n == nil {
		return s, noHead("no node computes %q", ExportProbabilities)
	}
	s.Head.Views = 1
	if n.is("ReduceMean") {
		if s.Head.Views, err = g.viewCount(n); err != nil {
			return s, noHead("%v", err)
		}
		n = g.producer[g.producer[n.input(0)].input(0)]
	}
	if !n.is("Softmax") || len(n.Inputs) != 1 || !softmaxOverClasses(n) {
		return s, noHead("%q is not a Softmax over the classes", ExportProbabilities)
	}
	gemm := g.producer[n.input(0)]
	if !gemm.is("Gemm") || len(gemm.Inputs) != 3 || gemm.attrInt("transA") != 0 || gemm.attrInt("transB") != 1 ||
		!unitAttr(gemm, "alpha") || !unitAttr(gemm, "beta") {
		return s, noHead("the Softmax does not read a Gemm(transB=1) of the features")
	}
	w, b := g.inits[gemm.input(1)], g.inits[gemm.input(2)]
	if w == nil || b == nil || len(w.Dims) != 2 || len(b.Dims) != 1 || b.Dims[0] != w.Dims[0] {
		return s, noHead("%s does not read a constant weight [classes, dim] and bias [classes]", g.describe(gemm))
	}
	if s.Head.Weight, err = w.Float32s(); err != nil {
		return s, noHead("the head weight: %v", err)
	}
	if s.Head.Bias, err = b.Float32s(); err != nil {
		return s, noHead("the head bias: %v", err)
	}
	s.Head.Classes, s.Head.Dim = int(w.Dims[0]), int(w.Dims[1])
	if len(s.Head.Weight) != s.Head.Classes*s.Head.Dim || len(s.Head.Bias) != s.Head.Classes {
		return s, noHead("the head's tensors do not hold [%d, %d] and [%d] values", s.Head.Classes, s.Head.Dim, s.Head.Classes)
	}
	s.Features = gemm.input(0)
	if s.Features == "" || info.Inputs[0].Name == s.Features {
		return s, noHead("the head reads the image itself")
	}

	keepOut := []string{s.Features}
	if s.PetScore {
		keepOut = append(keepOut, ExportPetScore)
	}
	keep := g.ancestors(keepOut...)
	if keep[gemm] {
		return s, noHead("the pet score depends on the head")
	}
	g.cut(keep, nil, keepOut)
	g.g.AddOutput(TensorValue(s.Features, Float, []Dim{{Value: -1, Param: "rows"}, {Value: int64(s.Head.Dim)}}))
	if s.PetScore {
		g.g.AddOutput(TensorValue(ExportPetScore, Float, []Dim{batchDim(info.Inputs[0].Shape)}))
	}
	m.Metadata = nil
	m.layout.drop(modelMetadataProps)
	s.Trunk = m.Encode()
	return s, nil
}

// viewCount checks that mean is the view average of export_tta.go
// (ReduceMean over axis 0, keepdims 0, of a Reshape to [views, -1, classes])
// and returns the number of views.
func (x *graph) viewCount(mean *Node) (int, error) {
	if mean.attrInt("keepdims") != 0 || mean.Attr("keepdims") == nil {
		return 0, errors.New("the view average keeps its dims")
	}
	axes := mean.Attr("axes")
	var ax []int64
	switch {
	case axes != nil:
		ax = axes.Ints
	case len(mean.Inputs) == 2:
		t := x.inits[mean.input(1)]
		if t == nil {
			return 0, errors.New("the view average's axes are not constant")
		}
		var err error
		if ax, err = t.Int64s(); err != nil {
			return 0, err
		}
	}
	if len(ax) != 1 || ax[0] != 0 {
		return 0, fmt.Errorf("the view average is over axes %v, want [0]", ax)
	}
	r := x.producer[mean.input(0)]
	if !r.is("Reshape") || len(r.Inputs) != 2 || x.inits[r.input(1)] == nil {
		return 0, errors.New("the view average does not read a constant Reshape")
	}
	shape, err := x.inits[r.input(1)].Int64s()
	if err != nil {
		return 0, err
	}
	if len(shape) != 3 || shape[0] < 2 || shape[1] != -1 || shape[0] > math.MaxInt32 {
		return 0, fmt.Errorf("the view average reshapes to %v, want [views, -1, classes]", shape)
	}
	if x.producer[r.input(0)] == nil {
		return 0, errors.New("the view average reads no node")
	}
	return int(shape[0]), nil
}

// softmaxOverClasses says whether a Softmax of a [rows, classes] value is
// taken over the classes: axis 1 or -1 (opset 13's default is -1; before it
// the default, 1, flattened the same way).
func softmaxOverClasses(n *Node) bool {
	a := n.Attr("axis")
	return a == nil || a.I == 1 || a.I == -1
}

// unitAttr says whether a float attribute is absent or 1.
func unitAttr(n *Node, name string) bool {
	a := n.Attr(name)
	return a == nil || a.F == 1
}
