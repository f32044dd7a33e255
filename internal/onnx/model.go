package onnx

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
)

// Model is a decoded ModelProto that can be edited and encoded again: the
// one decoder of this package, which ParseInfo, FindFeatures, Export,
// FeatureModel, SetMetadata, ReadInitializer and ExposeOutputs all use. A
// graph rewrite is a function that changes a *Model (see Export).
//
// Encoding keeps what was not changed byte for byte: every node, initializer,
// value info, opset import and metadata entry keeps its original encoding
// until it is replaced, the fields this package does not know (training
// info, functions, a node's metadata, ...) are kept as raw bytes, and the
// model and graph fields are written in the order they were read (new
// elements come after the ones of their kind, or last). Decode then Encode
// of any model gives back the same bytes.
//
// The elements are changed through the methods of Graph and Model
// (ReplaceNode, SetInitializer, ...): an element given to one of them is
// encoded from its fields. Editing a decoded element's fields in place is
// only seen once it is passed to such a method (ReplaceNode(i, n) with n
// itself is how to say "n changed").
type Model struct {
	IRVersion       int64
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	// Graph is nil when the model has none (Decode accepts that; ParseInfo
	// does not).
	Graph    *Graph
	Opsets   []*Opset
	Metadata []*Prop

	layout layout
}

// Opset is one OperatorSetIdProto, its domain as stored ("" for the ONNX
// operators; OpsetImport shows it as DefaultDomain).
type Opset struct {
	Domain  string
	Version int64
	enc     []byte
}

// Prop is one metadata_props entry.
type Prop struct {
	Key, Value string
	enc        []byte
}

// Graph is a decoded GraphProto.
type Graph struct {
	Name      string
	DocString string
	Nodes     []*Node
	// Initializers are the graph's (dense) initializers.
	Initializers []*Tensor
	Inputs       []*Value
	Outputs      []*Value
	ValueInfo    []*Value
	// Sparse and Annotations are kept whole (sparse_initializer and
	// quantization_annotation): they can be read by name and removed.
	Sparse      []*Sparse
	Annotations []*Annotation

	layout layout
}

// Node is a decoded NodeProto.
type Node struct {
	Name      string
	OpType    string
	Domain    string // as stored: "" (or "ai.onnx") for the ONNX operators
	DocString string
	Inputs    []string
	Outputs   []string
	Attrs     []*Attribute

	unknown []rawField
	enc     []byte
}

// AttrType is onnx.AttributeProto.AttributeType.
type AttrType int64

// The attribute types of onnx.proto.
const (
	AttrUndefined AttrType = iota
	AttrFloat
	AttrInt
	AttrString
	AttrTensor
	AttrGraph
	AttrFloats
	AttrInts
	AttrStrings
	AttrTensors
	AttrGraphs
)

// Attribute is a decoded AttributeProto. The fields this package does not
// decode (sparse tensors, type protos, ref_attr_name) are kept as they are.
type Attribute struct {
	Name      string
	Type      AttrType
	F         float32
	I         int64
	S         []byte
	T         *Tensor
	G         *Graph
	Floats    []float32
	Ints      []int64
	Strings   [][]byte
	Tensors   []*Tensor
	Graphs    []*Graph
	DocString string

	unknown []rawField
	enc     []byte
}

// Value is a decoded ValueInfoProto: a graph input, output or value_info
// entry. Type is the encoded TypeProto (nil when absent); Info decodes it.
type Value struct {
	Name      string
	Type      []byte
	DocString string

	unknown []rawField
	enc     []byte
}

// Sparse is a sparse_initializer, kept encoded.
type Sparse struct {
	Name string // the name of its values
	enc  []byte
}

// Annotation is a quantization_annotation, kept encoded.
type Annotation struct {
	TensorName string
	enc        []byte
}

// rawField is a field kept as encoded, tag included.
type rawField struct {
	num protowire.Number
	raw []byte
}

// layout is the order a message's fields came in, so that an unchanged
// message encodes to the same bytes, and the fields it does not decode.
type layout struct {
	order   []protowire.Number
	unknown [][]byte
}

// Decode decodes a serialized ModelProto. Malformed input (bad wire format,
// a known field of the wrong wire type, a repeated graph, subgraphs nested
// deeper than 64) is an error wrapping ErrNotONNX; it never panics. The
// Model shares memory with data (raw_data, unknown fields): data must not
// change while it is in use.
func Decode(data []byte) (*Model, error) {
	m, err := decodeModel(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotONNX, err)
	}
	return m, nil
}

func decodeModel(data []byte) (*Model, error) {
	m := &Model{}
	err := eachField(data, func(f field) error {
		var err error
		known := true
		switch f.num {
		case modelIRVersion:
			m.IRVersion, err = f.intOf("ir_version")
		case modelProducerName:
			m.ProducerName, err = f.stringOf("producer_name")
		case modelProducerVersion:
			m.ProducerVersion, err = f.stringOf("producer_version")
		case modelDomain:
			m.Domain, err = f.stringOf("domain")
		case modelModelVersion:
			m.ModelVersion, err = f.intOf("model_version")
		case modelDocString:
			m.DocString, err = f.stringOf("doc_string")
		case modelGraph:
			if m.Graph != nil {
				return errors.New("graph: repeated")
			}
			var b []byte
			if b, err = f.bytesOf("graph"); err != nil {
				return err
			}
			if m.Graph, err = decodeGraph(b, 0); err != nil {
				return fmt.Errorf("graph: %w", err)
			}
		case modelOpsetImport:
			var b []byte
			if b, err = f.bytesOf("opset_import"); err == nil {
				o := &Opset{enc: b}
				err = eachField(b, func(f field) error {
					var err error
					switch f.num {
					case opsetDomain:
						o.Domain, err = f.stringOf("opset_import.domain")
					case opsetVersion:
						o.Version, err = f.intOf("opset_import.version")
					}
					return err
				})
				m.Opsets = append(m.Opsets, o)
			}
		case modelMetadataProps:
			var b []byte
			if b, err = f.bytesOf("metadata_props"); err == nil {
				p := &Prop{enc: b}
				p.Key, p.Value, err = parseEntry(b)
				m.Metadata = append(m.Metadata, p)
			}
		default:
			known = false
		}
		m.layout.add(f, known)
		return err
	})
	return m, err
}

func (l *layout) add(f field, known bool) {
	l.order = append(l.order, f.num)
	if !known {
		l.unknown = append(l.unknown, f.raw)
	}
}

// replay writes a message's fields in the order of l: emit(num, first)
// appends the next element of the known field num (first is true the first
// time num comes) and returns false when there is none left; unknown fields
// are copied. Then, for each of nums in turn, the elements left (added
// since decoding) are appended.
func (l *layout) replay(b []byte, nums []protowire.Number, emit func(b []byte, num protowire.Number, first bool) ([]byte, bool)) []byte {
	seen := map[protowire.Number]bool{}
	u := 0
	for _, num := range l.order {
		if !slices.Contains(nums, num) {
			if u < len(l.unknown) {
				b = append(b, l.unknown[u]...)
				u++
			}
			continue
		}
		b, _ = emit(b, num, !seen[num])
		seen[num] = true
	}
	for _, num := range nums {
		for first := !seen[num]; ; first = false {
			var ok bool
			if b, ok = emit(b, num, first); !ok {
				break
			}
		}
	}
	return b
}

var modelFields = []protowire.Number{modelIRVersion, modelProducerName, modelProducerVersion, modelDomain,
	modelModelVersion, modelDocString, modelGraph, modelOpsetImport, modelMetadataProps}

// Encode serializes the model.
func (m *Model) Encode() []byte {
	var graph []byte
	if m.Graph != nil {
		graph = m.Graph.encode()
	}
	next := map[protowire.Number]int{}
	size := len(graph) + len(m.ProducerName) + len(m.ProducerVersion) + len(m.Domain) + len(m.DocString) + 64
	for _, u := range m.layout.unknown {
		size += len(u)
	}
	for _, o := range m.Opsets {
		size += len(o.enc) + len(o.Domain) + 16
	}
	for _, p := range m.Metadata {
		size += len(p.enc) + len(p.Key) + len(p.Value) + 16
	}
	out := make([]byte, 0, size)
	return m.layout.replay(out, modelFields, func(b []byte, num protowire.Number, first bool) ([]byte, bool) {
		// Scalars: written once, where they were, or (new) when set.
		scalar := func(b []byte, present bool, enc func([]byte) []byte) ([]byte, bool) {
			if first && present {
				return enc(b), true
			}
			return b, false
		}
		isOld := slices.Contains(m.layout.order, num)
		switch num {
		case modelIRVersion:
			return scalar(b, isOld || m.IRVersion != 0, func(b []byte) []byte { return appendVarintField(b, num, m.IRVersion) })
		case modelProducerName:
			return scalar(b, isOld || m.ProducerName != "", func(b []byte) []byte { return appendStringField(b, num, m.ProducerName) })
		case modelProducerVersion:
			return scalar(b, isOld || m.ProducerVersion != "", func(b []byte) []byte { return appendStringField(b, num, m.ProducerVersion) })
		case modelDomain:
			return scalar(b, isOld || m.Domain != "", func(b []byte) []byte { return appendStringField(b, num, m.Domain) })
		case modelModelVersion:
			return scalar(b, isOld || m.ModelVersion != 0, func(b []byte) []byte { return appendVarintField(b, num, m.ModelVersion) })
		case modelDocString:
			return scalar(b, isOld || m.DocString != "", func(b []byte) []byte { return appendStringField(b, num, m.DocString) })
		case modelGraph:
			return scalar(b, m.Graph != nil, func(b []byte) []byte { return appendBytesField(b, num, graph) })
		case modelOpsetImport:
			i := next[num]
			if i >= len(m.Opsets) {
				return b, false
			}
			next[num]++
			o := m.Opsets[i]
			if o.enc == nil {
				o.enc = appendVarintField(appendStringField(nil, opsetDomain, o.Domain), opsetVersion, o.Version)
			}
			return appendBytesField(b, num, o.enc), true
		case modelMetadataProps:
			i := next[num]
			if i >= len(m.Metadata) {
				return b, false
			}
			next[num]++
			p := m.Metadata[i]
			if p.enc == nil {
				p.enc = encodeEntry(p.Key, p.Value)
			}
			return appendBytesField(b, num, p.enc), true
		}
		return b, false
	})
}

// Opset returns the version of the operator set imported for domain ("" or
// DefaultDomain for the ONNX operators).
func (m *Model) Opset(domain string) (int64, bool) {
	if domain == DefaultDomain {
		domain = ""
	}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == DefaultDomain {
			d = ""
		}
		if d == domain {
			return o.Version, true
		}
	}
	return 0, false
}

// SetMetadata sets the keys of kv in metadata_props: an existing key keeps
// its place and takes the new value (repeats of it are dropped), new keys
// come last, sorted. Entries whose value does not change keep their bytes.
func (m *Model) SetMetadata(kv map[string]string) {
	if len(kv) == 0 {
		return
	}
	set := map[string]bool{}
	props := m.Metadata[:0:0]
	for _, p := range m.Metadata {
		v, ok := kv[p.Key]
		switch {
		case !ok:
			props = append(props, p)
		case set[p.Key]: // a repeat: dropped
		default:
			set[p.Key] = true
			if p.Value != v {
				p = &Prop{Key: p.Key, Value: v}
			}
			props = append(props, p)
		}
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		if !set[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		props = append(props, &Prop{Key: k, Value: kv[k]})
	}
	m.Metadata = props
}

var graphFields = []protowire.Number{graphNode, graphName, graphInitializer, graphDocString, graphInput,
	graphOutput, graphValueInfo, graphQuantAnnotation, graphSparseInitializer}

// maxDepth bounds the nesting of subgraphs, so that a malicious model cannot
// exhaust the stack.
const maxDepth = 64

// drop forgets that the field num was in the decoded message, so that an
// empty value of it is not written.
func (l *layout) drop(num protowire.Number) {
	l.order = slices.DeleteFunc(l.order, func(n protowire.Number) bool { return n == num })
}

func decodeGraph(raw []byte, depth int) (*Graph, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("subgraphs nested deeper than %d", maxDepth)
	}
	g := &Graph{}
	err := eachField(raw, func(f field) error {
		known := true
		var err error
		switch f.num {
		case graphNode:
			var b []byte
			if b, err = f.bytesOf("node"); err != nil {
				return err
			}
			n, err := decodeNode(b, depth)
			if err != nil {
				return fmt.Errorf("node %d: %w", len(g.Nodes), err)
			}
			g.Nodes = append(g.Nodes, n)
		case graphName:
			g.Name, err = f.stringOf("name")
		case graphDocString:
			g.DocString, err = f.stringOf("doc_string")
		case graphInitializer:
			var b []byte
			if b, err = f.bytesOf("initializer"); err != nil {
				return err
			}
			t, err := decodeTensor(b)
			if err != nil {
				return fmt.Errorf("initializer %d: %w", len(g.Initializers), err)
			}
			g.Initializers = append(g.Initializers, t)
		case graphSparseInitializer:
			var b []byte
			if b, err = f.bytesOf("sparse_initializer"); err != nil {
				return err
			}
			s := &Sparse{enc: b}
			s.Name, err = sparseTensorName(b)
			g.Sparse = append(g.Sparse, s)
		case graphQuantAnnotation:
			var b []byte
			if b, err = f.bytesOf("quantization_annotation"); err != nil {
				return err
			}
			a := &Annotation{enc: b}
			err = eachField(b, func(f field) error {
				var err error
				if f.num == annotationTensorName {
					a.TensorName, err = f.stringOf("tensor_name")
				}
				return err
			})
			g.Annotations = append(g.Annotations, a)
		case graphInput, graphOutput, graphValueInfo:
			what, list := "input", &g.Inputs
			switch f.num {
			case graphOutput:
				what, list = "output", &g.Outputs
			case graphValueInfo:
				what, list = "value_info", &g.ValueInfo
			}
			var b []byte
			if b, err = f.bytesOf(what); err != nil {
				return err
			}
			v, err := decodeValue(b)
			if err != nil {
				return fmt.Errorf("%s %d: %w", what, len(*list), err)
			}
			*list = append(*list, v)
		default:
			known = false
		}
		g.layout.add(f, known)
		return err
	})
	return g, err
}

func (g *Graph) encode() []byte {
	// The size first, so that the graph is written into one buffer.
	size := len(g.Name) + len(g.DocString) + 16
	for _, u := range g.layout.unknown {
		size += len(u)
	}
	add := func(b []byte) { size += len(b) + 2 + protowire.SizeVarint(uint64(len(b))) }
	for _, n := range g.Nodes {
		add(n.encode())
	}
	for _, t := range g.Initializers {
		add(t.Encode())
	}
	for _, list := range [][]*Value{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range list {
			add(v.encode())
		}
	}
	for _, a := range g.Annotations {
		add(a.enc)
	}
	for _, s := range g.Sparse {
		add(s.enc)
	}
	next := map[protowire.Number]int{}
	out := make([]byte, 0, size)
	return g.layout.replay(out, graphFields, func(b []byte, num protowire.Number, first bool) ([]byte, bool) {
		i := next[num]
		elem := func(n int, enc func(i int) []byte) ([]byte, bool) {
			if i >= n {
				return b, false
			}
			next[num]++
			return appendBytesField(b, num, enc(i)), true
		}
		switch num {
		case graphName:
			if first && (g.Name != "" || slices.Contains(g.layout.order, num)) {
				return appendStringField(b, num, g.Name), true
			}
			return b, false
		case graphDocString:
			if first && (g.DocString != "" || slices.Contains(g.layout.order, num)) {
				return appendStringField(b, num, g.DocString), true
			}
			return b, false
		case graphNode:
			return elem(len(g.Nodes), func(i int) []byte { return g.Nodes[i].encode() })
		case graphInitializer:
			return elem(len(g.Initializers), func(i int) []byte { return g.Initializers[i].Encode() })
		case graphInput:
			return elem(len(g.Inputs), func(i int) []byte { return g.Inputs[i].encode() })
		case graphOutput:
			return elem(len(g.Outputs), func(i int) []byte { return g.Outputs[i].encode() })
		case graphValueInfo:
			return elem(len(g.ValueInfo), func(i int) []byte { return g.ValueInfo[i].encode() })
		case graphQuantAnnotation:
			return elem(len(g.Annotations), func(i int) []byte { return g.Annotations[i].enc })
		case graphSparseInitializer:
			return elem(len(g.Sparse), func(i int) []byte { return g.Sparse[i].enc })
		}
		return b, false
	})
}

// Editing a graph. Positions are indices into g.Nodes.

// InsertNode inserts n before the node at position i (len(g.Nodes) appends).
func (g *Graph) InsertNode(i int, n *Node) {
	n.enc = nil
	g.Nodes = slices.Insert(g.Nodes, i, n)
}

// ReplaceNode puts n at position i, encoded from its fields.
func (g *Graph) ReplaceNode(i int, n *Node) {
	n.enc = nil
	g.Nodes[i] = n
}

// RemoveNodes removes the nodes for which drop is true and returns how many.
func (g *Graph) RemoveNodes(drop func(*Node) bool) int {
	before := len(g.Nodes)
	g.Nodes = slices.DeleteFunc(g.Nodes, drop)
	return before - len(g.Nodes)
}

// Initializer returns the first initializer called name, or nil.
func (g *Graph) Initializer(name string) *Tensor {
	for _, t := range g.Initializers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// SetInitializer replaces the first initializer called t.Name by t, or
// appends t when there is none.
func (g *Graph) SetInitializer(t *Tensor) {
	t.enc = nil
	for i, old := range g.Initializers {
		if old.Name == t.Name {
			g.Initializers[i] = t
			return
		}
	}
	g.Initializers = append(g.Initializers, t)
}

// RemoveInitializers removes the initializers for which drop is true.
func (g *Graph) RemoveInitializers(drop func(*Tensor) bool) int {
	before := len(g.Initializers)
	g.Initializers = slices.DeleteFunc(g.Initializers, drop)
	return before - len(g.Initializers)
}

// AddOutput appends a graph output.
func (g *Graph) AddOutput(v *Value) {
	v.enc = nil
	g.Outputs = append(g.Outputs, v)
}

// RenameValue renames the value old to new wherever the graph (not its
// subgraphs) names it: node inputs and outputs, graph inputs, outputs and
// value_info, initializers. It returns how many places changed.
func (g *Graph) RenameValue(old, new string) int {
	count := 0
	rename := func(list []string) bool {
		changed := false
		for i, s := range list {
			if s == old {
				list[i], changed = new, true
				count++
			}
		}
		return changed
	}
	for _, n := range g.Nodes {
		in, out := rename(n.Inputs), rename(n.Outputs)
		if in || out {
			n.enc = nil
		}
	}
	for _, list := range [][]*Value{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range list {
			if v.Name == old {
				v.Name, v.enc = new, nil
				count++
			}
		}
	}
	for _, t := range g.Initializers {
		if t.Name == old {
			t.Name, t.enc = new, nil
			count++
		}
	}
	return count
}

// Producer returns the last node computing name, or nil.
func (g *Graph) Producer(name string) *Node {
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		if slices.Contains(g.Nodes[i].Outputs, name) {
			return g.Nodes[i]
		}
	}
	return nil
}

var nodeFields = []protowire.Number{nodeInput, nodeOutput, nodeName, nodeOpType, nodeAttribute, nodeDocString, nodeDomain}

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

var valueFields = []protowire.Number{valueName, valueType, valueDocString}

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
