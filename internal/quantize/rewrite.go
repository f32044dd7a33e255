package quantize

import (
	"fmt"
	"math"
	"slices"

	"petbreed/internal/onnx"
)

// Params are an activation's uint8 quantization: real = (q - ZeroPoint) × Scale.
type Params struct {
	Scale     float32
	ZeroPoint uint8
}

// ActivationParams maps the range [lo, hi] to uint8: the range is widened
// to hold 0 (so that zero padding and ReLU's zero are exact), scale =
// (hi-lo)/255 and the zero point is -lo/scale rounded. An empty range
// (a constant zero tensor) gets scale 1.
func ActivationParams(lo, hi float32) Params {
	lo, hi = min(lo, 0), max(hi, 0)
	if !(hi > lo) || math.IsInf(float64(hi-lo), 0) {
		return Params{Scale: 1}
	}
	s := (hi - lo) / 255
	zp := math.Round(float64(-lo / s))
	return Params{Scale: s, ZeroPoint: uint8(max(0, min(255, zp)))}
}

// weightRange is the symmetric int8 range of a weight: ±127, or ±64 with
// reduced range (so that a pair of uint8 × int8 products fits int16, which
// the AVX2 kernels without VNNI accumulate in).
func weightRange(reduce bool) float64 {
	if reduce {
		return 64
	}
	return 127
}

// quantizeWeight quantizes w symmetrically, per channel along axis (of dims)
// or per tensor (axis < 0). It returns the values and one scale per channel.
func quantizeWeight(w []float32, dims []int64, axis int, qmax float64) ([]int8, []float32) {
	channels, inner := 1, len(w)
	if axis >= 0 {
		channels = int(dims[axis])
		inner = 1
		for _, d := range dims[axis+1:] {
			inner *= int(d)
		}
	}
	outer := len(w) / (channels * inner)
	absmax := make([]float64, channels)
	for o := 0; o < outer; o++ {
		for c := 0; c < channels; c++ {
			for _, v := range w[(o*channels+c)*inner : (o*channels+c+1)*inner] {
				absmax[c] = max(absmax[c], math.Abs(float64(v)))
			}
		}
	}
	scales := make([]float32, channels)
	for c, a := range absmax {
		scales[c] = float32(a / qmax)
		if scales[c] == 0 {
			scales[c] = 1
		}
	}
	q := make([]int8, len(w))
	for o := 0; o < outer; o++ {
		for c := 0; c < channels; c++ {
			base := (o*channels + c) * inner
			for i, v := range w[base : base+inner] {
				q[base+i] = int8(max(-qmax, min(qmax, math.Round(float64(v)/float64(scales[c])))))
			}
		}
	}
	return q, scales
}

// quantizeBias quantizes a bias to int32 with scale inScale × wScale[c].
func quantizeBias(b []float32, inScale float32, wScales []float32) ([]int32, []float32) {
	q := make([]int32, len(b))
	scales := make([]float32, len(wScales))
	for c, s := range wScales {
		scales[c] = inScale * s
	}
	for i, v := range b {
		s := scales[0]
		if len(scales) > 1 {
			s = scales[i]
		}
		q[i] = int32(max(math.MinInt32, min(math.MaxInt32, math.Round(float64(v)/float64(s)))))
	}
	return q, scales
}

// namer makes names unique among the graph's values and nodes.
type namer map[string]bool

func (n namer) make(base string) string {
	s := base
	for i := 1; n[s]; i++ {
		s = fmt.Sprintf("%s_%d", base, i)
	}
	n[s] = true
	return s
}

// apply rewrites the planned graph with the activations' parameters.
func (p *plan) apply(params map[string]Params, opt Options) error {
	g := p.g
	names := namer{}
	for _, n := range g.Nodes {
		names[n.Name] = true
		for _, s := range append(slices.Clone(n.Inputs), n.Outputs...) {
			names[s] = true
		}
	}
	for _, t := range g.Initializers {
		names[t.Name] = true
	}
	for _, list := range [][]*onnx.Value{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range list {
			names[v.Name] = true
		}
	}
	paramsOf := func(t string) (Params, error) {
		if r, ok := p.shared[t]; ok {
			t = r
		}
		pr, ok := params[t]
		if !ok {
			return Params{}, fmt.Errorf("quantize: no range for the activation %q", t)
		}
		return pr, nil
	}

	// Scale and zero-point initializers, one pair per parameter root.
	type qp struct{ scale, zp string }
	qps := map[string]qp{}
	qpOf := func(t string) (qp, error) {
		root := t
		if r, ok := p.shared[t]; ok {
			root = r
		}
		if v, ok := qps[root]; ok {
			return v, nil
		}
		pr, err := paramsOf(root)
		if err != nil {
			return qp{}, err
		}
		v := qp{names.make(root + "_scale"), names.make(root + "_zero_point")}
		g.SetInitializer(onnx.FloatTensor(v.scale, nil, []float32{pr.Scale}))
		g.SetInitializer(onnx.Uint8Tensor(v.zp, nil, []uint8{pr.ZeroPoint}))
		qps[root] = v
		return v, nil
	}

	// Weights and biases: DequantizeLinear nodes placed before their node.
	before := map[*onnx.Node][]*onnx.Node{}
	floatUsers := map[string]int{} // remaining float readers of an initializer
	for name, us := range p.users {
		if p.inits[name] != nil {
			floatUsers[name] = len(us)
		}
	}
	var drop []string
	for _, n := range p.compute {
		if n.OpType == "Add" || n.OpType == "GlobalAveragePool" || n.OpType == "AveragePool" {
			continue
		}
		in, err := paramsOf(n.Inputs[0])
		if err != nil {
			return err
		}
		wName := n.Inputs[1]
		w := p.inits[wName]
		wv, err := w.Float32s()
		if err != nil {
			return fmt.Errorf("quantize: weight %q: %w", wName, err)
		}
		axis := 0
		switch {
		case n.OpType == "Gemm" && attrInt(n, "transB", 0) == 0, n.OpType == "MatMul":
			axis = 1
		}
		if opt.PerTensor {
			axis = -1
		}
		// Depthwise convolutions run in int32 sums in ONNX Runtime and
		// cannot saturate: they keep the full range.
		depthwise := n.OpType == "Conv" && attrInt(n, "group", 1) > 1 && len(w.Dims) > 1 && w.Dims[1] == 1
		q, scales := quantizeWeight(wv, w.Dims, axis, weightRange(!opt.FullRange && !depthwise))
		dims := []int64{int64(len(scales))}
		if axis < 0 {
			dims = nil
		}
		base := names.make(wName + "_quantized")
		sc, zpName, out := names.make(wName+"_scale"), names.make(wName+"_zero_point"), names.make(wName+"_dequantized")
		g.SetInitializer(onnx.FloatTensor(sc, dims, scales))
		if opt.Uint8Weights {
			u, zps := make([]uint8, len(q)), make([]uint8, len(scales))
			for i, v := range q {
				u[i] = uint8(int(v) + 128)
			}
			for i := range zps {
				zps[i] = 128
			}
			g.SetInitializer(onnx.Uint8Tensor(base, w.Dims, u))
			g.SetInitializer(onnx.Uint8Tensor(zpName, dims, zps))
		} else {
			g.SetInitializer(onnx.Int8Tensor(base, w.Dims, q))
			g.SetInitializer(onnx.Int8Tensor(zpName, dims, make([]int8, len(scales))))
		}
		var attrs []*onnx.Attribute
		if axis >= 0 {
			attrs = append(attrs, onnx.IntAttr("axis", int64(axis)))
		}
		before[n] = append(before[n], onnx.NewNode(names.make(wName+"_DequantizeLinear"), "DequantizeLinear",
			[]string{base, sc, zpName}, []string{out}, attrs...))
		n.Inputs[1] = out
		if floatUsers[wName]--; floatUsers[wName] == 0 {
			drop = append(drop, wName)
		}

		// The bias, when it is a float vector with one value per channel.
		if len(n.Inputs) < 3 || n.Inputs[2] == "" || n.OpType == "MatMul" {
			continue
		}
		bName := n.Inputs[2]
		b := p.inits[bName]
		if b == nil || b.Type != onnx.Float || len(b.Dims) != 1 {
			continue
		}
		if n.OpType == "Gemm" && (attrFloat(n, "alpha", 1) != 1 || attrFloat(n, "beta", 1) != 1) {
			continue
		}
		bv, err := b.Float32s()
		if err != nil {
			return fmt.Errorf("quantize: bias %q: %w", bName, err)
		}
		if len(scales) > 1 && len(bv) != len(scales) {
			continue
		}
		bq, bs := quantizeBias(bv, in.Scale, scales)
		bBase := names.make(bName + "_quantized")
		bsc, bzp, bout := names.make(bName+"_scale"), names.make(bName+"_zero_point"), names.make(bName+"_dequantized")
		g.SetInitializer(onnx.Int32Tensor(bBase, b.Dims, bq))
		g.SetInitializer(onnx.FloatTensor(bsc, dims, bs))
		g.SetInitializer(onnx.Int32Tensor(bzp, dims, make([]int32, len(bs))))
		before[n] = append(before[n], onnx.NewNode(names.make(bName+"_DequantizeLinear"), "DequantizeLinear",
			[]string{bBase, bsc, bzp}, []string{bout}, attrs...))
		n.Inputs[2] = bout
		if floatUsers[bName]--; floatUsers[bName] == 0 {
			drop = append(drop, bName)
		}
	}

	// Folded activations: the producer writes the activation's output.
	for act, n := range p.folded {
		n.Outputs[0] = act.Outputs[0]
	}

	// Activations: QuantizeLinear then DequantizeLinear after the
	// producer; the DequantizeLinear writes the old name, so no reader
	// changes. A graph input is read through a new name instead.
	after := map[*onnx.Node][]*onnx.Node{}
	var head []*onnx.Node
	producer := map[string]*onnx.Node{}
	for _, n := range g.Nodes {
		if _, gone := p.folded[n]; gone {
			continue
		}
		for _, o := range n.Outputs {
			producer[o] = n
		}
	}
	for _, t := range p.quantized {
		v, err := qpOf(t)
		if err != nil {
			return err
		}
		qName, dqName := names.make(t+"_QuantizeLinear"), names.make(t+"_DequantizeLinear")
		quant := names.make(t + "_quantized")
		if n := producer[t]; n != nil {
			pre := names.make(t + "_prequantized")
			n.Outputs[slices.Index(n.Outputs, t)] = pre
			after[n] = append(after[n],
				onnx.NewNode(qName, "QuantizeLinear", []string{pre, v.scale, v.zp}, []string{quant}),
				onnx.NewNode(dqName, "DequantizeLinear", []string{quant, v.scale, v.zp}, []string{t}))
			continue
		}
		if !p.inputs[t] {
			return fmt.Errorf("quantize: the activation %q has no producer", t)
		}
		deq := names.make(t + "_dequantized")
		for _, n := range g.Nodes {
			for i, s := range n.Inputs {
				if s == t {
					n.Inputs[i] = deq
				}
			}
		}
		head = append(head,
			onnx.NewNode(qName, "QuantizeLinear", []string{t, v.scale, v.zp}, []string{quant}),
			onnx.NewNode(dqName, "DequantizeLinear", []string{quant, v.scale, v.zp}, []string{deq}))
	}

	// The new node list; every node re-encoded from its fields.
	nodes := slices.Clone(head)
	for _, n := range g.Nodes {
		if _, gone := p.folded[n]; gone {
			continue
		}
		nodes = append(nodes, before[n]...)
		nodes = append(nodes, n)
		nodes = append(nodes, after[n]...)
	}
	g.Nodes = g.Nodes[:0]
	for i, n := range nodes {
		g.InsertNode(i, n)
	}
	// Initializers no float node reads any more, and the clips' bounds.
	for act := range p.folded {
		for _, s := range act.Inputs[1:] {
			if s != "" && p.inits[s] != nil {
				if floatUsers[s]--; floatUsers[s] == 0 {
					drop = append(drop, s)
				}
			}
		}
	}
	g.RemoveInitializers(func(t *onnx.Tensor) bool { return slices.Contains(drop, t.Name) })
	g.Inputs = slices.DeleteFunc(g.Inputs, func(v *onnx.Value) bool { return slices.Contains(drop, v.Name) })
	g.ValueInfo = slices.DeleteFunc(g.ValueInfo, func(v *onnx.Value) bool { return slices.Contains(drop, v.Name) })
	if p.raise {
		p.upgrade(names)
		for i, o := range p.m.Opsets {
			if o.Domain == "" || o.Domain == onnx.DefaultDomain {
				p.m.Opsets[i] = &onnx.Opset{Domain: o.Domain, Version: 13}
			}
		}
	}
	return nil
}
