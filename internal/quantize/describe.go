package quantize

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"petbreed/internal/onnx"
)

// Summary says whether and how a model is quantized, from its graph and
// metadata alone (what inspect shows).
type Summary struct {
	// Form is "qdq" (QuantizeLinear/DequantizeLinear pairs, fused by the
	// runtime), "operator" (QLinearConv, ConvInteger, ...: int8 operators in
	// the graph), "weights" (only DequantizeLinear of constant weights) or
	// "" when the model is not quantized.
	Form string `json:"form"`
	// Ops counts the quantization operators by type.
	Ops map[string]int `json:"ops"`
	// Weights is the element types of the quantized constants ("int8", "uint8").
	Weights []string `json:"weights,omitempty"`
	// PerChannel is whether some DequantizeLinear has a scale per channel.
	PerChannel bool `json:"per_channel"`
	// Petbreed is the petbreed.quantization metadata, when this package made it.
	Petbreed *Info `json:"petbreed,omitempty"`
}

// Describe summarises a model's quantization; ok is false when it has none.
func Describe(m *onnx.Model) (s Summary, ok bool) {
	s.Ops = map[string]int{}
	if m.Graph == nil {
		return s, false
	}
	g := m.Graph
	types := map[string]bool{}
	q := 0
	for _, n := range g.Nodes {
		switch {
		case n.OpType == "QuantizeLinear":
			s.Ops[n.OpType]++
		case n.OpType == "DequantizeLinear":
			s.Ops[n.OpType]++
			if t := g.Initializer(n.Inputs[0]); t != nil {
				types[t.Type.String()] = true
			}
			if len(n.Inputs) > 1 {
				if sc := g.Initializer(n.Inputs[1]); sc != nil && len(sc.Dims) == 1 && sc.Dims[0] > 1 {
					s.PerChannel = true
				}
			}
		case strings.HasPrefix(n.OpType, "QLinear") || n.OpType == "ConvInteger" || n.OpType == "MatMulInteger" ||
			n.OpType == "QGemm" || n.OpType == "DynamicQuantizeLinear" || n.OpType == "MatMulIntegerToFloat":
			s.Ops[n.OpType]++
			q++
			for _, in := range n.Inputs {
				t := g.Initializer(in)
				switch {
				case t == nil:
				case (t.Type == onnx.Int8 || t.Type == onnx.Uint8) && len(t.Dims) > 1:
					types[t.Type.String()] = true
				case t.Type == onnx.Float && len(t.Dims) == 1 && t.Dims[0] > 1:
					s.PerChannel = true // a scale per channel
				}
			}
		}
	}
	for t := range types {
		if t == "int8" || t == "uint8" {
			s.Weights = append(s.Weights, t)
		}
	}
	sort.Strings(s.Weights)
	switch {
	case q > 0:
		s.Form = "operator"
	case s.Ops["QuantizeLinear"] > 0:
		s.Form = "qdq"
	case s.Ops["DequantizeLinear"] > 0 && len(s.Weights) > 0:
		s.Form = "weights"
	}
	for _, p := range m.Metadata {
		if p.Key == MetaQuantization {
			var i Info
			if json.Unmarshal([]byte(p.Value), &i) == nil {
				s.Petbreed = &i
			}
		}
	}
	return s, s.Form != ""
}

// String is the summary on one line.
func (s Summary) String() string {
	if s.Form == "" {
		return "no (float)"
	}
	ops := make([]string, 0, len(s.Ops))
	for k, v := range s.Ops {
		ops = append(ops, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(ops)
	gran := "per-tensor"
	if s.PerChannel {
		gran = "per-channel"
	}
	out := fmt.Sprintf("%s, %s weights %s (%s)", s.Form, strings.Join(s.Weights, "+"), gran, strings.Join(ops, ", "))
	if p := s.Petbreed; p != nil {
		out += fmt.Sprintf("; petbreed: %s on %d images (digest %.12s), reduce_range %v", p.Method, p.Images, p.ImagesDigest, p.ReduceRange)
	}
	return out
}
