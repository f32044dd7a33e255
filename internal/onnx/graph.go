package onnx

import (
	"fmt"
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

	// TensorAnnotation
	annotationTensorName = 1
)

// graph indexes a decoded Graph to follow its data flow: which node
// computes a value, which names are initializers, inputs, typed.
type graph struct {
	g        *Graph
	nodes    []*Node
	pos      map[*Node]int      // node → its index in nodes
	producer map[string]*Node   // value name → the (last) node computing it
	inits    map[string]*Tensor // initializer name → the (last) one
	sparse   map[string]bool    // sparse initializer names
	inputs   map[string]bool    // graph input names (initializers included)
	types    map[string][]byte  // value name → encoded TypeProto (inputs, value_info)
}

func indexGraph(g *Graph) *graph {
	x := &graph{
		g:        g,
		nodes:    g.Nodes,
		pos:      map[*Node]int{},
		producer: map[string]*Node{},
		inits:    map[string]*Tensor{},
		sparse:   map[string]bool{},
		inputs:   map[string]bool{},
		types:    map[string][]byte{},
	}
	for i, n := range g.Nodes {
		x.pos[n] = i
		for _, o := range n.Outputs {
			if o != "" {
				x.producer[o] = n
			}
		}
	}
	for _, t := range g.Initializers {
		x.inits[t.Name] = t
	}
	for _, s := range g.Sparse {
		x.sparse[s.Name] = true
	}
	for _, v := range g.Inputs {
		x.inputs[v.Name] = true
	}
	for _, list := range [][]*Value{g.Inputs, g.ValueInfo} {
		for _, v := range list {
			if v.Type != nil {
				x.types[v.Name] = v.Type
			}
		}
	}
	return x
}

// id is how Features.Classifier names a node: its name, or "#i" (its index
// among the graph's nodes) when it has none.
func (x *graph) id(n *Node) string {
	if n.Name != "" {
		return n.Name
	}
	return fmt.Sprintf("#%d", x.pos[n])
}

// describe names a node for error messages: `the Gemm node "Gemm_104"`.
func (x *graph) describe(n *Node) string {
	op := n.OpType
	if n.Domain != "" && n.Domain != DefaultDomain {
		op = n.Domain + "." + op
	}
	if n.Name == "" {
		return fmt.Sprintf("the %s node #%d", op, x.pos[n])
	}
	return fmt.Sprintf("the %s node %q", op, n.Name)
}

// constShape returns the dims of a constant value: an initializer, the
// output of a Constant node, or the output of a DequantizeLinear (or Cast,
// Identity) of one (as in models quantized in the QDQ format).
func (x *graph) constShape(name string) ([]int64, bool) {
	for depth := 0; depth < 4; depth++ {
		if t, ok := x.inits[name]; ok {
			return t.Dims, true
		}
		n := x.producer[name]
		switch {
		case n.is("Constant"):
			a := n.Attr("value")
			if a == nil || a.T == nil {
				return nil, false
			}
			return a.T.Dims, true
		case n.is("DequantizeLinear"), n.is("Cast"), n.is("Identity"):
			name = n.input(0)
		default:
			return nil, false
		}
	}
	return nil, false
}

// isConst reports whether name is a constant value (see constShape).
func (x *graph) isConst(name string) bool {
	_, ok := x.constShape(name)
	return ok
}

// ancestors returns the nodes needed to compute the named values.
func (x *graph) ancestors(names ...string) map[*Node]bool {
	keep := map[*Node]bool{}
	stack := append([]string(nil), names...)
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := x.producer[name]
		if n == nil || keep[n] {
			continue
		}
		keep[n] = true
		stack = append(stack, n.reads()...)
	}
	return keep
}

// cut edits the graph to keep only the nodes in keep, the initializers they
// (or extraUses) read, and none of the outputs. value_info and quantization
// annotations of values that are no longer defined are dropped, as are the
// graph inputs that only listed a dropped initializer, and the value_info of
// the values named in outputs (which the caller declares as outputs).
func (x *graph) cut(keep map[*Node]bool, extraUses, outputs []string) {
	used := map[string]bool{}
	defined := map[string]bool{}
	for n := range keep {
		for _, s := range n.reads() {
			used[s] = true
		}
		for _, s := range n.Outputs {
			defined[s] = true
		}
	}
	for _, s := range extraUses {
		used[s] = true
	}
	isInit := func(name string) bool { _, ok := x.inits[name]; return ok || x.sparse[name] }
	for name := range x.inputs {
		if !isInit(name) || used[name] {
			defined[name] = true
		}
	}
	for name := range used {
		if isInit(name) {
			defined[name] = true
		}
	}
	g := x.g
	g.RemoveNodes(func(n *Node) bool { return !keep[n] })
	g.RemoveInitializers(func(t *Tensor) bool { return !used[t.Name] })
	g.Sparse = slices.DeleteFunc(g.Sparse, func(s *Sparse) bool { return !used[s.Name] })
	g.Inputs = slices.DeleteFunc(g.Inputs, func(v *Value) bool { return !defined[v.Name] })
	g.ValueInfo = slices.DeleteFunc(g.ValueInfo, func(v *Value) bool {
		return !defined[v.Name] || slices.Contains(outputs, v.Name)
	})
	g.Outputs = nil
	g.Annotations = slices.DeleteFunc(g.Annotations, func(a *Annotation) bool { return !defined[a.TensorName] })
	*x = *indexGraph(g)
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
