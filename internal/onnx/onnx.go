// Package onnx reads and edits the ONNX file format (a serialized
// onnx.ModelProto) directly, without ONNX Runtime.
//
// One decoder, Decode, turns a model into a Model whose Graph can be edited
// (nodes, initializers, inputs, outputs, value_info; insert, replace,
// remove, rename) and encoded again; what is not changed is copied byte for
// byte, fields this package does not know included, so a model from any
// exporter stays valid. Everything else is built on it: ReadInfo and
// ParseInfo describe a model (versions, opsets, producer, metadata_props,
// the graph's inputs and outputs with their types and shapes),
// ReadInitializer reads a weight, ExposeOutputs makes internal tensors
// outputs, FindFeatures locates the pooled features a classifier's final
// linear layer reads, and the graph rewrites FeatureModel (cut the graph
// there), Export (replace that layer by a new head and a softmax) and
// SetMetadata transform a decoded Model.
//
// It decodes the protobuf wire format with
// google.golang.org/protobuf/encoding/protowire; the field numbers are those
// of onnx/onnx.proto. Any byte string is safe to pass: malformed or
// truncated input gives an error, never a panic.
package onnx

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Field numbers of onnx.proto.
const (
	// ModelProto
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelDomain          = 4
	modelModelVersion    = 5
	modelDocString       = 6
	modelGraph           = 7
	modelOpsetImport     = 8
	modelMetadataProps   = 14

	// OperatorSetIdProto
	opsetDomain  = 1
	opsetVersion = 2

	// StringStringEntryProto
	entryKey   = 1
	entryValue = 2

	// GraphProto
	graphNode              = 1
	graphName              = 2
	graphInitializer       = 5
	graphDocString         = 10
	graphInput             = 11
	graphOutput            = 12
	graphValueInfo         = 13
	graphSparseInitializer = 15

	// NodeProto
	nodeOutput = 2

	// ValueInfoProto
	valueName      = 1
	valueType      = 2
	valueDocString = 3

	// TypeProto
	typeTensor       = 1
	typeSequence     = 4
	typeMap          = 5
	typeOpaque       = 7
	typeSparseTensor = 8
	typeOptional     = 9

	// TypeProto.Tensor and TypeProto.SparseTensor
	tensorTypeElemType = 1
	tensorTypeShape    = 2

	// TensorShapeProto and its Dimension
	shapeDim      = 1
	dimValue      = 1
	dimParam      = 2
	dimDenotation = 3

	// TensorProto
	tensorDims         = 1
	tensorDataType     = 2
	tensorSegment      = 3
	tensorFloatData    = 4
	tensorInt32Data    = 5
	tensorStringData   = 6
	tensorInt64Data    = 7
	tensorName         = 8
	tensorRawData      = 9
	tensorDoubleData   = 10
	tensorUint64Data   = 11
	tensorExternalData = 13
	tensorDataLocation = 14

	// SparseTensorProto
	sparseValues = 1
)

// DefaultDomain is how the ONNX operator set, whose domain is stored as "",
// is shown in OpsetImport.Domain.
const DefaultDomain = "ai.onnx"

// ModelInfo describes an ONNX model: the ModelProto's header fields, its
// graph's interface and its metadata.
type ModelInfo struct {
	IRVersion       int64
	Opsets          []OpsetImport
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string

	GraphName      string
	GraphDocString string
	// Inputs are the graph's inputs that are not initializers (models of IR
	// version < 4 list every weight among the inputs too).
	Inputs  []ValueInfo
	Outputs []ValueInfo
	// Nodes and Initializers count the graph's nodes and initializers
	// (sparse ones included).
	Nodes        int
	Initializers int

	// Metadata holds metadata_props. Keys should be distinct; when one is
	// repeated the last value wins.
	Metadata map[string]string
}

// Opset returns the version of the operator set imported for domain ("" or
// DefaultDomain for the ONNX operators).
func (m *ModelInfo) Opset(domain string) (int64, bool) {
	if domain == "" {
		domain = DefaultDomain
	}
	for _, o := range m.Opsets {
		if o.Domain == domain {
			return o.Version, true
		}
	}
	return 0, false
}

// MetadataKeys returns the metadata keys, sorted.
func (m *ModelInfo) MetadataKeys() []string {
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// OpsetImport is one operator set a model imports.
type OpsetImport struct {
	Domain  string // DefaultDomain for the ONNX operators
	Version int64
}

func (o OpsetImport) String() string { return o.Domain + " " + strconv.FormatInt(o.Version, 10) }

// Kinds of ValueInfo.
const (
	KindTensor       = "tensor"
	KindSparseTensor = "sparse_tensor"
	KindSequence     = "sequence"
	KindMap          = "map"
	KindOptional     = "optional"
	KindOpaque       = "opaque"
)

// ValueInfo is a graph input or output.
type ValueInfo struct {
	Name string
	// Kind is one of the Kind constants, or "" when the model gives no type.
	Kind string
	// ElemType and Shape describe tensors and sparse tensors. Shape is nil
	// when the model gives no shape (the rank is unknown); a scalar has an
	// empty, non-nil Shape.
	ElemType  DataType
	Shape     []Dim
	DocString string
}

// Dims returns the shape as ONNX Runtime reports it: fixed sizes, -1 for
// symbolic or unknown dimensions. It is nil when the rank is unknown.
func (v ValueInfo) Dims() []int64 {
	if v.Shape == nil {
		return nil
	}
	d := make([]int64, len(v.Shape))
	for i, x := range v.Shape {
		d[i] = x.Value
	}
	return d
}

// String formats v as, for example, "input: float32[batch,3,224,224]".
func (v ValueInfo) String() string {
	var b strings.Builder
	b.WriteString(v.Name)
	b.WriteString(": ")
	switch v.Kind {
	case "":
		b.WriteString("?")
		return b.String()
	case KindTensor:
	case KindSparseTensor:
		b.WriteString("sparse ")
	default:
		b.WriteString(v.Kind)
		return b.String()
	}
	b.WriteString(v.ElemType.String())
	if v.Shape == nil {
		b.WriteString("[?]")
		return b.String()
	}
	b.WriteByte('[')
	for i, d := range v.Shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(d.String())
	}
	b.WriteByte(']')
	return b.String()
}

// Dim is one dimension of a shape: a fixed size (Value >= 0), a symbolic
// name (Param, with Value -1), or unknown (Value -1, no Param).
type Dim struct {
	Value int64
	Param string
}

func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value >= 0:
		return strconv.FormatInt(d.Value, 10)
	}
	return "?"
}

// DataType is onnx.TensorProto.DataType, the element type of a tensor.
type DataType int32

// The element types of onnx.proto.
const (
	Undefined DataType = iota
	Float
	Uint8
	Int8
	Uint16
	Int16
	Int32
	Int64
	String
	Bool
	Float16
	Double
	Uint32
	Uint64
	Complex64
	Complex128
	BFloat16
	Float8E4M3FN
	Float8E4M3FNUZ
	Float8E5M2
	Float8E5M2FNUZ
	Uint4
	Int4
	Float4E2M1
	Float8E8M0
	Uint2
	Int2
)

var dataTypeNames = [...]string{
	Undefined:      "undefined",
	Float:          "float32",
	Uint8:          "uint8",
	Int8:           "int8",
	Uint16:         "uint16",
	Int16:          "int16",
	Int32:          "int32",
	Int64:          "int64",
	String:         "string",
	Bool:           "bool",
	Float16:        "float16",
	Double:         "float64",
	Uint32:         "uint32",
	Uint64:         "uint64",
	Complex64:      "complex64",
	Complex128:     "complex128",
	BFloat16:       "bfloat16",
	Float8E4M3FN:   "float8e4m3fn",
	Float8E4M3FNUZ: "float8e4m3fnuz",
	Float8E5M2:     "float8e5m2",
	Float8E5M2FNUZ: "float8e5m2fnuz",
	Uint4:          "uint4",
	Int4:           "int4",
	Float4E2M1:     "float4e2m1",
	Float8E8M0:     "float8e8m0",
	Uint2:          "uint2",
	Int2:           "int2",
}

// String returns Go-style names: "float32", "uint8", "int64", "float16"...
func (t DataType) String() string {
	if t >= 0 && int(t) < len(dataTypeNames) {
		return dataTypeNames[t]
	}
	return "DataType(" + strconv.Itoa(int(t)) + ")"
}

// ErrNotONNX is wrapped by the errors of ReadInfo and ParseInfo for input
// that is not a serialized ONNX model.
var ErrNotONNX = errors.New("not an ONNX model")

// ReadInfo reads the ONNX model at path and describes it.
func ReadInfo(path string) (*ModelInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	info, err := ParseInfo(data)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s: %w", path, err)
	}
	return info, nil
}

// ParseInfo describes the serialized ONNX model data.
func ParseInfo(data []byte) (*ModelInfo, error) {
	m, err := Decode(data)
	if err != nil {
		return nil, err
	}
	return m.Info()
}

// Info describes the model. It fails, wrapping ErrNotONNX, for a model with
// no ir_version or no graph, or whose inputs or outputs have malformed types.
func (m *Model) Info() (*ModelInfo, error) {
	if m.IRVersion <= 0 {
		return nil, fmt.Errorf("%w: no ir_version", ErrNotONNX)
	}
	if m.Graph == nil {
		return nil, fmt.Errorf("%w: no graph", ErrNotONNX)
	}
	info := &ModelInfo{
		IRVersion: m.IRVersion, ProducerName: m.ProducerName, ProducerVersion: m.ProducerVersion,
		Domain: m.Domain, ModelVersion: m.ModelVersion, DocString: m.DocString,
		Metadata: map[string]string{},
	}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "" {
			d = DefaultDomain
		}
		info.Opsets = append(info.Opsets, OpsetImport{Domain: d, Version: o.Version})
	}
	for _, p := range m.Metadata {
		info.Metadata[p.Key] = p.Value
	}
	g := m.Graph
	info.GraphName, info.GraphDocString = g.Name, g.DocString
	info.Nodes, info.Initializers = len(g.Nodes), len(g.Initializers)+len(g.Sparse)
	initializers := map[string]bool{}
	for _, t := range g.Initializers {
		initializers[t.Name] = true
	}
	for _, s := range g.Sparse {
		initializers[s.Name] = true
	}
	for i, v := range g.Inputs {
		vi, err := v.Info()
		if err != nil {
			return nil, fmt.Errorf("%w: graph: input %d: %w", ErrNotONNX, i, err)
		}
		if !initializers[v.Name] {
			info.Inputs = append(info.Inputs, vi)
		}
	}
	for i, v := range g.Outputs {
		vi, err := v.Info()
		if err != nil {
			return nil, fmt.Errorf("%w: graph: output %d: %w", ErrNotONNX, i, err)
		}
		info.Outputs = append(info.Outputs, vi)
	}
	return info, nil
}

func parseEntry(b []byte) (key, value string, err error) {
	err = eachField(b, func(f field) error {
		var err error
		switch f.num {
		case entryKey:
			key, err = f.stringOf("metadata_props.key")
		case entryValue:
			value, err = f.stringOf("metadata_props.value")
		}
		return err
	})
	return key, value, err
}

// tensorProtoName returns the name of an encoded TensorProto.
func tensorProtoName(b []byte) (string, error) {
	var name string
	err := eachField(b, func(f field) error {
		var err error
		if f.num == tensorName {
			name, err = f.stringOf("initializer.name")
		}
		return err
	})
	return name, err
}

// sparseTensorName returns the name of an encoded SparseTensorProto, which is
// that of its values.
func sparseTensorName(b []byte) (string, error) {
	var name string
	err := eachField(b, func(f field) error {
		if f.num != sparseValues {
			return nil
		}
		v, err := f.bytesOf("sparse_initializer.values")
		if err != nil {
			return err
		}
		name, err = tensorProtoName(v)
		return err
	})
	return name, err
}

// parseType fills Kind, ElemType and Shape from an encoded TypeProto. Only
// tensor types are described further than their kind.
func parseType(b []byte, v *ValueInfo) error {
	return eachField(b, func(f field) error {
		var kind string
		switch f.num {
		case typeTensor:
			kind = KindTensor
		case typeSparseTensor:
			kind = KindSparseTensor
		case typeSequence:
			kind = KindSequence
		case typeMap:
			kind = KindMap
		case typeOptional:
			kind = KindOptional
		case typeOpaque:
			kind = KindOpaque
		default:
			return nil
		}
		body, err := f.bytesOf(kind)
		if err != nil {
			return err
		}
		v.Kind = kind
		if kind == KindTensor || kind == KindSparseTensor {
			return parseTensorType(body, v)
		}
		return nil
	})
}

func parseTensorType(b []byte, v *ValueInfo) error {
	return eachField(b, func(f field) error {
		switch f.num {
		case tensorTypeElemType:
			t, err := f.intOf("elem_type")
			v.ElemType = DataType(t)
			return err
		case tensorTypeShape:
			s, err := f.bytesOf("shape")
			if err != nil {
				return err
			}
			v.Shape, err = parseShape(s)
			return err
		}
		return nil
	})
}

func parseShape(b []byte) ([]Dim, error) {
	dims := []Dim{} // non-nil: a present shape with no dims is a scalar
	err := eachField(b, func(f field) error {
		if f.num != shapeDim {
			return nil
		}
		db, err := f.bytesOf("dim")
		if err != nil {
			return err
		}
		d := Dim{Value: -1}
		err = eachField(db, func(f field) error {
			var err error
			switch f.num {
			case dimValue:
				d.Value, err = f.intOf("dim_value")
				d.Param = ""
			case dimParam:
				d.Param, err = f.stringOf("dim_param")
				d.Value = -1
			}
			return err
		})
		dims = append(dims, d)
		return err
	})
	return dims, err
}
