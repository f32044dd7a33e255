package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// ViewFlip is the left-right mirror of the preprocessed image (the view
// package features caches as "flip").
const ViewFlip = "flip"

// TTAViews returns the views ExportOptions.TTA may name.
func TTAViews() []string { return []string{ViewFlip} }

// viewRewrite is the test-time augmentation of ExportWith. The image batch
// x [B,3,H,W] becomes the views stacked on the batch axis,
//
//	views = Concat(x, Slice(x, axis 3 reversed), axis=0)   [V·B,3,H,W]
//
// which every node that read x reads instead, so the backbone and the head
// run once on V·B images; each per-row output is then averaged over the
// views:
//
//	out = ReduceMean(Reshape(rows, [V, -1, ...]), axes=[0], keepdims=0)
//
// The probabilities stay a distribution (a mean of distributions), and the
// pet score the mean of the views' scores.
type viewRewrite struct {
	opset   int64 // of the ONNX domain
	input   string
	views   int // V, the image included
	classes int
	value   func(base string) string // an unused value name
	node    func(base string) string // an unused node name
	init    func(*Tensor)            // adds an initializer
}

// checkViews reports whether the graph can take the views rewrite: Slice
// with steps needs opset 10, and the image must be read by nodes only (not
// by a subgraph, which the rewrite would not redirect).
func (g *graph) checkViews(opset int64, input string) error {
	if opset < 10 {
		return fmt.Errorf("onnx: export: test-time views need opset 10 of %s, the backbone imports %d", DefaultDomain, opset)
	}
	for _, n := range g.nodes {
		if r := n.reads(); len(r) > len(n.Inputs) && slices.Contains(r[len(n.Inputs):], input) {
			return fmt.Errorf("onnx: export: test-time views: a subgraph of %s reads the input %q", g.describe(n), input)
		}
	}
	return nil
}

// stack makes the nodes reading the image read its views, and computes them
// first.
func (v viewRewrite) stack(gr *Graph) {
	views := v.value("tta_views")
	for i, n := range gr.Nodes {
		if slices.Contains(n.Inputs, v.input) {
			for j, s := range n.Inputs {
				if s == v.input {
					n.Inputs[j] = views
				}
			}
			gr.ReplaceNode(i, n)
		}
	}
	flip := v.value("tta_flip")
	starts, ends, axes, steps := v.value("tta_flip_starts"), v.value("tta_flip_ends"), v.value("tta_flip_axes"), v.value("tta_flip_steps")
	v.init(int64Tensor(starts, []int64{1}, []int64{-1}))
	v.init(int64Tensor(ends, []int64{1}, []int64{math.MinInt64})) // through the first column
	v.init(int64Tensor(axes, []int64{1}, []int64{3}))
	v.init(int64Tensor(steps, []int64{1}, []int64{-1}))
	gr.InsertNode(0, NewNode(v.node("petbreed_tta_flip"), "Slice",
		[]string{v.input, starts, ends, axes, steps}, []string{flip}))
	gr.InsertNode(1, NewNode(v.node("petbreed_tta_views"), "Concat",
		[]string{v.input, flip}, []string{views}, IntAttr("axis", 0)))
}

// average appends the nodes computing out, the mean over the views of in:
// [V·B, classes] when perClass, else [V·B].
func (v viewRewrite) average(gr *Graph, in, out string, perClass bool) {
	shape := []int64{int64(v.views), -1}
	if perClass {
		shape = append(shape, int64(v.classes))
	}
	shapeName, byView := v.value(out+"_view_shape"), v.value(out+"_by_view")
	v.init(int64Tensor(shapeName, []int64{int64(len(shape))}, shape))
	gr.InsertNode(len(gr.Nodes), NewNode(v.node("petbreed_tta_reshape"), "Reshape",
		[]string{in, shapeName}, []string{byView}))
	mean := NewNode(v.node("petbreed_tta_mean"), "ReduceMean", []string{byView}, []string{out}, IntAttr("keepdims", 0))
	if v.opset >= 18 { // axes became an input
		axes := v.value(out + "_view_axis")
		v.init(int64Tensor(axes, []int64{1}, []int64{0}))
		mean.Inputs = append(mean.Inputs, axes)
	} else {
		mean.Attrs = append(mean.Attrs, &Attribute{Name: "axes", Type: AttrInts, Ints: []int64{0}})
	}
	gr.InsertNode(len(gr.Nodes), mean)
}

// int64Tensor returns an int64 tensor, its values as raw_data.
func int64Tensor(name string, dims []int64, v []int64) *Tensor {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return &Tensor{Name: name, Type: Int64, Dims: dims, RawData: raw}
}

// dimsOf is the fixed shape dims.
func dimsOf(dims []int64) []Dim {
	out := make([]Dim, len(dims))
	for i, d := range dims {
		out[i] = Dim{Value: d}
	}
	return out
}
