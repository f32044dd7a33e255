package quantize

import (
	"errors"
	"testing"

	"petbreed/internal/onnx"
)

// tinyModel is input → Conv(w, b) → the given tail, opset 12.
func tinyModel(tail ...*onnx.Node) *onnx.Model {
	w := onnx.FloatTensor("w", []int64{2, 3, 1, 1}, []float32{1, 2, 3, -1, -2, -3})
	b := onnx.FloatTensor("b", []int64{2}, []float32{0.5, -0.5})
	nodes := append([]*onnx.Node{onnx.NewNode("conv", "Conv", []string{"input", "w", "b"}, []string{"c"})}, tail...)
	return &onnx.Model{IRVersion: 7, Opsets: []*onnx.Opset{{Version: 12}}, Graph: &onnx.Graph{
		Name: "tiny", Nodes: nodes, Initializers: []*onnx.Tensor{w, b,
			onnx.FloatTensor("lo", nil, []float32{0}), onnx.FloatTensor("hi", nil, []float32{6}),
			onnx.FloatTensor("half", nil, []float32{0.5})},
		Inputs:  []*onnx.Value{onnx.TensorValue("input", onnx.Float, []onnx.Dim{{Value: 1}, {Value: 3}, {Value: 4}, {Value: 4}})},
		Outputs: []*onnx.Value{onnx.TensorValue("out", onnx.Float, nil)},
	}}
}

func TestPlan(t *testing.T) {
	clip := func(lo, hi string, out string) *onnx.Node {
		return onnx.NewNode("clip", "Clip", []string{"c", lo, hi}, []string{out})
	}
	for _, tc := range []struct {
		name        string
		m           *onnx.Model
		folded      int
		quantized   []string // activations, in order
		shared      map[string]string
		raise       bool
		unsupported string
	}{
		{"ReLU6 folded", tinyModel(clip("lo", "hi", "out")), 1, []string{"input", "out"}, nil, true, ""},
		{"Relu folded", tinyModel(onnx.NewNode("relu", "Relu", []string{"c"}, []string{"out"})), 1, []string{"input", "out"}, nil, true, ""},
		{"Clip above 0 kept", tinyModel(clip("half", "hi", "out")), 0, []string{"input", "c"}, nil, true, ""},
		{"two readers: kept", tinyModel(clip("lo", "hi", "r"), onnx.NewNode("add", "Add", []string{"c", "r"}, []string{"out"})),
			0, []string{"input", "c", "r", "out"}, nil, true, ""},
		{"flatten carries", tinyModel(onnx.NewNode("gap", "GlobalAveragePool", []string{"c"}, []string{"g"}),
			onnx.NewNode("flat", "Flatten", []string{"g"}, []string{"out"})),
			0, []string{"input", "c", "g", "out"}, map[string]string{"out": "g"}, true, ""},
		{"softmax at 12 refused per channel", tinyModel(onnx.NewNode("sm", "Softmax", []string{"c"}, []string{"out"})),
			0, nil, nil, false, "Softmax"},
		{"unknown op", tinyModel(onnx.NewNode("lrn", "LRN", []string{"c"}, []string{"out"})), 0, nil, nil, false, "LRN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newPlan(tc.m, Options{})
			if tc.unsupported != "" {
				var ue *UnsupportedError
				if !errors.As(err, &ue) || ue.Op != tc.unsupported {
					t.Fatalf("err %v, want the %s refused", err, tc.unsupported)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.folded) != tc.folded || p.raise != tc.raise || len(p.quantized) != len(tc.quantized) {
				t.Fatalf("folded %d raise %v quantized %v", len(p.folded), p.raise, p.quantized)
			}
			for i, q := range tc.quantized {
				if p.quantized[i] != q {
					t.Errorf("quantized %v, want %v", p.quantized, tc.quantized)
				}
			}
			for k, v := range tc.shared {
				if p.shared[k] != v {
					t.Errorf("shared %v, want %v", p.shared, tc.shared)
				}
			}
			// The rewrite: the Clip gone, the weight int8, the bias int32.
			params := map[string]Params{}
			for _, a := range p.calibrated() {
				params[a] = ActivationParams(-1, 6)
			}
			if err := p.apply(params, Options{}); err != nil {
				t.Fatal(err)
			}
			g := tc.m.Graph
			if g.Initializer("w") != nil || g.Initializer("w_quantized").Type != onnx.Int8 || g.Initializer("b_quantized").Type != onnx.Int32 {
				t.Errorf("weights not replaced: %v", g.Initializers)
			}
			clips := 0
			for _, n := range g.Nodes {
				if n.OpType == "Clip" || n.OpType == "Relu" {
					clips++
				}
			}
			if tc.folded > 0 && clips != 0 {
				t.Errorf("%d Clip/Relu left after folding", clips)
			}
			if v, _ := tc.m.Opset(""); v != 13 {
				t.Errorf("opset %d", v)
			}
			if _, err := onnx.Decode(tc.m.Encode()); err != nil {
				t.Error(err)
			}
		})
	}
}
