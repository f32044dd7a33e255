package onnx

import (
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestFindFeaturesRealModel(t *testing.T) {
	data, err := os.ReadFile(realModel(t))
	if err != nil {
		t.Fatal(err)
	}
	f, err := FindFeatures(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Features{
		Tensor: "472_quantized", Dim: 1280, Quantized: true,
		Scale: "464_scale", ZeroPoint: "464_zero_point",
		ScaleValue: 0.019110054, ZeroPointValue: 0,
		Classifier: []string{"Gemm_104_MatMul_quant", "Gemm_104_Add_quant", "output_DequantizeLinear"},
		Input:      "input",
		InputShape: []Dim{{-1, "batch_size"}, {3, ""}, {224, ""}, {224, ""}},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("FindFeatures =\n%+v\nwant\n%+v", f, want)
	}
}

// Builders of synthetic float models (see synthModel for the helpers).

func floatTensor(name string, dims []int64, v []float32) []byte {
	b := fString(8, name)
	for _, d := range dims {
		b = append(b, fVarint(1, d)...)
	}
	b = append(b, fVarint(2, int64(Float))...)
	raw := make([]byte, 0, 4*len(v))
	for _, x := range v {
		raw = protowire.AppendFixed32(raw, math.Float32bits(x))
	}
	return append(b, fBytes(9, raw)...)
}

func intAttr(name string, v int64) []byte {
	return msg(fString(1, name), fVarint(3, v), fVarint(20, 2))
}

// node encodes a NodeProto; attrs are encoded AttributeProtos.
func node(name, op string, in, out []string, attrs ...[]byte) []byte {
	var b []byte
	for _, s := range in {
		b = append(b, fString(1, s)...)
	}
	for _, s := range out {
		b = append(b, fString(2, s)...)
	}
	if name != "" {
		b = append(b, fString(3, name)...)
	}
	b = append(b, fString(4, op)...)
	for _, a := range attrs {
		b = append(b, fBytes(5, a)...)
	}
	return b
}

func model(ir, opsetVersion int64, graph ...[]byte) []byte {
	return msg(fVarint(1, ir), fString(2, "test"), fString(3, "9.9"),
		fBytes(7, msg(graph...)), fBytes(8, opset("", opsetVersion)),
		fBytes(14, prop("keep", "me")))
}

// SynthGemm weights: 3 classes of 4 features.
var (
	synthW = []float32{1, 0, -1, 0.5, 0, 2, 0, -0.5, -1, 1, 1, 0}
	synthB = []float32{0.1, -0.2, 0.3}
)

// SynthGemmModel is x float32[N,2,2] → Flatten → flat [N,4] → Gemm(W [3,4],
// b [3], transB=1) → y [N,3], optionally → Softmax → prob. The Flatten node
// has no name.
func SynthGemmModel(softmax bool) []byte {
	nodes := [][]byte{
		fBytes(1, node("", "Flatten", []string{"x"}, []string{"flat"}, intAttr("axis", 1))),
		fBytes(1, node("fc", "Gemm", []string{"flat", "W", "b"}, []string{"y"}, intAttr("transB", 1))),
	}
	out := "y"
	if softmax {
		nodes = append(nodes, fBytes(1, node("", "Softmax", []string{"y"}, []string{"prob"}, intAttr("axis", 1))))
		out = "prob"
	}
	return model(7, 13, append(nodes,
		fString(2, "synth"),
		fBytes(5, floatTensor("W", []int64{3, 4}, synthW)),
		fBytes(5, floatTensor("b", []int64{3}, synthB)),
		fBytes(5, floatTensor("unused", []int64{1}, []float32{7})),
		fBytes(11, tensorValue("x", Float, []any{"N", 2, 2})),
		fBytes(12, tensorValue(out, Float, []any{"N", 3})),
		fBytes(13, tensorValue("flat", Float, []any{"N", 4})),
		fBytes(13, tensorValue("y", Float, []any{"N", 3})),
	)...)
}

// SynthMatMulModel is x [N,4] → Relu → h → MatMul(Wt [4,3]) → m → Add(b)
// → y, an IR 3 model that lists its initializers among the inputs.
func SynthMatMulModel() []byte {
	wt := make([]float32, 12)
	for c := 0; c < 3; c++ {
		for d := 0; d < 4; d++ {
			wt[d*3+c] = synthW[c*4+d]
		}
	}
	return model(3, 9,
		fBytes(1, node("relu", "Relu", []string{"x"}, []string{"h"})),
		fBytes(1, node("mm", "MatMul", []string{"h", "Wt"}, []string{"m"})),
		fBytes(1, node("add", "Add", []string{"b", "m"}, []string{"y"})),
		fBytes(5, floatTensor("Wt", []int64{4, 3}, wt)),
		fBytes(5, floatTensor("b", []int64{3}, synthB)),
		fBytes(11, tensorValue("x", Float, []any{"N", 4})),
		fBytes(11, tensorValue("Wt", Float, []any{4, 3})),
		fBytes(11, tensorValue("b", Float, []any{3})),
		fBytes(12, tensorValue("y", Float, []any{"N", 3})),
	)
}

func TestFindFeaturesSynthetic(t *testing.T) {
	in4 := []Dim{{-1, "N"}, {2, ""}, {2, ""}}
	tests := []struct {
		name  string
		model []byte
		want  Features
	}{
		{"gemm", SynthGemmModel(false), Features{Tensor: "flat", Dim: 4, Classifier: []string{"fc"}, Input: "x", InputShape: in4}},
		{"gemm softmax", SynthGemmModel(true), Features{Tensor: "flat", Dim: 4, Classifier: []string{"fc", "#2"}, Input: "x", InputShape: in4}},
		{"matmul add", SynthMatMulModel(), Features{Tensor: "h", Dim: 4, Classifier: []string{"mm", "add"}, Input: "x",
			InputShape: []Dim{{-1, "N"}, {4, ""}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := FindFeatures(tc.model)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f, tc.want) {
				t.Errorf("FindFeatures =\n%+v\nwant\n%+v", f, tc.want)
			}
		})
	}
}

func TestFindFeaturesErrors(t *testing.T) {
	x := fBytes(11, tensorValue("x", Float, []any{"N", 4}))
	y := fBytes(12, tensorValue("y", Float, []any{"N", 4}))
	w := fBytes(5, floatTensor("W", []int64{4, 4}, make([]float32, 16)))
	tests := []struct {
		name  string
		model []byte
		want  string
	}{
		{"garbage", []byte("not a model"), "not an ONNX model"},
		{"relu", model(7, 13, fBytes(1, node("r", "Relu", []string{"x"}, []string{"y"})), x, y),
			`output "y" is computed by the Relu node "r"`},
		{"two outputs", model(7, 13, fBytes(1, node("r", "Relu", []string{"x"}, []string{"y"})), x, y,
			fBytes(12, tensorValue("x", Float, nil))), "2 outputs"},
		{"no input", model(7, 13, fBytes(1, node("r", "Relu", []string{"x"}, []string{"y"})), y), "0 inputs"},
		{"output is the input", model(7, 13, x, fBytes(12, tensorValue("x", Float, nil))), "not computed by a node"},
		{"weight not constant", model(7, 13, fBytes(1, node("g", "Gemm", []string{"x", "x"}, []string{"y"})), x, y),
			`weight "x" of the Gemm node "g" is not a constant matrix`},
		{"vector weight", model(7, 13, fBytes(1, node("g", "Gemm", []string{"x", "v"}, []string{"y"})), x, y,
			fBytes(5, floatTensor("v", []int64{4}, make([]float32, 4)))), "not a constant matrix"},
		{"transA", model(7, 13, fBytes(1, node("g", "Gemm", []string{"x", "W"}, []string{"y"}, intAttr("transA", 1))), x, y, w),
			"transposes its data input"},
		{"residual add", model(7, 13,
			fBytes(1, node("m", "MatMul", []string{"x", "W"}, []string{"m"})),
			fBytes(1, node("a", "Add", []string{"m", "x"}, []string{"y"})), x, y, w),
			`the Add node "a" does not add a constant to a MatMul`},
		{"softmax of input", model(7, 13, fBytes(1, node("s", "Softmax", []string{"x"}, []string{"y"})), x, y),
			"the input of the Softmax node \"s\" is not computed by a node"},
		{"dequantize of a conv", model(7, 13,
			fBytes(1, node("c", "QLinearConv", []string{"x"}, []string{"q"})),
			fBytes(1, node("", "DequantizeLinear", []string{"q", "s", "z"}, []string{"y"})), x, y),
			"the DequantizeLinear node #1 does not dequantize a QLinearMatMul's result"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := FindFeatures(tc.model)
			if err == nil {
				t.Fatalf("FindFeatures = %+v, want an error", f)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(tc.want, "computed by") || strings.Contains(tc.want, "constant") || strings.Contains(tc.want, "transposes") {
				if !errors.Is(err, ErrNoClassifier) {
					t.Errorf("error %q does not wrap ErrNoClassifier", err)
				}
			}
		})
	}
}

func TestSetMetadata(t *testing.T) {
	orig := SynthGemmModel(false)
	// A repeated key, to check that the copy keeps one.
	data := append(append([]byte(nil), orig...), fBytes(14, prop("keep", "again"))...)
	out, err := SetMetadata(data, map[string]string{"keep": "new", "b": "2", "a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep": "new", "a": "1", "b": "2"}
	if !reflect.DeepEqual(m.Metadata, want) {
		t.Errorf("Metadata = %v, want %v", m.Metadata, want)
	}
	var keys []string
	if err := eachField(out, func(f field) error {
		if f.num == modelMetadataProps {
			k, _, err := parseEntry(f.b)
			keys = append(keys, k)
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(keys, []string{"keep", "a", "b"}) {
		t.Errorf("keys in order %q, want keep (in place), a, b", keys)
	}
	if m.ProducerName != "test" || m.Nodes != 2 || m.Initializers != 3 {
		t.Errorf("the rest changed: %+v", m)
	}
	// Round trip: setting the same values again changes nothing; no keys
	// copies the model byte for byte.
	again, err := SetMetadata(out, want)
	if err != nil || string(again) != string(out) {
		t.Errorf("second SetMetadata changed the model (%v)", err)
	}
	same, err := SetMetadata(orig, nil)
	if err != nil || string(same) != string(orig) {
		t.Errorf("SetMetadata(nil) changed the model (%v)", err)
	}
	if _, err := SetMetadata(orig, map[string]string{"": "x"}); err == nil {
		t.Error("empty key: no error")
	}
	if _, err := SetMetadata([]byte("garbage"), want); !errors.Is(err, ErrNotONNX) {
		t.Errorf("garbage: %v, want ErrNotONNX", err)
	}
}

func TestExportSynthetic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		model []byte
	}{{"gemm softmax", SynthGemmModel(true)}, {"matmul ir3", SynthMatMulModel()}} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := FindFeatures(tc.model)
			if err != nil {
				t.Fatal(err)
			}
			w := []float32{1, 2, 3, 4, 5, 6, 7, 8}
			out, err := Export(tc.model, f, w, []float32{0, 1}, 2, map[string]string{"keep": "replaced", "k": "v"})
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseInfo(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Outputs) != 1 || m.Outputs[0].String() != "probabilities: float32[N,2]" {
				t.Errorf("outputs = %v", m.Outputs)
			}
			if len(m.Inputs) != 1 || m.Inputs[0].Name != "x" {
				t.Errorf("inputs = %v", m.Inputs)
			}
			if m.ProducerName != "petbreed" || m.ProducerVersion != "" {
				t.Errorf("producer = %q %q", m.ProducerName, m.ProducerVersion)
			}
			if !reflect.DeepEqual(m.Metadata, map[string]string{"keep": "replaced", "k": "v"}) {
				t.Errorf("metadata = %v", m.Metadata)
			}
			// The old weights are gone, the head's are in.
			_, g, err := modelGraphOf(out)
			if err != nil {
				t.Fatal(err)
			}
			var inits []string
			for name := range g.inits {
				inits = append(inits, name)
			}
			if len(inits) != 2 || g.inits["head_weight"] == nil || g.inits["head_bias"] == nil {
				t.Errorf("initializers = %v", inits)
			}
			hw, err := ReadInitializer(out, "head_weight")
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := hw.Float32s(); !reflect.DeepEqual(got, w) || !reflect.DeepEqual(hw.Dims, []int64{2, 4}) {
				t.Errorf("head_weight = %v%v", hw.Dims, got)
			}
			var ops []string
			for _, n := range g.nodes {
				ops = append(ops, n.OpType)
			}
			want := []string{"Flatten", "Gemm", "Softmax"}
			if f.Tensor == "h" {
				want = []string{"Relu", "Gemm", "Softmax"}
				if !g.inputs["head_weight"] || !g.inputs["head_bias"] || g.inputs["Wt"] || g.inputs["b"] {
					t.Errorf("IR 3 inputs = %v", g.inputs)
				}
			}
			if !reflect.DeepEqual(ops, want) {
				t.Errorf("nodes = %v, want %v", ops, want)
			}
			if gemm := g.nodes[1]; !reflect.DeepEqual(gemm.Inputs, []string{f.Tensor, "head_weight", "head_bias"}) || gemm.attrInt("transB") != 1 {
				t.Errorf("Gemm = %+v", gemm)
			}
		})
	}
}

func TestExportErrors(t *testing.T) {
	data := SynthGemmModel(false)
	f, err := FindFeatures(data)
	if err != nil {
		t.Fatal(err)
	}
	w, b := make([]float32, 8), make([]float32, 2)
	mod := func(fn func(*Features)) Features {
		g := f
		fn(&g)
		return g
	}
	tests := []struct {
		name    string
		data    []byte
		f       Features
		w, b    []float32
		classes int
		meta    map[string]string
		want    string
	}{
		{"zero classes", data, f, nil, nil, 0, nil, "0 classes"},
		{"negative classes", data, f, w, b, -2, nil, "-2 classes"},
		{"short weight", data, f, w[:7], b, 2, nil, "head weight has 7 values, want 2 classes x 4 features = 8"},
		{"long bias", data, f, w, make([]float32, 3), 2, nil, "head bias has 3 values, want 2"},
		{"NaN", data, f, append([]float32{float32(math.NaN())}, w[1:]...), b, 2, nil, "head weight [0][0] is NaN"},
		{"Inf bias", data, f, w, []float32{0, float32(math.Inf(1))}, 2, nil, "head bias [1] is +Inf"},
		{"empty meta key", data, f, w, b, 2, map[string]string{"": "x"}, "empty key"},
		{"garbage", []byte("garbage"), f, w, b, 2, nil, "not an ONNX model"},
		{"no dim", data, mod(func(f *Features) { f.Dim = 0 }), nil, nil, 2, nil, "feature dim 0"},
		{"unknown tensor", data, mod(func(f *Features) { f.Tensor = "nope" }), w, b, 2, nil, `no node computes "nope"`},
		{"unknown input", data, mod(func(f *Features) { f.Input = "img" }), w, b, 2, nil, `no input "img"`},
		{"unknown classifier", data, mod(func(f *Features) { f.Classifier = []string{"fc2"} }), w, b, 2, nil, `"fc2" is not in the model`},
		{"classifier needed", data, mod(func(f *Features) { f.Classifier = []string{"#0", "fc"} }), w, b, 2, nil, `"#0" is needed to compute "flat"`},
		{"quantized without scale", data, mod(func(f *Features) { f.Quantized = true }), w, b, 2, nil, "is not an initializer"},
		{"old opset", model(7, 6, fBytes(1, node("fc", "Gemm", []string{"x", "W"}, []string{"y"}, intAttr("transB", 1))),
			fBytes(5, floatTensor("W", []int64{3, 4}, synthW)),
			fBytes(11, tensorValue("x", Float, []any{"N", 4})), fBytes(12, tensorValue("y", Float, []any{"N", 3}))),
			Features{Tensor: "x", Dim: 4, Input: "x"}, w, b, 2, nil, "opset 6 of ai.onnx, want 7 or later"},
		{"probabilities taken", model(7, 13,
			fBytes(1, node("r", "Relu", []string{"x"}, []string{"probabilities"})),
			fBytes(1, node("fc", "Gemm", []string{"probabilities", "W"}, []string{"y"}, intAttr("transB", 1))),
			fBytes(5, floatTensor("W", []int64{3, 4}, synthW)),
			fBytes(11, tensorValue("x", Float, []any{"N", 4})), fBytes(12, tensorValue("y", Float, []any{"N", 3}))),
			Features{Tensor: "probabilities", Dim: 4, Input: "x"}, w, b, 2, nil, `already has a value named "probabilities"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Export(tc.data, tc.f, tc.w, tc.b, tc.classes, tc.meta)
			if err == nil {
				t.Fatalf("Export = %d bytes, want an error", len(out))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestFeatureModelSynthetic(t *testing.T) {
	data := SynthGemmModel(true)
	f, err := FindFeatures(data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := FeatureModel(data, f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	// flat's type comes from the value_info entry, which is dropped.
	if len(m.Outputs) != 1 || m.Outputs[0].String() != "flat: float32[N,4]" {
		t.Errorf("outputs = %v", m.Outputs)
	}
	if m.Nodes != 1 || m.Initializers != 0 || m.ProducerName != "test" || m.Metadata["keep"] != "me" {
		t.Errorf("model = %+v", m)
	}
	_, g, err := modelGraphOf(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.types["flat"]; ok {
		t.Error("flat is still in value_info")
	}
	if _, ok := g.types["y"]; ok {
		t.Error("y (a dropped node's output) is still in value_info")
	}
}

func FuzzFindFeatures(f *testing.F) {
	f.Add(SynthGemmModel(true))
	f.Add(SynthMatMulModel())
	f.Fuzz(func(t *testing.T, data []byte) {
		feat, err := FindFeatures(data)
		if err != nil || feat.Dim > 1<<16 {
			return
		}
		w := make([]float32, feat.Dim)
		out, err := Export(data, feat, w, []float32{0}, 1, map[string]string{"k": "v"})
		if err == nil {
			if _, err := ParseInfo(out); err != nil {
				t.Fatalf("Export made a model ParseInfo rejects: %v", err)
			}
		}
		if out, err := FeatureModel(data, feat); err == nil {
			if _, err := ParseInfo(out); err != nil {
				t.Fatalf("FeatureModel made a model ParseInfo rejects: %v", err)
			}
		}
	})
}
