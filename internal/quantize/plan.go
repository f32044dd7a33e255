package quantize

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"petbreed/internal/onnx"
)

// How each ONNX operator is treated. An operator in none of these sets
// makes the model refused (UnsupportedError): a graph the quantizer does not
// understand is not rewritten on a guess.
var (
	// computeOps get int8 kernels in ONNX Runtime's CPU provider when their
	// inputs come from DequantizeLinear and (except Gemm and MatMul, which
	// may output float) their output goes to QuantizeLinear.
	computeOps = map[string]bool{"Conv": true, "Gemm": true, "MatMul": true, "Add": true,
		"GlobalAveragePool": true, "AveragePool": true}
	// foldOps are activations a quantized output can absorb: QuantizeLinear
	// clamps to its range, so Clip(lo<=0<=hi) and Relu are removed and the
	// producer's output takes their (calibrated) range.
	foldOps = map[string]bool{"Clip": true, "Relu": true}
	// passOps move or select data without changing values: their output
	// carries their input's scale and zero point, so ONNX Runtime drops
	// the QuantizeLinear/DequantizeLinear pair around them.
	passOps = map[string]bool{"Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true,
		"Transpose": true, "MaxPool": true}
	// floatOps stay in float32 and read dequantized values (or constants).
	floatOps = map[string]bool{"Softmax": true, "LogSoftmax": true, "Identity": true, "Constant": true,
		"Shape": true, "Gather": true, "Concat": true, "Mul": true, "Sub": true, "Div": true,
		"Sigmoid": true, "Cast": true, "Dropout": true, "ArgMax": true, "Clip": true, "Relu": true,
		// The export's test-time views (a crop, its resize, a mirror; their mean).
		"Slice": true, "Resize": true, "ReduceMean": true}
)

// since13 is, for the operators whose meaning changed before opset 13, the
// first opset whose meaning is opset 13's: per-channel weights need
// DequantizeLinear's axis (opset 13), so the model's import is raised to 13
// only when every node means the same there. Operators absent here mean
// the same at every opset.
var since13 = map[string]int64{
	"Clip": 11, "Gemm": 7, "Add": 7, "Mul": 7, "Sub": 7, "Div": 7, "Relu": 6, "Sigmoid": 6, "Cast": 6,
	"MatMul": 9, "AveragePool": 10, "MaxPool": 8, "Reshape": 5, "Flatten": 9, "Concat": 4, "Constant": 9,
	"Dropout": 12, "ArgMax": 12, "Squeeze": 13, "Unsqueeze": 13, "Softmax": 13, "LogSoftmax": 13,
	"Slice": 11, "Resize": 11,
}

// UnsupportedError says why a model cannot be quantized, naming the node.
type UnsupportedError struct {
	Op, Node, Reason string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("cannot quantize: the %s node %q %s", e.Op, e.Node, e.Reason)
}

// plan is what the quantizer decided about a graph, before calibration.
type plan struct {
	m      *onnx.Model
	g      *onnx.Graph
	inits  map[string]*onnx.Tensor
	prod   map[string]*onnx.Node
	users  map[string][]*onnx.Node
	inputs map[string]bool
	output map[string]bool

	// folded maps a removed Clip/Relu to its producer, whose output takes
	// the activation's output name.
	folded map[*onnx.Node]*onnx.Node
	// quantized are the activations that get a QuantizeLinear /
	// DequantizeLinear pair, in graph order; shared maps those carrying
	// another's parameters to it (the outputs of passOps).
	quantized []string
	shared    map[string]string
	// compute are the nodes quantized (weights and bias included).
	compute []*onnx.Node
	// raise is set when the default opset must become 13.
	raise bool
}

// Calibrated returns the activations whose ranges calibration measures:
// the quantized ones that do not share another's.
func (p *plan) calibrated() []string {
	var out []string
	for _, t := range p.quantized {
		if _, ok := p.shared[t]; !ok {
			out = append(out, t)
		}
	}
	return out
}

func nodeName(g *onnx.Graph, n *onnx.Node) string {
	if n.Name != "" {
		return n.Name
	}
	return fmt.Sprintf("#%d", slices.Index(g.Nodes, n))
}

func isONNX(n *onnx.Node) bool { return n.Domain == "" || n.Domain == onnx.DefaultDomain }

// newPlan checks the model and decides what to quantize.
func newPlan(m *onnx.Model, opt Options) (*plan, error) {
	if m.Graph == nil {
		return nil, fmt.Errorf("cannot quantize: the model has no graph")
	}
	g := m.Graph
	p := &plan{m: m, g: g, inits: map[string]*onnx.Tensor{}, prod: map[string]*onnx.Node{},
		users: map[string][]*onnx.Node{}, inputs: map[string]bool{}, output: map[string]bool{},
		folded: map[*onnx.Node]*onnx.Node{}, shared: map[string]string{}}
	for _, t := range g.Initializers {
		p.inits[t.Name] = t
	}
	for _, v := range g.Inputs {
		if p.inits[v.Name] == nil {
			p.inputs[v.Name] = true
		}
	}
	for _, v := range g.Outputs {
		p.output[v.Name] = true
	}
	opset, ok := m.Opset("")
	if !ok {
		return nil, fmt.Errorf("cannot quantize: the model imports no ONNX operator set")
	}
	for _, n := range g.Nodes {
		name := nodeName(g, n)
		if !isONNX(n) {
			return nil, &UnsupportedError{n.Domain + "." + n.OpType, name, "is not an ONNX operator"}
		}
		switch {
		case n.OpType == "QuantizeLinear" || n.OpType == "DequantizeLinear" || len(n.OpType) > 7 && n.OpType[:7] == "QLinear" ||
			n.OpType == "ConvInteger" || n.OpType == "MatMulInteger":
			return nil, &UnsupportedError{n.OpType, name, "is already quantized: the model is quantized"}
		case !computeOps[n.OpType] && !passOps[n.OpType] && !floatOps[n.OpType]:
			return nil, &UnsupportedError{n.OpType, name, "is not an operator petbreed quantize supports (Conv, Gemm, MatMul, Add, pooling, Clip/Relu, shape ops, Softmax)"}
		}
		for _, a := range n.Attrs {
			if a.G != nil || len(a.Graphs) > 0 {
				return nil, &UnsupportedError{n.OpType, name, "has a subgraph"}
			}
		}
		for _, o := range n.Outputs {
			p.prod[o] = n
		}
		for _, in := range n.Inputs {
			if in != "" && !slices.Contains(p.users[in], n) {
				p.users[in] = append(p.users[in], n)
			}
		}
	}
	for _, t := range g.Initializers {
		if t.Type != onnx.Float && p.users[t.Name] != nil && isWeightOf(p, t.Name) {
			return nil, fmt.Errorf("cannot quantize: the weight %q is %s, not float32", t.Name, t.Type)
		}
	}

	// The compute nodes quantized, their weights checked.
	want := map[string]bool{} // activations to quantize
	for _, n := range g.Nodes {
		if !computeOps[n.OpType] {
			continue
		}
		ok, err := p.quantizable(n)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		p.compute = append(p.compute, n)
		for _, in := range p.activationInputs(n) {
			want[in] = true
		}
	}
	// Fold Clip/Relu into the quantized output before them.
	for _, n := range p.compute {
		if n.OpType == "Gemm" || n.OpType == "MatMul" {
			continue
		}
		x := n.Outputs[0]
		u := p.users[x]
		if len(u) != 1 || p.output[x] || !foldOps[u[0].OpType] || len(u[0].Outputs) != 1 {
			continue
		}
		lo, hi, ok := p.clipRange(u[0])
		if !ok || lo > 0 || hi < 0 {
			continue
		}
		p.folded[u[0]] = n
	}
	outputOf := func(n *onnx.Node) string { // the effective output of a compute node
		x := n.Outputs[0]
		if u := p.users[x]; len(u) == 1 && p.folded[u[0]] == n {
			return u[0].Outputs[0]
		}
		return x
	}
	for _, n := range p.compute {
		if n.OpType != "Gemm" && n.OpType != "MatMul" {
			want[outputOf(n)] = true
		}
	}
	// Pass-through nodes carry their input's parameters forward, in graph
	// order so that chains of them share one root.
	for _, n := range g.Nodes {
		if !passOps[n.OpType] || len(n.Inputs) == 0 || len(n.Outputs) == 0 {
			continue
		}
		in := n.Inputs[0]
		if want[in] || p.shared[in] != "" {
			root := in
			if r := p.shared[in]; r != "" {
				root = r
			}
			want[n.Outputs[0]] = true
			p.shared[n.Outputs[0]] = root
		}
	}
	// Graph order: inputs first, then outputs as the nodes compute them.
	for _, v := range g.Inputs {
		if want[v.Name] && p.inputs[v.Name] {
			p.quantized = append(p.quantized, v.Name)
		}
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if want[o] && !slices.Contains(p.quantized, o) {
				p.quantized = append(p.quantized, o)
			}
		}
	}
	for t := range want {
		if !slices.Contains(p.quantized, t) {
			return nil, fmt.Errorf("cannot quantize: the activation %q is neither a graph input nor a node's output", t)
		}
	}

	// Opsets: QuantizeLinear/DequantizeLinear need 10, their axis 13.
	need := int64(10)
	if opt.PerTensor == false {
		need = 13
	}
	if opset < need {
		for _, n := range g.Nodes {
			if need == 13 && p.upgradable(n) {
				continue
			}
			if v, ok := since13[n.OpType]; ok && opset < v {
				if opt.PerTensor {
					return nil, &UnsupportedError{n.OpType, nodeName(g, n), fmt.Sprintf("means something else at opset %d, which quantization needs (the model imports %d)", need, opset)}
				}
				return nil, &UnsupportedError{n.OpType, nodeName(g, n), fmt.Sprintf("means something else at opset 13, which per-channel weights need (the model imports %d): quantize per tensor (--per-channel=false)", opset)}
			}
		}
		p.raise = true
	}
	return p, nil
}

// isWeightOf reports whether name is read as a weight or bias by a compute node.
func isWeightOf(p *plan, name string) bool {
	for _, n := range p.users[name] {
		if computeOps[n.OpType] && slices.Index(n.Inputs, name) >= 1 && n.OpType != "Add" {
			return true
		}
	}
	return false
}

// activationInputs are a compute node's inputs that are not constants.
func (p *plan) activationInputs(n *onnx.Node) []string {
	switch n.OpType {
	case "Add":
		return n.Inputs[:2]
	default:
		return n.Inputs[:1]
	}
}

// quantizable checks a compute node: whether it is quantized (an Add of a
// constant, or a Gemm with transA, stays float) or makes the model refused.
func (p *plan) quantizable(n *onnx.Node) (bool, error) {
	name := nodeName(p.g, n)
	bad := func(why string) error { return &UnsupportedError{n.OpType, name, why} }
	weight := func(i, rank int) error {
		if len(n.Inputs) <= i || p.inits[n.Inputs[i]] == nil {
			return bad(fmt.Sprintf("has a weight (input %d) that is not an initializer", i))
		}
		t := p.inits[n.Inputs[i]]
		if t.Type != onnx.Float {
			return bad(fmt.Sprintf("has a %s weight, not float32", t.Type))
		}
		if rank > 0 && len(t.Dims) != rank || rank < 0 && len(t.Dims) < 3 {
			return bad(fmt.Sprintf("has a weight of shape %v", t.Dims))
		}
		return nil
	}
	switch n.OpType {
	case "Conv":
		if err := weight(1, -1); err != nil {
			return false, err
		}
		if len(n.Inputs) > 2 && n.Inputs[2] != "" && p.inits[n.Inputs[2]] == nil {
			return false, bad("has a bias that is not an initializer")
		}
	case "Gemm":
		if attrInt(n, "transA", 0) != 0 {
			return false, nil
		}
		if err := weight(1, 2); err != nil {
			return false, err
		}
	case "MatMul":
		// Two activations, or a vector (a weighted sum such as the pet
		// score): left in float.
		if len(n.Inputs) < 2 || p.inits[n.Inputs[1]] == nil || len(p.inits[n.Inputs[1]].Dims) != 2 {
			return false, nil
		}
		if err := weight(1, 2); err != nil {
			return false, err
		}
	case "Add":
		if len(n.Inputs) != 2 || p.isConst(n.Inputs[0]) || p.isConst(n.Inputs[1]) {
			return false, nil
		}
	}
	return true, nil
}

func (p *plan) isConst(name string) bool {
	if p.inits[name] != nil {
		return true
	}
	n := p.prod[name]
	return n != nil && n.OpType == "Constant"
}

func attrInt(n *onnx.Node, name string, def int64) int64 {
	if a := n.Attr(name); a != nil {
		return a.I
	}
	return def
}

func attrFloat(n *onnx.Node, name string, def float32) float32 {
	if a := n.Attr(name); a != nil {
		return a.F
	}
	return def
}

// clipRange returns the bounds of a Clip or Relu, when they are constants.
func (p *plan) clipRange(n *onnx.Node) (lo, hi float32, ok bool) {
	if n.OpType == "Relu" {
		return 0, float32(math.Inf(1)), true
	}
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if a := n.Attr("min"); a != nil {
		lo = a.F
	}
	if a := n.Attr("max"); a != nil {
		hi = a.F
	}
	for i, dst := range []*float32{&lo, &hi} {
		if len(n.Inputs) <= i+1 || n.Inputs[i+1] == "" {
			continue
		}
		v, ok := p.scalar(n.Inputs[i+1])
		if !ok {
			return 0, 0, false
		}
		*dst = v
	}
	return lo, hi, true
}

// scalar reads a one-value float constant.
func (p *plan) scalar(name string) (float32, bool) {
	t := p.inits[name]
	if t == nil {
		if n := p.prod[name]; n != nil && n.OpType == "Constant" {
			if a := n.Attr("value"); a != nil && a.T != nil {
				t = a.T
			}
		}
	}
	if t == nil || t.Type != onnx.Float {
		return 0, false
	}
	v, err := t.Float32s()
	if err != nil || len(v) != 1 {
		return 0, false
	}
	return v[0], true
}

// upgradable reports whether a node that changed meaning at opset 13 can be
// rewritten to mean the same there: Squeeze and Unsqueeze take their axes
// as an input instead of an attribute, and a Softmax or LogSoftmax of a
// Gemm's (2-D) output over axis 1 is the same at every opset.
func (p *plan) upgradable(n *onnx.Node) bool {
	switch n.OpType {
	case "Squeeze", "Unsqueeze":
		return n.Attr("axes") != nil && len(n.Inputs) == 1
	case "Softmax", "LogSoftmax":
		axis := attrInt(n, "axis", 1)
		src := p.prod[n.Inputs[0]]
		return (axis == 1 || axis == -1) && src != nil && src.OpType == "Gemm"
	}
	return false
}

// upgrade rewrites the nodes upgradable reports for opset 13.
func (p *plan) upgrade(names namer) {
	for _, n := range p.g.Nodes {
		if !p.upgradable(n) {
			continue
		}
		switch n.OpType {
		case "Squeeze", "Unsqueeze":
			a := n.Attr("axes")
			raw := make([]byte, 8*len(a.Ints))
			for i, v := range a.Ints {
				binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
			}
			name := names.make(nodeName(p.g, n) + "_axes")
			p.g.SetInitializer(&onnx.Tensor{Name: name, Type: onnx.Int64, Dims: []int64{int64(len(a.Ints))}, RawData: raw})
			n.Attrs = slices.DeleteFunc(n.Attrs, func(x *onnx.Attribute) bool { return x.Name == "axes" })
			n.Inputs = append(n.Inputs, name)
		case "Softmax", "LogSoftmax":
			n.Attrs = slices.DeleteFunc(n.Attrs, func(x *onnx.Attribute) bool { return x.Name == "axis" })
			n.Attrs = append(n.Attrs, onnx.IntAttr("axis", 1))
		}
	}
}
