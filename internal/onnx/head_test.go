package onnx

import (
	"errors"
	"reflect"
	"testing"
)

// exportSynth exports SynthGemmModel's features with a 2-class head, with
// opt.
func exportSynth(t testing.TB, opt ExportOptions) (model []byte, w, b []float32) {
	t.Helper()
	base := SynthGemmModel(true)
	f, err := FindFeatures(base)
	if err != nil {
		t.Fatal(err)
	}
	w = []float32{0.5, -1, 2, 0.25, -0.5, 1, 0, 3}
	b = []float32{0.1, -0.1}
	model, err = ExportWith(base, f, w, b, 2, map[string]string{"petbreed.labels": `["a","b"]`}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return model, w, b
}

func TestSplitHeadSynthetic(t *testing.T) {
	model, w, b := exportSynth(t, ExportOptions{})
	s, err := SplitHead(model)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Head.Weight, w) || !reflect.DeepEqual(s.Head.Bias, b) || s.Head.Classes != 2 ||
		s.Head.Dim != 4 || s.Head.Views != 1 || s.PetScore || s.Features != "flat" {
		t.Errorf("split %+v", s.Head)
	}
	trunk, err := Decode(s.Trunk)
	if err != nil {
		t.Fatal(err)
	}
	info, err := trunk.Info()
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Outputs) != 1 || info.Outputs[0].Name != "flat" || len(trunk.Metadata) != 0 {
		t.Errorf("trunk outputs %v, metadata %v", info.Outputs, trunk.Metadata)
	}
	for _, n := range trunk.Graph.Nodes {
		if n.OpType == "Gemm" || n.OpType == "Softmax" {
			t.Errorf("the trunk keeps the head's %s", n.OpType)
		}
	}
	if trunk.Graph.Initializer(ExportWeight) != nil {
		t.Error("the trunk keeps the head's weight")
	}
	// Another head on the same backbone: the same trunk, byte for byte.
	base := SynthGemmModel(true)
	f, _ := FindFeatures(base)
	other, err := ExportWith(base, f, []float32{1, 1, 1, 1, 2, 2, 2, 2}, []float32{0, 0}, 2, map[string]string{"petbreed.run_id": "x"}, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := SplitHead(other)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Trunk, s2.Trunk) {
		t.Error("two heads on one backbone give different trunks")
	}
}

func TestSplitHeadErrors(t *testing.T) {
	exported, _, _ := exportSynth(t, ExportOptions{})
	edit := func(change func(g *Graph)) []byte {
		m, err := Decode(append([]byte(nil), exported...))
		if err != nil {
			t.Fatal(err)
		}
		change(m.Graph)
		return m.Encode()
	}
	// reop replaces the node of type op by one with the same inputs and
	// outputs and attrs.
	reop := func(op string, attrs ...*Attribute) func(g *Graph) {
		return func(g *Graph) {
			for i, n := range g.Nodes {
				if n.OpType == op {
					g.ReplaceNode(i, NewNode(n.Name, op, n.Inputs, n.Outputs, attrs...))
					return
				}
			}
			t.Fatalf("no %s", op)
		}
	}
	for _, tc := range []struct {
		name  string
		model []byte
	}{
		{"a backbone, not an export", SynthGemmModel(true)},
		{"a head without a softmax", SynthGemmModel(false)},
		{"alpha 2", edit(reop("Gemm", IntAttr("transB", 1), &Attribute{Name: "alpha", Type: AttrFloat, F: 2}))},
		{"transB 0", edit(reop("Gemm"))},
		{"the weight is not constant", edit(func(g *Graph) {
			g.RemoveInitializers(func(t *Tensor) bool { return t.Name == ExportWeight })
		})},
		{"softmax over the batch", edit(reop("Softmax", IntAttr("axis", 0)))},
		{"the same edit undone splits", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.model == nil { // the edits themselves keep a good head good
				if _, err := SplitHead(edit(reop("Gemm", IntAttr("transB", 1)))); err != nil {
					t.Fatal(err)
				}
				return
			}
			if _, err := SplitHead(tc.model); !errors.Is(err, ErrNoHead) {
				t.Errorf("err %v, want ErrNoHead", err)
			}
		})
	}
	if _, err := SplitHead([]byte("not onnx")); err == nil || errors.Is(err, ErrNoHead) {
		t.Errorf("garbage: %v", err)
	}
}

func FuzzSplitHead(f *testing.F) {
	exported, _, _ := exportSynth(f, ExportOptions{})
	f.Add(exported)
	f.Add(SynthGemmModel(true))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := SplitHead(data)
		if err != nil {
			return
		}
		if len(s.Head.Weight) != s.Head.Classes*s.Head.Dim || len(s.Head.Bias) != s.Head.Classes || s.Head.Views < 1 {
			t.Fatalf("inconsistent head %d x %d, %d weights, %d biases, %d views",
				s.Head.Classes, s.Head.Dim, len(s.Head.Weight), len(s.Head.Bias), s.Head.Views)
		}
		if _, err := ParseInfo(s.Trunk); err != nil {
			t.Fatalf("SplitHead made a trunk ParseInfo rejects: %v", err)
		}
	})
}
