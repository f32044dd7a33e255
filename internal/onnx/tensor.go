package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Tensor is a decoded onnx.TensorProto: an initializer, or the value of a
// Constant. Its values are in RawData (little-endian) or in one of the
// typed fields, as the model stores them; Float32s, Int8s, Uint8s, Int32s
// and Int64s read either. The fields this package does not decode
// (string_data, double_data, external data, segments, doc_string) are kept
// as they are, and make the typed accessors fail.
type Tensor struct {
	Name string
	Type DataType
	Dims []int64 // empty for a scalar

	// RawData is raw_data (nil when absent). A decoded tensor shares it
	// with the model's bytes.
	RawData []byte
	// FloatData, Int32Data (which onnx.proto also uses for int8, uint8,
	// int16, uint16, bool and float16), Int64Data and Uint64Data (also
	// uint32) are the typed fields.
	FloatData  []float32
	Int32Data  []int32
	Int64Data  []int64
	Uint64Data []uint64

	unsupported string // why the values cannot be read, if they cannot
	unknown     []rawField
	enc         []byte
}

// TensorProto field numbers (beyond those in onnx.go).
const tensorDocString = 12

// FloatTensor returns a float32 tensor, its values as raw_data.
func FloatTensor(name string, dims []int64, v []float32) *Tensor {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return &Tensor{Name: name, Type: Float, Dims: dims, RawData: raw}
}

// Int8Tensor returns an int8 tensor, its values as raw_data.
func Int8Tensor(name string, dims []int64, v []int8) *Tensor {
	raw := make([]byte, len(v))
	for i, x := range v {
		raw[i] = byte(x)
	}
	return &Tensor{Name: name, Type: Int8, Dims: dims, RawData: raw}
}

// Uint8Tensor returns a uint8 tensor, its values as raw_data.
func Uint8Tensor(name string, dims []int64, v []uint8) *Tensor {
	return &Tensor{Name: name, Type: Uint8, Dims: dims, RawData: append([]byte{}, v...)}
}

// Int32Tensor returns an int32 tensor (such as a quantized bias), its
// values as raw_data.
func Int32Tensor(name string, dims []int64, v []int32) *Tensor {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return &Tensor{Name: name, Type: Int32, Dims: dims, RawData: raw}
}

func decodeTensor(b []byte) (*Tensor, error) {
	t := &Tensor{enc: b}
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case tensorDims:
			t.Dims, err = f.int64sOf(t.Dims, "dims")
		case tensorDataType:
			var v int64
			v, err = f.intOf("data_type")
			t.Type = DataType(v)
		case tensorName:
			t.Name, err = f.stringOf("name")
		case tensorRawData:
			t.RawData, err = f.bytesOf("raw_data")
		case tensorFloatData:
			t.FloatData, err = appendFloat32s(t.FloatData, f)
		case tensorInt32Data:
			var v []int64
			v, err = f.int64sOf(nil, "int32_data")
			for _, x := range v {
				t.Int32Data = append(t.Int32Data, int32(x))
			}
		case tensorInt64Data:
			t.Int64Data, err = f.int64sOf(t.Int64Data, "int64_data")
		case tensorUint64Data:
			var v []int64
			v, err = f.int64sOf(nil, "uint64_data")
			for _, x := range v {
				t.Uint64Data = append(t.Uint64Data, uint64(x))
			}
		default:
			switch f.num {
			case tensorDataLocation:
				if f.typ == protowire.VarintType && f.v == 1 {
					t.unsupported = "stored in an external data file, which is not supported"
				}
			case tensorExternalData:
				t.unsupported = "stored in an external data file, which is not supported"
			case tensorSegment:
				t.unsupported = "segmented tensors are not supported"
			case tensorStringData, tensorDoubleData:
				if t.unsupported == "" {
					t.unsupported = fmt.Sprintf("field %d is not supported", f.num)
				}
			}
			t.unknown = append(t.unknown, rawField{f.num, f.raw})
		}
		return err
	})
	return t, err
}

// Encode serializes the tensor as a TensorProto: its original bytes when
// it was decoded and not given to an editing method since.
func (t *Tensor) Encode() []byte {
	if t.enc != nil {
		return t.enc
	}
	var e encoder
	e.unknown = t.unknown
	for _, d := range t.Dims {
		e.varint(tensorDims, d)
	}
	e.varint(tensorDataType, int64(t.Type))
	if len(t.FloatData) > 0 {
		e.bytes(tensorFloatData, packFloats(t.FloatData))
	}
	if len(t.Int32Data) > 0 {
		v := make([]int64, len(t.Int32Data))
		for i, x := range t.Int32Data {
			v[i] = int64(x)
		}
		e.bytes(tensorInt32Data, packVarints(v))
	}
	if len(t.Int64Data) > 0 {
		e.bytes(tensorInt64Data, packVarints(t.Int64Data))
	}
	e.stringOpt(tensorName, t.Name)
	if t.RawData != nil {
		e.bytes(tensorRawData, t.RawData)
	}
	if len(t.Uint64Data) > 0 {
		v := make([]int64, len(t.Uint64Data))
		for i, x := range t.Uint64Data {
			v[i] = int64(x)
		}
		e.bytes(tensorUint64Data, packVarints(v))
	}
	t.enc = e.finish()
	return t.enc
}

// count checks that the tensor's values can be read and match its dims,
// and returns how many there are.
func (t *Tensor) count() (int, error) {
	if t.unsupported != "" {
		return 0, errors.New(t.unsupported)
	}
	count := int64(1)
	for _, d := range t.Dims {
		if d < 0 || (d > 0 && count > math.MaxInt32/d) {
			return 0, fmt.Errorf("bad dims %v", t.Dims)
		}
		count *= d
	}
	n := int(count)
	got := 0
	switch {
	case t.RawData != nil:
		size := elemSize(t.Type)
		if size == 0 {
			return 0, fmt.Errorf("raw_data of type %s is not supported", t.Type)
		}
		if len(t.RawData) != size*n {
			return 0, fmt.Errorf("raw_data has %d bytes, want %d for %s%v", len(t.RawData), size*n, t.Type, t.Dims)
		}
		return n, nil
	case t.Type == Float:
		got = len(t.FloatData)
	case t.Type == Uint32 || t.Type == Uint64:
		got = len(t.Uint64Data)
	case elemSize(t.Type) > 0 && t.Type != Double:
		got = len(t.Int32Data) + len(t.Int64Data)
	default:
		return 0, fmt.Errorf("type %s is not supported", t.Type)
	}
	if got != n {
		return 0, fmt.Errorf("has %d values, want %d for %s%v", got, n, t.Type, t.Dims)
	}
	return n, nil
}

// Float32s returns the elements of a float32 tensor.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.Type != Float {
		return nil, fmt.Errorf("onnx: tensor %q is %s, not float32", t.Name, t.Type)
	}
	n, err := t.count()
	if err != nil {
		return nil, fmt.Errorf("onnx: tensor %q: %w", t.Name, err)
	}
	if t.RawData != nil {
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
		}
		return out, nil
	}
	return append([]float32(nil), t.FloatData...), nil
}

// Int8s returns the elements of an int8 tensor.
func (t *Tensor) Int8s() ([]int8, error) { return narrow[int8](t, Int8) }

// Uint8s returns the elements of a uint8 tensor.
func (t *Tensor) Uint8s() ([]uint8, error) { return narrow[uint8](t, Uint8) }

// Int32s returns the elements of an int32 tensor.
func (t *Tensor) Int32s() ([]int32, error) { return narrow[int32](t, Int32) }

func narrow[T int8 | uint8 | int32](t *Tensor, want DataType) ([]T, error) {
	if t.Type != want {
		return nil, fmt.Errorf("onnx: tensor %q is %s, not %s", t.Name, t.Type, want)
	}
	v, err := t.Int64s()
	if err != nil {
		return nil, err
	}
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out, nil
}

// Int64s returns the elements of an integer or bool tensor (uint8, int8,
// uint16, int16, int32, int64, uint32, uint64 — whose values above
// math.MaxInt64 wrap — and bool as 0 or 1) as int64s.
func (t *Tensor) Int64s() ([]int64, error) {
	size := 0
	switch t.Type {
	case Uint8, Int8, Bool:
		size = 1
	case Uint16, Int16:
		size = 2
	case Int32, Uint32:
		size = 4
	case Int64, Uint64:
		size = 8
	default:
		return nil, fmt.Errorf("onnx: tensor %q is %s, not an integer type", t.Name, t.Type)
	}
	n, err := t.count()
	if err != nil {
		return nil, fmt.Errorf("onnx: tensor %q: %w", t.Name, err)
	}
	out := make([]int64, n)
	switch {
	case t.RawData != nil:
		le := binary.LittleEndian
		for i := range out {
			b := t.RawData[size*i:]
			switch t.Type {
			case Uint8, Bool:
				out[i] = int64(b[0])
			case Int8:
				out[i] = int64(int8(b[0]))
			case Uint16:
				out[i] = int64(le.Uint16(b))
			case Int16:
				out[i] = int64(int16(le.Uint16(b)))
			case Uint32:
				out[i] = int64(le.Uint32(b))
			case Int32:
				out[i] = int64(int32(le.Uint32(b)))
			default:
				out[i] = int64(le.Uint64(b))
			}
		}
	case t.Type == Uint32 || t.Type == Uint64:
		for i, v := range t.Uint64Data {
			out[i] = int64(v)
		}
	default:
		ints := make([]int64, 0, n)
		for _, v := range t.Int32Data {
			ints = append(ints, int64(v))
		}
		ints = append(ints, t.Int64Data...)
		for i, v := range ints {
			switch t.Type {
			case Uint8, Bool:
				v = int64(uint8(v))
			case Int8:
				v = int64(int8(v))
			case Uint16:
				v = int64(uint16(v))
			case Int16:
				v = int64(int16(v))
			case Int32:
				v = int64(int32(v))
			}
			out[i] = v
		}
	}
	return out, nil
}

// ErrNotFound is wrapped by the error of ReadInitializer and ExposeOutputs
// for a name the graph does not have.
var ErrNotFound = errors.New("not found")

// ReadInitializer decodes the initializer called name (a weight or constant
// such as a quantization scale) of the serialized ONNX model data. Tensors
// stored in external data files and string tensors are not supported.
func ReadInitializer(data []byte, name string) (*Tensor, error) {
	m, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	if m.Graph == nil {
		return nil, fmt.Errorf("onnx: %w: no graph", ErrNotONNX)
	}
	t := m.Graph.Initializer(name)
	if t == nil {
		return nil, fmt.Errorf("onnx: initializer %q: %w", name, ErrNotFound)
	}
	if _, err := t.count(); err != nil {
		return nil, fmt.Errorf("onnx: initializer %q: %w", name, err)
	}
	c := *t
	if t.RawData != nil {
		c.RawData = append([]byte{}, t.RawData...) // do not keep the whole model alive
	}
	c.enc, c.unknown = nil, nil
	return &c, nil
}

// appendFloat32s appends a repeated float field, packed or not.
func appendFloat32s(dst []float32, f field) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(f.v))), nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return dst, fmt.Errorf("float_data: packed length %d is not a multiple of 4", len(f.b))
		}
		for i := 0; i < len(f.b); i += 4 {
			dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(f.b[i:])))
		}
		return dst, nil
	}
	return dst, fmt.Errorf("float_data: %s field, want fixed32", wireName(f.typ))
}

// elemSize is the size in bytes of one element of t in raw_data, or 0 when
// this package does not decode t.
func elemSize(t DataType) int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float, Int32, Uint32:
		return 4
	case Int64, Uint64, Double:
		return 8
	}
	return 0
}

// typeOf returns the tensor's type as an encoded TypeProto: a tensor of its
// data type with its dims as shape.
func (t *Tensor) typeOf() []byte {
	shape := make([]Dim, len(t.Dims))
	for i, d := range t.Dims {
		shape[i] = Dim{Value: d}
	}
	return encodeTensorType(t.Type, shape)
}

// ExposeOutputs returns a copy of the serialized ONNX model data whose graph
// also outputs the named values: internal tensors (a node's output, such as
// the pooled features before a classifier), initializers or inputs. Names
// that already are graph outputs are left alone; a name that is none of
// these is an error wrapping ErrNotFound. The new outputs carry the type the
// graph gives them (an initializer's data type and dims, an input's type, a
// value_info entry), if any; otherwise ONNX Runtime infers it.
func ExposeOutputs(data []byte, names ...string) ([]byte, error) {
	m, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	g := m.Graph
	if g == nil {
		return nil, fmt.Errorf("onnx: %w: no graph", ErrNotONNX)
	}
	known := map[string]bool{}
	outputs := map[string]bool{}
	types := map[string][]byte{}
	for _, n := range g.Nodes {
		for _, s := range n.Outputs {
			known[s] = true
		}
	}
	for _, t := range g.Initializers {
		known[t.Name] = true
		types[t.Name] = t.typeOf()
	}
	for _, v := range g.Inputs {
		known[v.Name] = true
	}
	for _, list := range [][]*Value{g.Inputs, g.ValueInfo} {
		for _, v := range list {
			if v.Type != nil {
				types[v.Name] = v.Type
			}
		}
	}
	for _, v := range g.Outputs {
		outputs[v.Name] = true
	}
	for _, name := range names {
		if outputs[name] {
			continue
		}
		if !known[name] {
			return nil, fmt.Errorf("onnx: no value named %q in the graph: %w", name, ErrNotFound)
		}
		outputs[name] = true
		g.AddOutput(NewValue(name, types[name]))
	}
	return m.Encode(), nil
}
