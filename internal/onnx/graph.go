package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto used to edit graphs (the others are in
// onnx.go).
const (
	// GraphProto
	graphQuantAnnotation = 14

	// NodeProto
	nodeInput     = 1
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDomain    = 7

	// AttributeProto
	attrName   = 1
	attrI      = 3
	attrT      = 5
	attrG      = 6
	attrGraphs = 11
	attrType   = 20

	// AttributeProto.AttributeType
	attrTypeInt = 2

	// TensorAnnotation
	annotationTensorName = 1
)

// gnode is one decoded NodeProto of a graph.
type gnode struct {
	index   int // position among the graph's nodes
	name    string
	op      string
	domain  string // "" for the ONNX operators
	inputs  []string
	outputs []string
	// outer lists the names the node's subgraphs (If, Loop, Scan bodies)
	// read: a superset of the values they take from the enclosing graph.
	outer []string
	ints  map[string]int64 // INT attributes
	value []byte           // the "value" TENSOR attribute (Constant), encoded
}

// id is how Features.Classifier names the node: its name, or "#i" (its
// index among the graph's nodes) when it has none.
func (n *gnode) id() string {
	if n.name != "" {
		return n.name
	}
	return fmt.Sprintf("#%d", n.index)
}

// is reports whether n is the ONNX operator op.
func (n *gnode) is(op string) bool {
	return n != nil && n.op == op && (n.domain == "" || n.domain == DefaultDomain)
}

// input returns the i-th input, or "" when the node has fewer.
func (n *gnode) input(i int) string {
	if i < len(n.inputs) {
		return n.inputs[i]
	}
	return ""
}

// reads returns every name the node reads, its subgraphs' included.
func (n *gnode) reads() []string {
	if len(n.outer) == 0 {
		return n.inputs
	}
	return append(append([]string(nil), n.inputs...), n.outer...)
}

// graph is a decoded GraphProto: enough of it to follow the data flow and to
// copy it without some of its nodes.
type graph struct {
	raw      []byte
	nodes    []*gnode
	producer map[string]*gnode // value name → the node computing it
	inits    map[string][]byte // initializer name → encoded TensorProto
	sparse   map[string]bool   // sparse initializer names
	inputs   map[string]bool   // graph input names (initializers included)
	types    map[string][]byte // value name → encoded TypeProto (inputs, value_info)
}

func parseGraphProto(raw []byte) (*graph, error) {
	g := &graph{
		raw:      raw,
		producer: map[string]*gnode{},
		inits:    map[string][]byte{},
		sparse:   map[string]bool{},
		inputs:   map[string]bool{},
		types:    map[string][]byte{},
	}
	err := eachField(raw, func(f field) error {
		switch f.num {
		case graphNode:
			b, err := f.bytesOf("node")
			if err != nil {
				return err
			}
			n, err := parseNode(b, 0)
			if err != nil {
				return fmt.Errorf("node %d: %w", len(g.nodes), err)
			}
			n.index = len(g.nodes)
			g.nodes = append(g.nodes, n)
			for _, o := range n.outputs {
				if o != "" {
					g.producer[o] = n
				}
			}
		case graphInitializer:
			b, err := f.bytesOf("initializer")
			if err != nil {
				return err
			}
			name, err := tensorProtoName(b)
			g.inits[name] = b
			return err
		case graphSparseInitializer:
			b, err := f.bytesOf("sparse_initializer")
			if err != nil {
				return err
			}
			name, err := sparseTensorName(b)
			g.sparse[name] = true
			return err
		case graphInput, graphValueInfo:
			b, err := f.bytesOf("value_info")
			if err != nil {
				return err
			}
			name, typ, err := valueInfoNameType(b)
			if f.num == graphInput {
				g.inputs[name] = true
			}
			if typ != nil {
				g.types[name] = typ
			}
			return err
		}
		return nil
	})
	return g, err
}

// valueInfoNameType returns the name and the encoded TypeProto (nil when
// absent) of an encoded ValueInfoProto.
func valueInfoNameType(b []byte) (name string, typ []byte, err error) {
	err = eachField(b, func(f field) error {
		var err error
		switch f.num {
		case valueName:
			name, err = f.stringOf("value_info.name")
		case valueType:
			typ, err = f.bytesOf("value_info.type")
		}
		return err
	})
	return name, typ, err
}

// maxDepth bounds the nesting of subgraphs, so that a malicious model cannot
// exhaust the stack.
const maxDepth = 64

func parseNode(b []byte, depth int) (*gnode, error) {
	n := &gnode{}
	err := eachField(b, func(f field) error {
		var err error
		var s string
		switch f.num {
		case nodeInput:
			s, err = f.stringOf("input")
			n.inputs = append(n.inputs, s)
		case nodeOutput:
			s, err = f.stringOf("output")
			n.outputs = append(n.outputs, s)
		case nodeName:
			n.name, err = f.stringOf("name")
		case nodeOpType:
			n.op, err = f.stringOf("op_type")
		case nodeDomain:
			n.domain, err = f.stringOf("domain")
		case nodeAttribute:
			var a []byte
			if a, err = f.bytesOf("attribute"); err == nil {
				err = parseAttr(a, n, depth)
			}
		}
		return err
	})
	if err == nil && n.domain == DefaultDomain {
		n.domain = ""
	}
	return n, err
}

// parseAttr records an attribute of n: INT values, the tensor of a Constant,
// and the names subgraphs read.
func parseAttr(b []byte, n *gnode, depth int) error {
	var name string
	var i int64
	var typ int64
	var t []byte
	haveI := false
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case attrName:
			name, err = f.stringOf("attribute.name")
		case attrI:
			i, err = f.intOf("attribute.i")
			haveI = true
		case attrType:
			typ, err = f.intOf("attribute.type")
		case attrT:
			t, err = f.bytesOf("attribute.t")
		case attrG, attrGraphs:
			if depth >= maxDepth {
				return fmt.Errorf("subgraphs nested deeper than %d", maxDepth)
			}
			var sub []byte
			if sub, err = f.bytesOf("attribute.g"); err != nil {
				return err
			}
			err = eachField(sub, func(f field) error {
				if f.num != graphNode {
					return nil
				}
				nb, err := f.bytesOf("node")
				if err != nil {
					return err
				}
				sn, err := parseNode(nb, depth+1)
				n.outer = append(n.outer, sn.reads()...)
				return err
			})
		}
		return err
	})
	if err != nil {
		return err
	}
	if haveI && (typ == attrTypeInt || typ == 0) {
		if n.ints == nil {
			n.ints = map[string]int64{}
		}
		n.ints[name] = i
	}
	if t != nil && name == "value" {
		n.value = t
	}
	return nil
}

// constShape returns the dims of a constant value: an initializer, the
// output of a Constant node, or the output of a DequantizeLinear (or Cast,
// Identity) of one (as in models quantized in the QDQ format).
func (g *graph) constShape(name string) ([]int64, bool) {
	for depth := 0; depth < 4; depth++ {
		if b, ok := g.inits[name]; ok {
			t, err := parseTensorHeader(b)
			return t, err == nil
		}
		n := g.producer[name]
		switch {
		case n.is("Constant") && n.value != nil:
			t, err := parseTensorHeader(n.value)
			return t, err == nil
		case n.is("DequantizeLinear"), n.is("Cast"), n.is("Identity"):
			name = n.input(0)
		default:
			return nil, false
		}
	}
	return nil, false
}

// isConst reports whether name is a constant value (see constShape).
func (g *graph) isConst(name string) bool {
	_, ok := g.constShape(name)
	return ok
}

// parseTensorHeader returns the dims of an encoded TensorProto.
func parseTensorHeader(b []byte) ([]int64, error) {
	dims := []int64{}
	err := eachField(b, func(f field) error {
		var err error
		if f.num == tensorDims {
			dims, err = f.int64sOf(dims, "dims")
		}
		return err
	})
	return dims, err
}

// ancestors returns the nodes needed to compute the named values.
func (g *graph) ancestors(names ...string) map[*gnode]bool {
	keep := map[*gnode]bool{}
	stack := append([]string(nil), names...)
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := g.producer[name]
		if n == nil || keep[n] {
			continue
		}
		keep[n] = true
		stack = append(stack, n.reads()...)
	}
	return keep
}

// cut returns the encoded graph with only the nodes in keep, the
// initializers they (or extraUses) read, none of the original outputs, and
// extra (encoded GraphProto fields: new nodes, initializers, outputs)
// appended. value_info and quantization annotations of values that are no
// longer defined are dropped, as are the graph inputs that only listed a
// dropped initializer, and the value_info of the values named in outputs
// (which extra declares as graph outputs).
func (g *graph) cut(keep map[*gnode]bool, extraUses, outputs []string, extra []byte) ([]byte, error) {
	used := map[string]bool{}
	defined := map[string]bool{}
	for n := range keep {
		for _, s := range n.reads() {
			used[s] = true
		}
		for _, s := range n.outputs {
			defined[s] = true
		}
	}
	for _, s := range extraUses {
		used[s] = true
	}
	isInit := func(name string) bool { _, ok := g.inits[name]; return ok || g.sparse[name] }
	for name := range g.inputs {
		if !isInit(name) || used[name] {
			defined[name] = true
		}
	}
	for name := range g.inits {
		if used[name] {
			defined[name] = true
		}
	}
	for name := range g.sparse {
		if used[name] {
			defined[name] = true
		}
	}

	out := make([]byte, 0, len(g.raw)+len(extra))
	i := 0
	err := eachField(g.raw, func(f field) error {
		switch f.num {
		case graphNode:
			if keep[g.nodes[i]] {
				out = append(out, f.raw...)
			}
			i++
			return nil
		case graphInitializer:
			name, err := tensorProtoName(f.b)
			if used[name] {
				out = append(out, f.raw...)
			}
			return err
		case graphSparseInitializer:
			name, err := sparseTensorName(f.b)
			if used[name] {
				out = append(out, f.raw...)
			}
			return err
		case graphInput, graphValueInfo:
			name, _, err := valueInfoNameType(f.b)
			if defined[name] && !(f.num == graphValueInfo && slices.Contains(outputs, name)) {
				out = append(out, f.raw...)
			}
			return err
		case graphOutput:
			return nil
		case graphQuantAnnotation:
			var name string
			err := eachField(f.b, func(f field) error {
				var err error
				if f.num == annotationTensorName {
					name, err = f.stringOf("tensor_name")
				}
				return err
			})
			if defined[name] {
				out = append(out, f.raw...)
			}
			return err
		}
		out = append(out, f.raw...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(out, extra...), nil
}

// Encoders of the messages a new graph part is made of.

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarintField(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// encodeNode encodes a NodeProto of the ONNX domain.
func encodeNode(name, op string, inputs, outputs []string, attrs ...[]byte) []byte {
	var b []byte
	for _, s := range inputs {
		b = appendStringField(b, nodeInput, s)
	}
	for _, s := range outputs {
		b = appendStringField(b, nodeOutput, s)
	}
	b = appendStringField(b, nodeName, name)
	b = appendStringField(b, nodeOpType, op)
	for _, a := range attrs {
		b = appendBytesField(b, nodeAttribute, a)
	}
	return b
}

// encodeIntAttr encodes an INT AttributeProto.
func encodeIntAttr(name string, v int64) []byte {
	b := appendStringField(nil, attrName, name)
	b = appendVarintField(b, attrI, v)
	return appendVarintField(b, attrType, attrTypeInt)
}

// encodeFloatTensor encodes a float32 TensorProto, its data as raw_data
// (little-endian).
func encodeFloatTensor(name string, dims []int64, v []float32) []byte {
	var b []byte
	for _, d := range dims {
		b = appendVarintField(b, tensorDims, d)
	}
	b = appendVarintField(b, tensorDataType, int64(Float))
	b = appendStringField(b, tensorName, name)
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return appendBytesField(b, tensorRawData, raw)
}

// encodeTensorType encodes the TypeProto of a tensor of elem with shape
// (fixed sizes, symbolic names, or unknown dimensions).
func encodeTensorType(elem DataType, shape []Dim) []byte {
	var s []byte
	for _, d := range shape {
		var dim []byte
		switch {
		case d.Param != "":
			dim = appendStringField(nil, dimParam, d.Param)
		case d.Value >= 0:
			dim = appendVarintField(nil, dimValue, d.Value)
		}
		s = appendBytesField(s, shapeDim, dim)
	}
	t := appendVarintField(nil, tensorTypeElemType, int64(elem))
	t = appendBytesField(t, tensorTypeShape, s)
	return appendBytesField(nil, typeTensor, t)
}

// encodeValueInfo encodes a ValueInfoProto.
func encodeValueInfo(name string, typ []byte) []byte {
	b := appendStringField(nil, valueName, name)
	if typ != nil {
		b = appendBytesField(b, valueType, typ)
	}
	return b
}
