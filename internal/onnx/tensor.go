package onnx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Tensor is a decoded onnx.TensorProto: an initializer, or the value of a
// Constant. Its values are in RawData (little-endian) or in one of the
// typed fields (float_data, int32_data, ...), as the model stores them;
// Float32s, Int8s, Uint8s, Int32s and Int64s read either. The fields this package does not decode
// (string_data, double_data, external data, segments, doc_string) are kept
// as they are, and make the typed accessors fail.
type Tensor struct {
	Name string
	Type DataType
	Dims []int64 // empty for a scalar

	// RawData is raw_data (nil when absent). A decoded tensor shares it
	// with the model's bytes.
	RawData []byte

	unsupported string // why the values cannot be read, if they cannot
	// unknown holds the fields kept encoded: the typed data fields
	// (float_data, int32_data, int64_data, uint64_data, decoded only when
	// read, so that describing a model does not decode its weights) and the
	// fields this package does not decode.
	unknown []rawField
	enc     []byte
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
	e.stringOpt(tensorName, t.Name)
	if t.RawData != nil {
		e.bytes(tensorRawData, t.RawData)
	}
	t.enc = e.finish()
	return t.enc
}

// typed holds the values of a tensor's typed data fields.
type typed struct {
	floats []float32
	ints   []int64 // int32_data then int64_data
	u64s   []uint64
}

// typedData decodes the typed data fields.
func (t *Tensor) typedData() (typed, error) {
	var d typed
	var i32, i64 []int64
	for _, u := range t.unknown {
		var err error
		switch u.num {
		case tensorFloatData, tensorInt32Data, tensorInt64Data, tensorUint64Data:
			err = eachField(u.raw, func(f field) error {
				var err error
				switch f.num {
				case tensorFloatData:
					d.floats, err = appendFloat32s(d.floats, f)
				case tensorInt32Data:
					i32, err = f.int64sOf(i32, "int32_data")
				case tensorInt64Data:
					i64, err = f.int64sOf(i64, "int64_data")
				case tensorUint64Data:
					var v []int64
					v, err = f.int64sOf(nil, "uint64_data")
					for _, x := range v {
						d.u64s = append(d.u64s, uint64(x))
					}
				}
				return err
			})
		}
		if err != nil {
			return d, err
		}
	}
	for _, v := range i32 {
		d.ints = append(d.ints, int64(int32(v)))
	}
	d.ints = append(d.ints, i64...)
	return d, nil
}

// count checks that the tensor's values can be read and match its dims,
// and returns how many there are, and the typed data.
func (t *Tensor) count() (int, typed, error) {
	var d typed
	c, err := t.checkCount(&d)
	return c, d, err
}

func (t *Tensor) checkCount(d *typed) (int, error) {
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
	if t.RawData == nil {
		var err error
		if *d, err = t.typedData(); err != nil {
			return 0, err
		}
	}
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
		got = len(d.floats)
	case t.Type == Uint32 || t.Type == Uint64:
		got = len(d.u64s)
	case elemSize(t.Type) > 0 && t.Type != Double:
		got = len(d.ints)
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
	n, d, err := t.count()
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
	return d.floats, nil
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
	n, d, err := t.count()
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
		for i, v := range d.u64s {
			out[i] = int64(v)
		}
	default:
		for i, v := range d.ints {
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
	if _, _, err := t.count(); err != nil {
		return nil, fmt.Errorf("onnx: initializer %q: %w", name, err)
	}
	// A copy, so as not to keep the whole model alive.
	c, err := decodeTensor(bytes.Clone(t.Encode()))
	if err != nil {
		return nil, fmt.Errorf("onnx: initializer %q: %w", name, err)
	}
	return c, nil
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
