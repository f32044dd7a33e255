package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// TTAView is one test-time view of the model's input, as package features
// defines and names them: a square crop of side Crop at column X and row Y
// (Crop 0: the whole image), resized back to the input's size with ONNX
// Resize's bilinear rule (mode linear, half_pixel coordinates), then
// mirrored left to right when Flip.
type TTAView struct {
	Name       string
	Crop, X, Y int
	Flip       bool
}

// MirrorView is the left-right mirror of the image (features.Flipped).
func MirrorView() TTAView { return TTAView{Name: "flip", Flip: true} }

// checkViews checks the views against the input's height and width (0 when
// not fixed).
func checkViews(views []TTAView, h, w int64) error {
	for i, v := range views {
		switch {
		case v.Name == "":
			return fmt.Errorf("onnx: export: test-time view %d has no name", i)
		case slices.ContainsFunc(views[:i], func(o TTAView) bool { return o.Name == v.Name }):
			return fmt.Errorf("onnx: export: test-time view %q given twice", v.Name)
		case v.Crop == 0 && !v.Flip:
			return fmt.Errorf("onnx: export: test-time view %q is the image itself, which is always a view", v.Name)
		case v.Crop < 0 || v.X < 0 || v.Y < 0 || v.Crop == 0 && (v.X != 0 || v.Y != 0):
			return fmt.Errorf("onnx: export: test-time view %q: crop %d at (%d,%d)", v.Name, v.Crop, v.X, v.Y)
		case v.Crop > 0 && (h <= 0 || w <= 0):
			return fmt.Errorf("onnx: export: test-time view %q crops, but the model's image size is not fixed", v.Name)
		case v.Crop > 0 && (int64(v.X+v.Crop) > w || int64(v.Y+v.Crop) > h):
			return fmt.Errorf("onnx: export: test-time view %q: a %d crop at (%d,%d) is outside the %dx%d image", v.Name, v.Crop, v.X, v.Y, w, h)
		}
	}
	return nil
}

// viewRewrite is the test-time augmentation of ExportWith. The image batch
// x [B,3,H,W] becomes the views stacked on the batch axis,
//
//	views = Concat(x, view_1(x), ..., axis=0)   [V·B,3,H,W]
//	view(x) = Slice(Resize(Slice(x, crop), linear, half_pixel, sizes=Shape(x)), W reversed)
//
// (the crop and its resize only for a crop, the reversed Slice only for a
// mirror), which every node that read x reads instead, so the backbone and
// the head run once on V·B images; each per-row output is then averaged
// over the views:
//
//	out = ReduceMean(Reshape(rows, [V, -1, ...]), axes=[0], keepdims=0)
//
// The probabilities stay a distribution (a mean of distributions), and the
// pet score is the mean of the views' scores.
type viewRewrite struct {
	opset   int64 // of the ONNX domain
	input   string
	views   []TTAView // besides the image itself
	classes int
	value   func(base string) string // an unused value name
	node    func(base string) string // an unused node name
	init    func(*Tensor)            // adds an initializer
}

// checkViewGraph reports whether the graph can take the views rewrite:
// Slice with steps needs opset 10, Resize with sizes 11, and the image must
// be read by nodes only (not by a subgraph, which the rewrite would not
// redirect).
func (g *graph) checkViewGraph(opset int64, input string, views []TTAView) error {
	need := int64(10)
	if slices.ContainsFunc(views, func(v TTAView) bool { return v.Crop > 0 }) {
		need = 11
	}
	if opset < need {
		return fmt.Errorf("onnx: export: these test-time views need opset %d of %s, the backbone imports %d", need, DefaultDomain, opset)
	}
	for _, n := range g.nodes {
		if r := n.reads(); len(r) > len(n.Inputs) && slices.Contains(r[len(n.Inputs):], input) {
			return fmt.Errorf("onnx: export: test-time views: a subgraph of %s reads the input %q", g.describe(n), input)
		}
	}
	return nil
}

func (v viewRewrite) ints(base string, vals ...int64) string {
	name := v.value(base)
	v.init(int64Tensor(name, []int64{int64(len(vals))}, vals))
	return name
}

// stack makes the nodes reading the image read its views, and computes them
// first.
func (v viewRewrite) stack(gr *Graph) {
	stacked := v.value("tta_views")
	for i, n := range gr.Nodes {
		if slices.Contains(n.Inputs, v.input) {
			for j, s := range n.Inputs {
				if s == v.input {
					n.Inputs[j] = stacked
				}
			}
			gr.ReplaceNode(i, n)
		}
	}
	var nodes []*Node
	add := func(op string, in []string, attrs ...*Attribute) string {
		out := v.value("tta_" + op)
		nodes = append(nodes, NewNode(v.node("petbreed_tta_"+op), op, in, []string{out}, attrs...))
		return out
	}
	var shape, noFloats string
	parts := []string{v.input}
	for _, view := range v.views {
		x := v.input
		if view.Crop > 0 {
			if shape == "" {
				shape = add("Shape", []string{v.input})
				noFloats = v.value("tta_empty")
				v.init(FloatTensor(noFloats, []int64{0}, nil))
			}
			c, cx, cy := int64(view.Crop), int64(view.X), int64(view.Y)
			x = add("Slice", []string{x, v.ints("tta_crop_starts", cy, cx), v.ints("tta_crop_ends", cy+c, cx+c), v.ints("tta_crop_axes", 2, 3)})
			// roi and scales empty, the size the input's own.
			x = add("Resize", []string{x, noFloats, noFloats, shape},
				stringAttr("mode", "linear"), stringAttr("coordinate_transformation_mode", "half_pixel"))
		}
		if view.Flip {
			x = add("Slice", []string{x, v.ints("tta_flip_starts", -1), v.ints("tta_flip_ends", math.MinInt64), // through the first column
				v.ints("tta_flip_axes", 3), v.ints("tta_flip_steps", -1)})
		}
		parts = append(parts, x)
	}
	nodes = append(nodes, NewNode(v.node("petbreed_tta_views"), "Concat", parts, []string{stacked}, IntAttr("axis", 0)))
	for i, n := range nodes {
		gr.InsertNode(i, n)
	}
}

// average appends the nodes computing out, the mean over the views of in:
// [V·B, classes] when perClass, else [V·B].
func (v viewRewrite) average(gr *Graph, in, out string, perClass bool) {
	shape := []int64{int64(1 + len(v.views)), -1}
	if perClass {
		shape = append(shape, int64(v.classes))
	}
	byView := v.value(out + "_by_view")
	gr.InsertNode(len(gr.Nodes), NewNode(v.node("petbreed_tta_reshape"), "Reshape",
		[]string{in, v.ints(out+"_view_shape", shape...)}, []string{byView}))
	mean := NewNode(v.node("petbreed_tta_mean"), "ReduceMean", []string{byView}, []string{out}, IntAttr("keepdims", 0))
	if v.opset >= 18 { // axes became an input
		mean.Inputs = append(mean.Inputs, v.ints(out+"_view_axis", 0))
	} else {
		mean.Attrs = append(mean.Attrs, &Attribute{Name: "axes", Type: AttrInts, Ints: []int64{0}})
	}
	gr.InsertNode(len(gr.Nodes), mean)
}

func stringAttr(name, s string) *Attribute {
	return &Attribute{Name: name, Type: AttrString, S: []byte(s)}
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
