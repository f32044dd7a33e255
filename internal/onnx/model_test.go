package onnx

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"petbreed/internal/testassets"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestRoundTripRealBackbones(t *testing.T) {
	for _, tc := range []struct {
		file         string
		nodes, inits int
	}{
		{"mobilenetv2-12-int8.onnx", 73, 348},
		{"mobilenetv2-12-fp32-twin.onnx", -1, -1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data := testassets.Read(t, "backbone", tc.file)
			m, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if tc.nodes >= 0 && (len(m.Graph.Nodes) != tc.nodes || len(m.Graph.Initializers) != tc.inits) {
				t.Errorf("nodes, initializers = %d, %d; want %d, %d", len(m.Graph.Nodes), len(m.Graph.Initializers), tc.nodes, tc.inits)
			}
			if out := m.Encode(); !bytes.Equal(out, data) {
				t.Fatalf("decode → encode changed the model: %d bytes → %d, first difference at %d", len(data), len(out), firstDiff(data, out))
			}
			// Re-encoding every element from its fields gives the same
			// model (ONNX's exporters write fields in number order), so
			// the encoders agree with the decoders, not only the copies.
			forget(m)
			if out := m.Encode(); !bytes.Equal(out, data) {
				t.Errorf("re-encoded from fields: %d bytes → %d, first difference at %d", len(data), len(out), firstDiff(data, out))
			}
		})
	}
}

// forget drops the kept encodings of every element of m, so that Encode
// writes them from their fields.
func forget(m *Model) {
	for _, o := range m.Opsets {
		o.enc = nil
	}
	for _, p := range m.Metadata {
		p.enc = nil
	}
	if m.Graph != nil {
		forgetGraph(m.Graph)
	}
}

func forgetGraph(g *Graph) {
	for _, n := range g.Nodes {
		n.enc = nil
		for _, a := range n.Attrs {
			a.enc = nil
			for _, t := range append([]*Tensor{a.T}, a.Tensors...) {
				if t != nil {
					t.enc = nil
				}
			}
			for _, sg := range append([]*Graph{a.G}, a.Graphs...) {
				if sg != nil {
					forgetGraph(sg)
				}
			}
		}
	}
	for _, t := range g.Initializers {
		t.enc = nil
	}
	for _, list := range [][]*Value{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range list {
			v.enc = nil
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// unknownModel has fields this package does not decode at every level:
// functions (25) in the model, metadata_props (16) in the graph, a node's
// metadata_props (9), a tensor's doc_string (12), a value's
// metadata_props (4), an attribute's ref_attr_name (21); and the model's
// fields out of number order.
func unknownModel() []byte {
	node := msg(fString(1, "x"), fString(1, "w"), fString(2, "h"), fString(4, "Mul"), fBytes(9, prop("n", "1")))
	node2 := msg(fString(1, "h"), fString(2, "y"), fString(4, "Relu"),
		fBytes(5, msg(fString(1, "alpha"), fString(21, "ref"), fVarint(20, 1))))
	w := msg(fVarint(1, 2), fVarint(2, int64(Float)), fString(8, "w"),
		fBytes(9, []byte{0, 0, 128, 63, 0, 0, 0, 64}), fString(12, "tensor doc"))
	graph := msg(
		fBytes(1, node), fBytes(1, node2),
		fString(2, "g"),
		fBytes(5, w),
		fBytes(11, append(tensorValue("x", Float, []any{"N", 2}), fBytes(4, prop("v", "1"))...)),
		fBytes(12, tensorValue("y", Float, []any{"N", 2})),
		fBytes(16, prop("graph", "meta")),
	)
	return msg(
		fBytes(14, prop("first", "1")),
		fVarint(1, 8),
		fBytes(7, graph),
		fBytes(25, msg(fString(1, "f"), fString(2, "domain"))),
		fBytes(8, opset("", 13)),
		fString(2, "test"),
	)
}

// fieldsOf lists the field numbers of an encoded message, in order.
func fieldsOf(t *testing.T, b []byte) []protowire.Number {
	t.Helper()
	var nums []protowire.Number
	if err := eachField(b, func(f field) error { nums = append(nums, f.num); return nil }); err != nil {
		t.Fatal(err)
	}
	return nums
}

func TestEditKeepsUnknownFields(t *testing.T) {
	data := unknownModel()
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if out := m.Encode(); !bytes.Equal(out, data) {
		t.Fatalf("round trip changed the model (first difference at %d)", firstDiff(data, out))
	}
	g := m.Graph
	// Touch everything: each node, the initializer, the values, the
	// metadata; then insert an Identity and expose its output.
	for i, n := range g.Nodes {
		g.ReplaceNode(i, n)
	}
	w := g.Initializer("w")
	w.Dims = []int64{2}
	g.SetInitializer(w)
	if n := g.RenameValue("y", "y0"); n != 2 {
		t.Errorf("RenameValue renamed %d places, want 2 (the Relu's output and the graph output)", n)
	}
	g.InsertNode(len(g.Nodes), NewNode("id", "Identity", []string{"y0"}, []string{"y"}))
	g.Outputs[0].Name = "y"
	g.Outputs[0].enc = nil
	g.AddOutput(TensorValue("h", Float, []Dim{{Value: -1, Param: "N"}, {Value: 2}}))
	m.SetMetadata(map[string]string{"first": "2", "new": "x"})
	out := m.Encode()

	if got, want := fieldsOf(t, out), []protowire.Number{14, 1, 7, 25, 8, 2, 14}; !reflect.DeepEqual(got, want) {
		t.Errorf("model fields %v, want %v (the original order, the new metadata last)", got, want)
	}
	m2, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	g2 := m2.Graph
	if !reflect.DeepEqual(m2.layout.unknown, m.layout.unknown) || len(m2.layout.unknown) != 1 {
		t.Errorf("model unknown fields %q, want %q", m2.layout.unknown, m.layout.unknown)
	}
	if !reflect.DeepEqual(g2.layout.unknown, [][]byte{fBytes(16, prop("graph", "meta"))}) {
		t.Errorf("graph unknown fields %q", g2.layout.unknown)
	}
	if u := g2.Nodes[0].unknown; len(u) != 1 || u[0].num != 9 {
		t.Errorf("node unknown fields %v", u)
	}
	if a := g2.Nodes[1].Attrs[0]; len(a.unknown) != 1 || a.unknown[0].num != 21 || a.Type != AttrFloat {
		t.Errorf("attribute %+v", a)
	}
	if u := g2.Initializers[0].unknown; len(u) != 1 || u[0].num != tensorDocString {
		t.Errorf("tensor unknown fields %v", u)
	}
	if u := g2.Inputs[0].unknown; len(u) != 1 || u[0].num != 4 {
		t.Errorf("value unknown fields %v", u)
	}
	var ops, outs []string
	for _, n := range g2.Nodes {
		ops = append(ops, n.OpType+"→"+n.Outputs[0])
	}
	for _, v := range g2.Outputs {
		outs = append(outs, v.Name)
	}
	if want := []string{"Mul→h", "Relu→y0", "Identity→y"}; !reflect.DeepEqual(ops, want) {
		t.Errorf("nodes %v, want %v", ops, want)
	}
	if want := []string{"y", "h"}; !reflect.DeepEqual(outs, want) {
		t.Errorf("outputs %v, want %v", outs, want)
	}
	var meta []string
	for _, p := range m2.Metadata {
		meta = append(meta, p.Key+"="+p.Value)
	}
	if want := []string{"first=2", "new=x"}; !reflect.DeepEqual(meta, want) {
		t.Errorf("metadata %v, want %v", meta, want)
	}
	// Removing.
	if n := g2.RemoveNodes(func(n *Node) bool { return n.OpType == "Identity" }); n != 1 || len(g2.Nodes) != 2 {
		t.Errorf("RemoveNodes removed %d, left %d", n, len(g2.Nodes))
	}
	if n := g2.RemoveInitializers(func(t *Tensor) bool { return t.Name == "w" }); n != 1 || g2.Initializer("w") != nil {
		t.Errorf("RemoveInitializers removed %d", n)
	}
	m3, err := Decode(m2.Encode())
	if err != nil || len(m3.Graph.Nodes) != 2 || len(m3.Graph.Initializers) != 0 {
		t.Errorf("after removing: %v, %+v", err, m3)
	}
}

func TestTensorTypedAccess(t *testing.T) {
	roundTrip := func(t *testing.T, x *Tensor) *Tensor {
		t.Helper()
		y, err := decodeTensor(x.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	t.Run("constructors", func(t *testing.T) {
		f := roundTrip(t, FloatTensor("f", []int64{2}, []float32{1.5, -2}))
		if v, err := f.Float32s(); err != nil || !reflect.DeepEqual(v, []float32{1.5, -2}) || f.RawData == nil {
			t.Errorf("float: %v %v", v, err)
		}
		i8 := roundTrip(t, Int8Tensor("q", []int64{1, 3}, []int8{-128, 0, 127}))
		if v, err := i8.Int8s(); err != nil || !reflect.DeepEqual(v, []int8{-128, 0, 127}) {
			t.Errorf("int8: %v %v", v, err)
		}
		u8 := roundTrip(t, Uint8Tensor("z", nil, []uint8{200}))
		if v, err := u8.Uint8s(); err != nil || !reflect.DeepEqual(v, []uint8{200}) || len(u8.Dims) != 0 {
			t.Errorf("uint8: %v %v", v, err)
		}
		i32 := roundTrip(t, Int32Tensor("b", []int64{2}, []int32{-70000, 3}))
		if v, err := i32.Int32s(); err != nil || !reflect.DeepEqual(v, []int32{-70000, 3}) {
			t.Errorf("int32: %v %v", v, err)
		}
		if _, err := i32.Int8s(); err == nil {
			t.Error("Int8s of an int32 tensor: no error")
		}
		if _, err := (&Tensor{Type: Int8, Dims: []int64{2}, RawData: []byte{1}}).Int8s(); err == nil {
			t.Error("Int8s of a short raw_data: no error")
		}
	})
	t.Run("typed fields", func(t *testing.T) {
		decode := func(elem DataType, dims []int64, fields ...[]byte) *Tensor {
			t.Helper()
			b := fString(8, "t")
			for _, d := range dims {
				b = append(b, fVarint(1, d)...)
			}
			x, err := decodeTensor(msg(append([][]byte{b, fVarint(2, int64(elem))}, fields...)...))
			if err != nil {
				t.Fatal(err)
			}
			return roundTrip(t, x)
		}
		varints := func(v ...int64) []byte { return packVarints(v) }
		x := decode(Int8, []int64{2}, fBytes(5, varints(-3, 4)))
		if v, err := x.Int8s(); err != nil || !reflect.DeepEqual(v, []int8{-3, 4}) {
			t.Errorf("int8 int32_data: %v %v", v, err)
		}
		x = decode(Uint8, []int64{1}, fBytes(5, varints(255)))
		if v, err := x.Uint8s(); err != nil || !reflect.DeepEqual(v, []uint8{255}) {
			t.Errorf("uint8 int32_data: %v %v", v, err)
		}
		x = decode(Int32, []int64{2}, fBytes(5, varints(-1<<31, 7)))
		if v, err := x.Int32s(); err != nil || !reflect.DeepEqual(v, []int32{-1 << 31, 7}) {
			t.Errorf("int32 int32_data: %v %v", v, err)
		}
		x = decode(Float, []int64{2}, fBytes(4, packFloats([]float32{0.5, 3})))
		if v, err := x.Float32s(); err != nil || !reflect.DeepEqual(v, []float32{0.5, 3}) {
			t.Errorf("float float_data: %v %v", v, err)
		}
		x = decode(Int32, []int64{2}, fBytes(5, varints(1)))
		if _, err := x.Int32s(); err == nil {
			t.Error("int32 with one value for two: no error")
		}
	})
}

// FuzzDecodeGraph: Decode never panics, and what it decodes encodes to a
// model that decodes to the same thing: encoding is stable (encode, decode,
// encode gives the same bytes) and keeps the graph's structure.
func FuzzDecodeGraph(f *testing.F) {
	fuzzSeeds(f)
	f.Add(unknownModel())
	f.Add(SynthGemmModel(true))
	f.Add(SynthMatMulModel())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		kept, err := Decode(m.Encode())
		if err != nil {
			t.Fatalf("decode of the encoding: %v", err)
		}
		if !reflect.DeepEqual(summary(m), summary(kept)) {
			t.Fatalf("decode → encode → decode changed the graph:\n%v\n%v", summary(m), summary(kept))
		}
		// Re-encode from the fields too, as an edit would.
		forget(m)
		enc := m.Encode()
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("decode of the encoding: %v", err)
		}
		if !reflect.DeepEqual(summary(m), summary(m2)) {
			t.Fatalf("decode → encode → decode changed the graph:\n%v\n%v", summary(m), summary(m2))
		}
		forget(m2)
		if enc2 := m2.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (first difference at %d)", firstDiff(enc, enc2))
		}
	})
}

// summary is what a decoded model says, NaNs aside (a float attribute or
// tensor value that is NaN is compared by its bits through the encoding).
func summary(m *Model) []any {
	s := []any{m.IRVersion, m.ProducerName, m.ProducerVersion, m.Domain, m.ModelVersion, m.DocString, len(m.layout.unknown)}
	for _, o := range m.Opsets {
		s = append(s, o.Domain, o.Version)
	}
	for _, p := range m.Metadata {
		s = append(s, p.Key, p.Value)
	}
	if m.Graph != nil {
		s = append(s, graphSummary(m.Graph))
	}
	return s
}

func graphSummary(g *Graph) []any {
	s := []any{g.Name, g.DocString, len(g.layout.unknown), len(g.Sparse), len(g.Annotations)}
	for _, n := range g.Nodes {
		s = append(s, n.Name, n.OpType, n.Domain, n.DocString, n.Inputs, n.Outputs, len(n.unknown))
		for _, a := range n.Attrs {
			s = append(s, a.Name, a.Type, a.I, string(a.S), a.Ints, len(a.Floats), len(a.Strings), len(a.unknown))
			if a.T != nil {
				s = append(s, tensorSummary(a.T))
			}
			if a.G != nil {
				s = append(s, graphSummary(a.G))
			}
			for _, sg := range a.Graphs {
				s = append(s, graphSummary(sg))
			}
		}
	}
	for _, x := range g.Initializers {
		s = append(s, tensorSummary(x))
	}
	for _, list := range [][]*Value{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range list {
			s = append(s, v.Name, string(v.Type), v.Type == nil, v.DocString, len(v.unknown))
		}
	}
	return s
}

func tensorSummary(x *Tensor) []any {
	s := []any{x.Name, x.Type, x.Dims, string(x.RawData), x.RawData == nil, x.unsupported}
	for _, u := range x.unknown {
		s = append(s, string(u.raw))
	}
	return s
}

func packVarints(v []int64) []byte {
	var b []byte
	for _, x := range v {
		b = protowire.AppendVarint(b, uint64(x))
	}
	return b
}

func packFloats(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = protowire.AppendFixed32(b, math.Float32bits(x))
	}
	return b
}
