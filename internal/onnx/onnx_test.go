package onnx

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"petbreed/internal/testassets"

	"google.golang.org/protobuf/encoding/protowire"
)

// realModel is the int8 MobileNetV2 in the shared assets.
func realModel(t testing.TB) string {
	return testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")
}

func TestReadInfoRealModel(t *testing.T) {
	m, err := ReadInfo(realModel(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.IRVersion != 7 {
		t.Errorf("IRVersion = %d, want 7", m.IRVersion)
	}
	// The quantizer imports every opset ONNX Runtime knew of at the time.
	wantOpsets := []OpsetImport{
		{"ai.onnx", 12}, {"com.microsoft", 1}, {"com.microsoft.nchwc", 1},
		{"ai.onnx.training", 1}, {"ai.onnx.preview.training", 1},
		{"com.microsoft.experimental", 1}, {"ai.onnx.ml", 2},
	}
	if !reflect.DeepEqual(m.Opsets, wantOpsets) {
		t.Errorf("Opsets = %v, want %v", m.Opsets, wantOpsets)
	}
	for _, c := range []struct {
		domain string
		want   int64
	}{{"", 12}, {"ai.onnx", 12}, {"com.microsoft", 1}} {
		if v, ok := m.Opset(c.domain); !ok || v != c.want {
			t.Errorf("Opset(%q) = %d, %v; want %d", c.domain, v, ok, c.want)
		}
	}
	if _, ok := m.Opset("org.example"); ok {
		t.Error("Opset(org.example) found")
	}
	if m.ProducerName != "onnx.quantize" || m.ProducerVersion != "0.1.0" {
		t.Errorf("producer = %q %q", m.ProducerName, m.ProducerVersion)
	}
	if m.GraphName != "torch-jit-export" {
		t.Errorf("GraphName = %q", m.GraphName)
	}
	if m.Nodes != 73 || m.Initializers != 348 {
		t.Errorf("Nodes, Initializers = %d, %d; want 73, 348", m.Nodes, m.Initializers)
	}
	if len(m.Metadata) != 0 {
		t.Errorf("Metadata = %v, want none", m.Metadata)
	}
	if len(m.Inputs) != 1 || len(m.Outputs) != 1 {
		t.Fatalf("Inputs = %v, Outputs = %v", m.Inputs, m.Outputs)
	}
	in, out := m.Inputs[0], m.Outputs[0]
	if got := in.String(); got != "input: float32[batch_size,3,224,224]" {
		t.Errorf("input = %s", got)
	}
	if got := out.String(); got != "output: float32[batch_size,1000]" {
		t.Errorf("output = %s", got)
	}
	if in.Kind != KindTensor || in.ElemType != Float || in.Shape[0].Param != "batch_size" {
		t.Errorf("input = %+v", in)
	}
	if got := in.Dims(); !reflect.DeepEqual(got, []int64{-1, 3, 224, 224}) {
		t.Errorf("input Dims = %v", got)
	}
}

// Builders of a synthetic ModelProto, with the field numbers of onnx.proto.

func msg(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func fBytes(num protowire.Number, v []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func fString(num protowire.Number, s string) []byte { return fBytes(num, []byte(s)) }

func fVarint(num protowire.Number, v int64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// tensorValue encodes a ValueInfoProto of a tensor; a dim is an int64 (a
// dim_value), a string (a dim_param) or nil (unknown); dims == nil gives no
// shape at all.
func tensorValue(name string, elem DataType, dims []any) []byte {
	tt := fVarint(1, int64(elem))
	if dims != nil {
		var shape []byte
		for _, d := range dims {
			switch d := d.(type) {
			case int:
				shape = append(shape, fBytes(1, fVarint(1, int64(d)))...)
			case string:
				shape = append(shape, fBytes(1, fString(2, d))...)
			default:
				shape = append(shape, fBytes(1, nil)...)
			}
		}
		tt = append(tt, fBytes(2, shape)...)
	}
	return msg(fString(1, name), fBytes(2, fBytes(1, tt)))
}

func opset(domain string, v int64) []byte {
	return msg(fString(1, domain), fVarint(2, v))
}

func prop(k, v string) []byte { return msg(fString(1, k), fString(2, v)) }

// synthModel is an IR 3 model whose initializer "w" is also listed among
// the inputs, with every header field set.
func synthModel() []byte {
	w := msg(fVarint(1, 2), fVarint(2, int64(Float)), fString(8, "w"),
		fBytes(9, []byte{0, 0, 128, 63, 0, 0, 0, 64})) // dims [2], raw 1.0, 2.0
	node := msg(fString(1, "x"), fString(1, "w"), fString(2, "h"), fString(4, "Mul"))
	node2 := msg(fString(1, "h"), fString(2, "y"), fString(4, "Relu"))
	graph := msg(
		fBytes(1, node), fBytes(1, node2),
		fString(2, "g"),
		fBytes(5, w),
		fString(10, "graph doc"),
		fBytes(11, tensorValue("x", Float, []any{"N", 2})),
		fBytes(11, tensorValue("w", Float, []any{2})),
		fBytes(12, tensorValue("y", Float, []any{"N", nil})),
		fBytes(12, tensorValue("s", Int64, []any{})),
		fBytes(12, tensorValue("u", Uint8, nil)),
		fBytes(12, msg(fString(1, "seq"), fBytes(2, fBytes(4, nil)))),
		fBytes(12, msg(fString(1, "untyped"))),
		fBytes(13, tensorValue("h", Float, []any{"N", 2})),
	)
	return msg(
		fVarint(1, 3),
		fString(2, "test"), fString(3, "1.2"), fString(4, "org.example"),
		fVarint(5, 42), fString(6, "model doc"),
		fBytes(7, graph),
		fBytes(8, opset("", 9)), fBytes(8, opset("com.microsoft", 1)),
		fBytes(14, prop("a", "1")), fBytes(14, prop("petbreed.labels", `["x"]`)),
	)
}

func TestParseInfoSynthetic(t *testing.T) {
	m, err := ParseInfo(synthModel())
	if err != nil {
		t.Fatal(err)
	}
	want := &ModelInfo{
		IRVersion:    3,
		Opsets:       []OpsetImport{{"ai.onnx", 9}, {"com.microsoft", 1}},
		ProducerName: "test", ProducerVersion: "1.2", Domain: "org.example",
		ModelVersion: 42, DocString: "model doc",
		GraphName: "g", GraphDocString: "graph doc",
		Inputs: []ValueInfo{
			{Name: "x", Kind: KindTensor, ElemType: Float, Shape: []Dim{{-1, "N"}, {2, ""}}},
		},
		Outputs: []ValueInfo{
			{Name: "y", Kind: KindTensor, ElemType: Float, Shape: []Dim{{-1, "N"}, {-1, ""}}},
			{Name: "s", Kind: KindTensor, ElemType: Int64, Shape: []Dim{}},
			{Name: "u", Kind: KindTensor, ElemType: Uint8},
			{Name: "seq", Kind: KindSequence},
			{Name: "untyped"},
		},
		Nodes: 2, Initializers: 1,
		Metadata: map[string]string{"a": "1", "petbreed.labels": `["x"]`},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("ParseInfo =\n%+v\nwant\n%+v", m, want)
	}
	var strs []string
	for _, v := range m.Outputs {
		strs = append(strs, v.String())
	}
	wantStrs := []string{"y: float32[N,?]", "s: int64[]", "u: uint8[?]", "seq: sequence", "untyped: ?"}
	if !reflect.DeepEqual(strs, wantStrs) {
		t.Errorf("String() = %q, want %q", strs, wantStrs)
	}
	if keys := m.MetadataKeys(); !reflect.DeepEqual(keys, []string{"a", "petbreed.labels"}) {
		t.Errorf("MetadataKeys = %v", keys)
	}
}

func TestParseInfoErrors(t *testing.T) {
	model, err := os.ReadFile(realModel(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no ir_version"},
		{"text", []byte("hello, world\n"), ""},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), ""},
		{"json", []byte(`{"ir_version": 7}`), ""},
		{"truncated 10", model[:10], ""},
		{"truncated 1000", model[:1000], ""},
		{"truncated half", model[:len(model)/2], ""},
		{"truncated one short", model[:len(model)-1], ""},
		{"no graph", fVarint(1, 7), "no graph"},
		{"no ir_version", fBytes(7, nil), "no ir_version"},
		{"ir_version as bytes", fString(1, "7"), "ir_version: bytes field, want varint"},
		{"graph as varint", msg(fVarint(1, 7), fVarint(7, 1)), "graph: varint field"},
		{"bad input", msg(fVarint(1, 7), fBytes(7, fBytes(11, []byte{0x0a, 0x05, 'x'}))), "input 0"},
		{"repeated graph", msg(fVarint(1, 7), fBytes(7, nil), fBytes(7, nil)), "graph: repeated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseInfo(tc.data)
			if err == nil {
				t.Fatalf("ParseInfo = %+v, want an error", m)
			}
			if !errors.Is(err, ErrNotONNX) {
				t.Errorf("error %q does not wrap ErrNotONNX", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestReadInfoErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadInfo(filepath.Join(dir, "missing.onnx")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	p := filepath.Join(dir, "labels.onnx")
	if err := os.WriteFile(p, []byte("tench\ngoldfish\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadInfo(p)
	if !errors.Is(err, ErrNotONNX) || !strings.Contains(err.Error(), p) {
		t.Errorf("text file: %v", err)
	}
}

func TestReadInitializerRealModel(t *testing.T) {
	data, err := os.ReadFile(realModel(t))
	if err != nil {
		t.Fatal(err)
	}
	scale, err := ReadInitializer(data, "464_scale")
	if err != nil {
		t.Fatal(err)
	}
	f, err := scale.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if scale.Type != Float || len(scale.Dims) != 0 || len(f) != 1 || !(f[0] > 0.001 && f[0] < 1) {
		t.Errorf("464_scale = %s%v %v", scale.Type, scale.Dims, f)
	}
	zp, err := ReadInitializer(data, "464_zero_point")
	if err != nil {
		t.Fatal(err)
	}
	z, err := zp.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	if zp.Type != Uint8 || len(z) != 1 || z[0] < 0 || z[0] > 255 {
		t.Errorf("464_zero_point = %s%v %v", zp.Type, zp.Dims, z)
	}
	t.Logf("features dequantize as (q - %d) * %g", z[0], f[0])
	if _, err := zp.Float32s(); err == nil {
		t.Error("Float32s of a uint8 tensor: no error")
	}
	if _, err := ReadInitializer(data, "no such tensor"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing initializer: %v, want ErrNotFound", err)
	}
}

func TestReadInitializerEncodings(t *testing.T) {
	packedFloats := protowire.AppendFixed32(nil, math.Float32bits(1.5))
	packedFloats = protowire.AppendFixed32(packedFloats, math.Float32bits(-2))
	unpackedFloat := func(v float32) []byte {
		b := protowire.AppendTag(nil, 4, protowire.Fixed32Type)
		return protowire.AppendFixed32(b, math.Float32bits(v))
	}
	packedInts := protowire.AppendVarint(nil, 200)
	packedInts = protowire.AppendVarint(packedInts, 7)
	neg := int64(-3)
	tests := []struct {
		name   string
		tensor []byte
		floats []float32
		ints   []int64
		err    string
	}{
		{"float raw", msg(fVarint(1, 2), fVarint(2, 1), fBytes(9, []byte{0, 0, 192, 63, 0, 0, 0, 192})), []float32{1.5, -2}, nil, ""},
		{"float packed", msg(fBytes(1, []byte{2}), fVarint(2, 1), fBytes(4, packedFloats)), []float32{1.5, -2}, nil, ""},
		{"float unpacked", msg(fVarint(1, 2), fVarint(2, 1), unpackedFloat(1.5), unpackedFloat(-2)), []float32{1.5, -2}, nil, ""},
		{"float scalar", msg(fVarint(2, 1), unpackedFloat(0.25)), []float32{0.25}, nil, ""},
		{"uint8 int32_data", msg(fVarint(1, 2), fVarint(2, 2), fBytes(5, packedInts)), nil, []int64{200, 7}, ""},
		{"uint8 raw", msg(fVarint(1, 2), fVarint(2, 2), fBytes(9, []byte{200, 7})), nil, []int64{200, 7}, ""},
		{"int8 raw", msg(fVarint(2, 3), fBytes(9, []byte{0xfd})), nil, []int64{-3}, ""},
		{"int64 int64_data", msg(fVarint(2, 7), fVarint(7, neg)), nil, []int64{-3}, ""},
		{"int32 raw", msg(fVarint(2, 6), fBytes(9, []byte{0xfd, 0xff, 0xff, 0xff})), nil, []int64{-3}, ""},
		{"raw too short", msg(fVarint(1, 2), fVarint(2, 1), fBytes(9, []byte{0, 0, 192, 63})), nil, nil, "raw_data has 4 bytes, want 8"},
		{"too few values", msg(fVarint(1, 3), fVarint(2, 1), fBytes(4, packedFloats)), nil, nil, "has 2 values, want 3"},
		{"negative dim", msg(fVarint(1, -1), fVarint(2, 1)), nil, nil, "bad dims"},
		{"huge dims", msg(fVarint(1, 1<<40), fVarint(1, 1<<40), fVarint(2, 1)), nil, nil, "bad dims"},
		{"external", msg(fVarint(2, 1), fVarint(14, 1)), nil, nil, "external"},
		{"string", msg(fVarint(2, 8), fBytes(6, []byte("a"))), nil, nil, "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tensor := append(fString(8, "t"), tc.tensor...)
			graph := fBytes(5, tensor)
			model := msg(fVarint(1, 7), fBytes(7, graph))
			x, err := ReadInitializer(model, "t")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.floats != nil {
				got, err := x.Float32s()
				if err != nil || !reflect.DeepEqual(got, tc.floats) {
					t.Errorf("Float32s = %v, %v; want %v", got, err, tc.floats)
				}
			}
			if tc.ints != nil {
				got, err := x.Int64s()
				if err != nil || !reflect.DeepEqual(got, tc.ints) {
					t.Errorf("Int64s = %v, %v; want %v", got, err, tc.ints)
				}
			}
		})
	}
}

func TestExposeOutputs(t *testing.T) {
	data, err := os.ReadFile(realModel(t))
	if err != nil {
		t.Fatal(err)
	}
	orig := append([]byte(nil), data...)
	out, err := ExposeOutputs(data, "472_quantized", "464_scale", "output", "472_quantized")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(orig) {
		t.Fatal("ExposeOutputs modified its input")
	}
	m, err := ParseInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range m.Outputs {
		got = append(got, o.String())
	}
	// 472_quantized is a node output the model gives no type for (ONNX
	// Runtime infers it); 464_scale is an initializer, typed from its dims.
	want := []string{"output: float32[batch_size,1000]", "472_quantized: ?", "464_scale: float32[]"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("outputs = %q, want %q", got, want)
	}
	if m.Nodes != 73 || m.Initializers != 348 || len(m.Inputs) != 1 {
		t.Errorf("the rest of the graph changed: %+v", m)
	}

	if _, err := ExposeOutputs(data, "no_such_value"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown name: %v, want ErrNotFound", err)
	}
	if _, err := ExposeOutputs([]byte("not a model")); !errors.Is(err, ErrNotONNX) {
		t.Errorf("garbage: %v, want ErrNotONNX", err)
	}

	// A value_info entry gives the new output its type.
	out, err = ExposeOutputs(synthModel(), "h", "x")
	if err != nil {
		t.Fatal(err)
	}
	m, err = ParseInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	n := len(m.Outputs)
	if got := m.Outputs[n-2].String() + " " + m.Outputs[n-1].String(); got != "h: float32[N,2] x: float32[N,2]" {
		t.Errorf("new outputs: %s", got)
	}
}

func FuzzReadInfo(f *testing.F) {
	f.Add(synthModel())
	f.Add([]byte{})
	f.Add([]byte("\x08\x07:\x00"))
	data := testassets.Read(f, "backbone", "mobilenetv2-12-int8.onnx")
	f.Add(data[:256])
	f.Add(data[:4096])
	f.Add(data[:len(data)/3])
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseInfo(data)
		if err != nil {
			if !errors.Is(err, ErrNotONNX) {
				t.Fatalf("error %v does not wrap ErrNotONNX", err)
			}
		}
		_, _ = ReadInitializer(data, "w")
		names := []string{"w"}
		if m != nil && len(m.Inputs) > 0 {
			names = append(names, m.Inputs[0].Name)
		}
		out, err := ExposeOutputs(data, names...)
		if err == nil && m != nil {
			if _, err := ParseInfo(out); err != nil {
				t.Fatalf("ExposeOutputs made a model ParseInfo rejects: %v", err)
			}
		}
	})
}
