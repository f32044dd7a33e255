package onnx

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The elements of a graph: nodes, their attributes, values; and the
// encoder of a message re-encoded from its fields.

const nodeDocString = 6

func decodeNode(b []byte, depth int) (*Node, error) {
	n := &Node{enc: b}
	err := eachField(b, func(f field) error {
		var err error
		var s string
		switch f.num {
		case nodeInput:
			s, err = f.stringOf("input")
			n.Inputs = append(n.Inputs, s)
		case nodeOutput:
			s, err = f.stringOf("output")
			n.Outputs = append(n.Outputs, s)
		case nodeName:
			n.Name, err = f.stringOf("name")
		case nodeOpType:
			n.OpType, err = f.stringOf("op_type")
		case nodeDomain:
			n.Domain, err = f.stringOf("domain")
		case nodeDocString:
			n.DocString, err = f.stringOf("doc_string")
		case nodeAttribute:
			var ab []byte
			if ab, err = f.bytesOf("attribute"); err != nil {
				return err
			}
			a, err := decodeAttr(ab, depth)
			if err != nil {
				return fmt.Errorf("attribute %d: %w", len(n.Attrs), err)
			}
			n.Attrs = append(n.Attrs, a)
		default:
			n.unknown = append(n.unknown, rawField{f.num, f.raw})
		}
		return err
	})
	return n, err
}

// NewNode returns a node of the ONNX domain.
func NewNode(name, op string, inputs, outputs []string, attrs ...*Attribute) *Node {
	return &Node{Name: name, OpType: op, Inputs: inputs, Outputs: outputs, Attrs: attrs}
}

// IntAttr returns an INT attribute.
func IntAttr(name string, v int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInt, I: v}
}

// Attr returns the first attribute called name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// attrInt returns the value of an INT attribute, 0 when absent.
func (n *Node) attrInt(name string) int64 {
	a := n.Attr(name)
	if a == nil || (a.Type != AttrInt && a.Type != AttrUndefined) {
		return 0
	}
	return a.I
}

// is reports whether n is the ONNX operator op.
func (n *Node) is(op string) bool {
	return n != nil && n.OpType == op && (n.Domain == "" || n.Domain == DefaultDomain)
}

// input returns the i-th input, or "" when the node has fewer.
func (n *Node) input(i int) string {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return ""
}

// reads returns every name the node reads, its subgraphs' included (a
// superset of what they take from the enclosing graph).
func (n *Node) reads() []string {
	var sub []string
	for _, a := range n.Attrs {
		if a.G != nil {
			sub = a.G.reads(sub)
		}
		for _, g := range a.Graphs {
			sub = g.reads(sub)
		}
	}
	if sub == nil {
		return n.Inputs
	}
	return append(append([]string(nil), n.Inputs...), sub...)
}

func (g *Graph) reads(dst []string) []string {
	for _, n := range g.Nodes {
		dst = append(dst, n.reads()...)
	}
	return dst
}

func (n *Node) encode() []byte {
	if n.enc != nil {
		return n.enc
	}
	var e encoder
	e.unknown = n.unknown
	for _, s := range n.Inputs {
		e.string(nodeInput, s)
	}
	for _, s := range n.Outputs {
		e.string(nodeOutput, s)
	}
	e.stringOpt(nodeName, n.Name)
	e.string(nodeOpType, n.OpType)
	for _, a := range n.Attrs {
		e.bytes(nodeAttribute, a.encode())
	}
	e.stringOpt(nodeDocString, n.DocString)
	e.stringOpt(nodeDomain, n.Domain)
	n.enc = e.finish()
	return n.enc
}

// AttributeProto field numbers (beyond those in graph.go).
const (
	attrF         = 2
	attrS         = 4
	attrFloats    = 7
	attrInts      = 8
	attrStrings   = 9
	attrTensors   = 10
	attrDocString = 13
)

func decodeAttr(b []byte, depth int) (*Attribute, error) {
	a := &Attribute{enc: b}
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case attrName:
			a.Name, err = f.stringOf("name")
		case attrType:
			var v int64
			v, err = f.intOf("type")
			a.Type = AttrType(v)
		case attrF:
			if f.typ != protowire.Fixed32Type {
				return fmt.Errorf("f: %s field, want fixed32", wireName(f.typ))
			}
			a.F = math.Float32frombits(uint32(f.v))
		case attrI:
			a.I, err = f.intOf("i")
		case attrS:
			a.S, err = f.bytesOf("s")
		case attrDocString:
			a.DocString, err = f.stringOf("doc_string")
		case attrFloats:
			a.Floats, err = appendFloat32s(a.Floats, f)
		case attrInts:
			a.Ints, err = f.int64sOf(a.Ints, "ints")
		case attrStrings:
			var s []byte
			s, err = f.bytesOf("strings")
			a.Strings = append(a.Strings, s)
		case attrT, attrTensors:
			var tb []byte
			if tb, err = f.bytesOf("t"); err != nil {
				return err
			}
			t, err := decodeTensor(tb)
			if err != nil {
				return fmt.Errorf("%s: t: %w", a.Name, err)
			}
			if f.num == attrT {
				a.T = t
			} else {
				a.Tensors = append(a.Tensors, t)
			}
		case attrG, attrGraphs:
			var gb []byte
			if gb, err = f.bytesOf("g"); err != nil {
				return err
			}
			if depth >= maxDepth {
				return fmt.Errorf("subgraphs nested deeper than %d", maxDepth)
			}
			g, err := decodeGraph(gb, depth+1)
			if err != nil {
				return fmt.Errorf("%s: g: %w", a.Name, err)
			}
			if f.num == attrG {
				a.G = g
			} else {
				a.Graphs = append(a.Graphs, g)
			}
		default:
			a.unknown = append(a.unknown, rawField{f.num, f.raw})
		}
		return err
	})
	return a, err
}

func (a *Attribute) encode() []byte {
	if a.enc != nil {
		return a.enc
	}
	var e encoder
	e.unknown = a.unknown
	e.string(attrName, a.Name)
	// The value of the attribute's type is written even when zero.
	if a.F != 0 || a.Type == AttrFloat {
		e.flush(attrF)
		e.b = protowire.AppendTag(e.b, attrF, protowire.Fixed32Type)
		e.b = protowire.AppendFixed32(e.b, math.Float32bits(a.F))
	}
	if a.I != 0 || a.Type == AttrInt {
		e.varint(attrI, a.I)
	}
	if a.S != nil || a.Type == AttrString {
		e.bytes(attrS, a.S)
	}
	if a.T != nil {
		e.bytes(attrT, a.T.Encode())
	}
	if a.G != nil {
		e.bytes(attrG, a.G.encode())
	}
	// onnx.proto is proto2 and does not pack floats and ints.
	for _, f := range a.Floats {
		e.flush(attrFloats)
		e.b = protowire.AppendTag(e.b, attrFloats, protowire.Fixed32Type)
		e.b = protowire.AppendFixed32(e.b, math.Float32bits(f))
	}
	for _, v := range a.Ints {
		e.varint(attrInts, v)
	}
	for _, s := range a.Strings {
		e.bytes(attrStrings, s)
	}
	for _, t := range a.Tensors {
		e.bytes(attrTensors, t.Encode())
	}
	for _, g := range a.Graphs {
		e.bytes(attrGraphs, g.encode())
	}
	e.stringOpt(attrDocString, a.DocString)
	if a.Type != AttrUndefined {
		e.varint(attrType, int64(a.Type))
	}
	a.enc = e.finish()
	return a.enc
}

func decodeValue(b []byte) (*Value, error) {
	v := &Value{enc: b}
	err := eachField(b, func(f field) error {
		var err error
		switch f.num {
		case valueName:
			v.Name, err = f.stringOf("name")
		case valueType:
			v.Type, err = f.bytesOf("type")
		case valueDocString:
			v.DocString, err = f.stringOf("doc_string")
		default:
			v.unknown = append(v.unknown, rawField{f.num, f.raw})
		}
		return err
	})
	return v, err
}

// NewValue returns a Value of the given encoded TypeProto (nil for none).
func NewValue(name string, typ []byte) *Value { return &Value{Name: name, Type: typ} }

// TensorValue returns the Value of a tensor of elem with shape (fixed sizes,
// symbolic names, or unknown dimensions).
func TensorValue(name string, elem DataType, shape []Dim) *Value {
	return &Value{Name: name, Type: encodeTensorType(elem, shape)}
}

// Info decodes the value's type.
func (v *Value) Info() (ValueInfo, error) {
	vi := ValueInfo{Name: v.Name, DocString: v.DocString}
	if v.Type != nil {
		if err := parseType(v.Type, &vi); err != nil {
			return vi, fmt.Errorf("%s: type: %w", v.Name, err)
		}
	}
	return vi, nil
}

func (v *Value) encode() []byte {
	if v.enc != nil {
		return v.enc
	}
	var e encoder
	e.unknown = v.unknown
	e.string(valueName, v.Name)
	if v.Type != nil {
		e.bytes(valueType, v.Type)
	}
	e.stringOpt(valueDocString, v.DocString)
	v.enc = e.finish()
	return v.enc
}

// encoder writes a message's fields in field-number order, merging in the
// unknown fields kept from decoding before the first known field with a
// higher number.
type encoder struct {
	b       []byte
	unknown []rawField
}

func (e *encoder) flush(num protowire.Number) {
	for len(e.unknown) > 0 && e.unknown[0].num < num {
		e.b = append(e.b, e.unknown[0].raw...)
		e.unknown = e.unknown[1:]
	}
}

func (e *encoder) bytes(num protowire.Number, v []byte) {
	e.flush(num)
	e.b = appendBytesField(e.b, num, v)
}

func (e *encoder) string(num protowire.Number, s string) {
	e.flush(num)
	e.b = appendStringField(e.b, num, s)
}

func (e *encoder) stringOpt(num protowire.Number, s string) {
	if s != "" {
		e.string(num, s)
	}
}

func (e *encoder) varint(num protowire.Number, v int64) {
	e.flush(num)
	e.b = appendVarintField(e.b, num, v)
}

func (e *encoder) finish() []byte {
	for _, u := range e.unknown {
		e.b = append(e.b, u.raw...)
	}
	e.unknown = nil
	if e.b == nil {
		return []byte{}
	}
	return e.b
}
