package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Tensor is the value of an initializer (an onnx.TensorProto), decoded from
// whichever field the model stores it in (raw_data or the typed *_data
// fields).
type Tensor struct {
	Name string
	Type DataType
	Dims []int64 // empty for a scalar

	count    int
	raw      []byte // raw_data, little-endian; a copy
	floats   []float32
	ints     []int64 // int32_data or int64_data
	uint64s  []uint64
	haveRaw  bool
	external bool
}

// Len is the number of elements, the product of Dims.
func (t *Tensor) Len() int { return t.count }

// Float32s returns the elements of a float32 tensor.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.Type != Float {
		return nil, fmt.Errorf("onnx: tensor %q is %s, not float32", t.Name, t.Type)
	}
	if t.haveRaw {
		out := make([]float32, t.count)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.raw[4*i:]))
		}
		return out, nil
	}
	return append([]float32(nil), t.floats...), nil
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
	out := make([]int64, t.count)
	switch {
	case t.haveRaw:
		le := binary.LittleEndian
		for i := range out {
			b := t.raw[size*i:]
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
		for i, v := range t.uint64s {
			out[i] = int64(v)
		}
	default:
		for i, v := range t.ints {
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
	graph, err := graphBytes(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	var found []byte
	err = eachField(graph, func(f field) error {
		if f.num != graphInitializer || found != nil {
			return nil
		}
		b, err := f.bytesOf("initializer")
		if err != nil {
			return err
		}
		n, err := tensorProtoName(b)
		if n == name {
			found = b
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: %w: graph: %w", ErrNotONNX, err)
	}
	if found == nil {
		return nil, fmt.Errorf("onnx: initializer %q: %w", name, ErrNotFound)
	}
	t, err := parseTensor(found)
	if err != nil {
		return nil, fmt.Errorf("onnx: initializer %q: %w", name, err)
	}
	return t, nil
}

// graphBytes returns the encoded GraphProto of a serialized ModelProto.
func graphBytes(data []byte) ([]byte, error) {
	var graph []byte
	found := false
	err := eachField(data, func(f field) error {
		if f.num != modelGraph {
			return nil
		}
		if found {
			return errors.New("graph: repeated")
		}
		found = true
		var err error
		graph, err = f.bytesOf("graph")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotONNX, err)
	}
	if !found {
		return nil, fmt.Errorf("%w: no graph", ErrNotONNX)
	}
	return graph, nil
}

// parseTensor decodes an encoded TensorProto.
func parseTensor(b []byte) (*Tensor, error) {
	t := &Tensor{}
	var floats []float32
	var ints []int64
	var u64s []uint64
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
			t.raw, err = f.bytesOf("raw_data")
			t.haveRaw = true
		case tensorFloatData:
			floats, err = appendFloat32s(floats, f)
		case tensorInt32Data, tensorInt64Data:
			ints, err = f.int64sOf(ints, "int_data")
		case tensorUint64Data:
			var v []int64
			v, err = f.int64sOf(nil, "uint64_data")
			for _, x := range v {
				u64s = append(u64s, uint64(x))
			}
		case tensorDataLocation:
			var v int64
			v, err = f.intOf("data_location")
			t.external = v == 1
		case tensorExternalData:
			t.external = true
		case tensorSegment:
			return errors.New("segmented tensors are not supported")
		case tensorStringData, tensorDoubleData:
			return fmt.Errorf("field %d is not supported", f.num)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if t.external {
		return nil, errors.New("stored in an external data file, which is not supported")
	}
	count := int64(1)
	for _, d := range t.Dims {
		if d < 0 || (d > 0 && count > math.MaxInt32/d) {
			return nil, fmt.Errorf("bad dims %v", t.Dims)
		}
		count *= d
	}
	t.count = int(count)

	got := 0
	switch {
	case t.haveRaw:
		size := elemSize(t.Type)
		if size == 0 {
			return nil, fmt.Errorf("raw_data of type %s is not supported", t.Type)
		}
		if len(t.raw) != size*t.count {
			return nil, fmt.Errorf("raw_data has %d bytes, want %d for %s%v", len(t.raw), size*t.count, t.Type, t.Dims)
		}
		t.raw = append([]byte(nil), t.raw...) // do not keep the whole model alive
		return t, nil
	case t.Type == Float:
		t.floats, got = floats, len(floats)
	case t.Type == Uint32 || t.Type == Uint64:
		t.uint64s, got = u64s, len(u64s)
	case elemSize(t.Type) > 0 && t.Type != Double:
		t.ints, got = ints, len(ints)
	default:
		return nil, fmt.Errorf("type %s is not supported", t.Type)
	}
	if got != t.count {
		return nil, fmt.Errorf("has %d values, want %d for %s%v", got, t.count, t.Type, t.Dims)
	}
	return t, nil
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

// initializerType returns the name of an encoded TensorProto and its type as
// an encoded TypeProto: a tensor of its data type with its dims as shape.
func initializerType(b []byte) (name string, typ []byte, err error) {
	var dataType int64
	var dims []int64
	err = eachField(b, func(f field) error {
		var err error
		switch f.num {
		case tensorName:
			name, err = f.stringOf("initializer.name")
		case tensorDataType:
			dataType, err = f.intOf("initializer.data_type")
		case tensorDims:
			dims, err = f.int64sOf(dims, "initializer.dims")
		}
		return err
	})
	var shape []byte
	for _, d := range dims {
		var dim []byte
		dim = protowire.AppendTag(dim, dimValue, protowire.VarintType)
		dim = protowire.AppendVarint(dim, uint64(d))
		shape = protowire.AppendTag(shape, shapeDim, protowire.BytesType)
		shape = protowire.AppendBytes(shape, dim)
	}
	var tensor []byte
	tensor = protowire.AppendTag(tensor, tensorTypeElemType, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(dataType))
	tensor = protowire.AppendTag(tensor, tensorTypeShape, protowire.BytesType)
	tensor = protowire.AppendBytes(tensor, shape)
	typ = protowire.AppendTag(typ, typeTensor, protowire.BytesType)
	typ = protowire.AppendBytes(typ, tensor)
	return name, typ, err
}

// ExposeOutputs returns a copy of the serialized ONNX model data whose graph
// also outputs the named values: internal tensors (a node's output, such as
// the pooled features before a classifier), initializers or inputs. Names
// that already are graph outputs are left alone; a name that is none of
// these is an error wrapping ErrNotFound. The new outputs carry the type the
// graph gives them (an initializer's data type and dims, an input's type, a
// value_info entry), if any; otherwise ONNX Runtime infers it.
func ExposeOutputs(data []byte, names ...string) ([]byte, error) {
	graph, err := graphBytes(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	known := map[string]bool{}
	outputs := map[string]bool{}
	types := map[string][]byte{}
	err = eachField(graph, func(f field) error {
		switch f.num {
		case graphNode:
			b, err := f.bytesOf("node")
			if err != nil {
				return err
			}
			return eachField(b, func(f field) error {
				if f.num != nodeOutput {
					return nil
				}
				s, err := f.stringOf("node.output")
				known[s] = true
				return err
			})
		case graphInitializer:
			b, err := f.bytesOf("initializer")
			if err != nil {
				return err
			}
			name, typ, err := initializerType(b)
			known[name] = true
			types[name] = typ
			return err
		case graphInput, graphOutput, graphValueInfo:
			b, err := f.bytesOf("value_info")
			if err != nil {
				return err
			}
			var name string
			var typ []byte
			err = eachField(b, func(f field) error {
				var err error
				switch f.num {
				case valueName:
					name, err = f.stringOf("name")
				case valueType:
					typ, err = f.bytesOf("type")
				}
				return err
			})
			switch f.num {
			case graphInput:
				known[name] = true
			case graphOutput:
				outputs[name] = true
			}
			if f.num != graphOutput && typ != nil {
				types[name] = typ
			}
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: %w: graph: %w", ErrNotONNX, err)
	}

	var extra []byte
	for _, name := range names {
		if outputs[name] {
			continue
		}
		if !known[name] {
			return nil, fmt.Errorf("onnx: no value named %q in the graph: %w", name, ErrNotFound)
		}
		outputs[name] = true
		var vi []byte
		vi = protowire.AppendTag(vi, valueName, protowire.BytesType)
		vi = protowire.AppendString(vi, name)
		if typ, ok := types[name]; ok {
			vi = protowire.AppendTag(vi, valueType, protowire.BytesType)
			vi = protowire.AppendBytes(vi, typ)
		}
		extra = protowire.AppendTag(extra, graphOutput, protowire.BytesType)
		extra = protowire.AppendBytes(extra, vi)
	}

	// Copy the model field by field, replacing the graph by graph+extra
	// (fields of a message may come in any order, and a repeated field's
	// elements keep their relative order, so the new outputs come last).
	out := make([]byte, 0, len(data)+len(extra)+16)
	err = eachField(data, func(f field) error {
		if f.num != modelGraph {
			out = append(out, f.raw...)
			return nil
		}
		out = protowire.AppendTag(out, modelGraph, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(len(graph)+len(extra)))
		out = append(out, graph...)
		out = append(out, extra...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	return out, nil
}
