package onnx_test

import (
	"math"
	"slices"
	"testing"

	"petbreed/internal/onnx"
	"petbreed/internal/onnxrt"
	"petbreed/internal/testassets"
)

// Graph rewrites made with the editable graph, loaded by the real ONNX
// Runtime.

// TestTransformIdentityORT inserts an Identity node before the real fp32
// backbone's output: ONNX Runtime loads the edited model and computes the
// same probabilities, bit for bit, on real images.
func TestTransformIdentityORT(t *testing.T) {
	data := testassets.Read(t, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	m, err := onnx.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	out := g.Outputs[0].Name
	p := g.Producer(out)
	if p == nil {
		t.Fatalf("no node computes %q", out)
	}
	i := slices.Index(g.Nodes, p)
	p.Outputs[slices.Index(p.Outputs, out)] = out + "_before_identity"
	g.ReplaceNode(i, p)
	g.InsertNode(i+1, onnx.NewNode("petbreed_identity", "Identity", []string{out + "_before_identity"}, []string{out}))
	edited := m.Encode()

	info, err := onnx.ParseInfo(edited)
	if err != nil {
		t.Fatal(err)
	}
	if info.Nodes != len(g.Nodes) || info.Outputs[0].Name != out {
		t.Fatalf("edited model: %d nodes, outputs %v", info.Nodes, info.Outputs)
	}
	batch := imageBatch(t, testassets.Path(t, "photos", "chelsea.png"), testassets.Path(t, "photos", "pets.jpg"))
	shape := []int64{2, 3, 224, 224}
	want, err := openBytes(t, "orig.onnx", data, onnxrt.Options{}).Run(batch, shape)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openBytes(t, "edited.onnx", edited, onnxrt.Options{}).Run(batch, shape)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[0].Float32, want[0].Float32) || len(got[0].Float32) != 2000 {
		t.Errorf("the Identity changed the output (%d values)", len(got[0].Float32))
	}
}

// TestTransformReplaceWeightsORT replaces a Gemm's weight initializer: ONNX
// Runtime computes with the new weights.
func TestTransformReplaceWeightsORT(t *testing.T) {
	m, err := onnx.Decode(onnx.SynthGemmModel(false))
	if err != nil {
		t.Fatal(err)
	}
	// W is [3 classes, 4 features], the Gemm has transB = 1.
	w := []float32{0.5, -1, 2, 0, 1, 1, 1, 1, -3, 0.25, 0, 4}
	old := m.Graph.Initializer("W")
	if old == nil {
		t.Fatal("no initializer W")
	}
	m.Graph.SetInitializer(onnx.FloatTensor("W", old.Dims, w))
	b, err := m.Graph.Initializer("b").Float32s()
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{1, 2, 3, 4, -1, 0.5, 0, 2}
	outs, err := openBytes(t, "w.onnx", m.Encode(), onnxrt.Options{IntraOpThreads: 1}).Run(x, []int64{2, 2, 2})
	if err != nil {
		t.Fatal(err)
	}
	got := outs[0].Float32
	if len(got) != 6 {
		t.Fatalf("got %d values, want 6", len(got))
	}
	for i := range 2 {
		for c := range 3 {
			want := float64(b[c])
			for d := range 4 {
				want += float64(w[c*4+d]) * float64(x[i*4+d])
			}
			if math.Abs(float64(got[i*3+c])-want) > 1e-5 {
				t.Errorf("y[%d][%d] = %g, want %g", i, c, got[i*3+c], want)
			}
		}
	}
}
