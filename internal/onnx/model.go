package onnx

import (
	"errors"
	"fmt"
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
// gives back the same bytes for any model a protobuf serializer wrote (one
// that does not repeat a scalar field of the model or graph, nor write one
// as a longer varint than needed).
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
