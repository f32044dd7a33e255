package onnx

import (
	"errors"
	"fmt"
	"math"
)

// Features says where a classifier model's pooled features are: the input of
// its final linear layer, which a new head replaces.
type Features struct {
	// Tensor is the name of the value holding the features: the data input
	// of the classifier (for the int8 MobileNetV2, the uint8 472_quantized).
	Tensor string
	// Dim is the feature size (1280 for MobileNetV2), read from the
	// classifier weight's shape.
	Dim int
	// Quantized is true when Tensor is uint8 or int8 and must be
	// dequantized: x = float32(q - ZeroPointValue) * ScaleValue, as ONNX's
	// DequantizeLinear does.
	Quantized bool
	// Scale and ZeroPoint name the initializers of Tensor's quantization
	// parameters (quantized only), ScaleValue and ZeroPointValue hold their
	// values.
	Scale, ZeroPoint string
	ScaleValue       float32
	ZeroPointValue   int32
	// Classifier names the nodes from Tensor to the graph output, in that
	// order (a node with no name is "#i", i its index in the graph). They are
	// what Export and FeatureModel drop.
	Classifier []string
	// Input and InputShape describe the model's (image) input.
	Input      string
	InputShape []Dim
}

// ErrNoClassifier is wrapped by the error of FindFeatures for a model whose
// output is not computed by a linear classifier.
var ErrNoClassifier = errors.New("the model does not end in a linear classifier")

// FindFeatures locates the pooled features of an image classifier: the data
// input of the linear layer computing its single output. It walks back from
// the output through an optional Softmax (or LogSoftmax), then
//
//   - DequantizeLinear ← QLinearAdd ← QLinearMatMul (a model quantized by
//     ONNX Runtime; the QLinearAdd of the bias may be absent),
//   - Gemm (with transA = 0), or
//   - Add ← MatMul (or a MatMul alone),
//
// whose weight must be a constant matrix (an initializer, a Constant, or the
// DequantizeLinear of one). The model must have one input and one output.
func FindFeatures(model []byte) (Features, error) {
	var f Features
	m, g, err := modelGraphOf(model)
	if err != nil {
		return f, err
	}
	info, err := m.Info()
	if err != nil {
		return f, fmt.Errorf("onnx: %w", err)
	}
	if len(info.Inputs) != 1 {
		return f, fmt.Errorf("onnx: the model has %d inputs, want one (the image)", len(info.Inputs))
	}
	f.Input, f.InputShape = info.Inputs[0].Name, info.Inputs[0].Shape
	if len(info.Outputs) != 1 {
		return f, fmt.Errorf("onnx: %w: it has %d outputs, want one", ErrNoClassifier, len(info.Outputs))
	}
	notLinear := func(format string, a ...any) error {
		return fmt.Errorf("onnx: %w: %s", ErrNoClassifier, fmt.Sprintf(format, a...))
	}
	out := info.Outputs[0].Name
	n := g.producer[out]
	if n == nil {
		return f, notLinear("the output %q is not computed by a node", out)
	}
	var chain []*Node // from the output back
	if n.is("Softmax") || n.is("LogSoftmax") {
		chain = append(chain, n)
		if n = g.producer[n.input(0)]; n == nil {
			return f, notLinear("the input of %s is not computed by a node", g.describe(chain[0]))
		}
	}
	matrix := func(n *Node, i int) ([]int64, error) {
		s, ok := g.constShape(n.input(i))
		if !ok || len(s) != 2 || s[0] <= 0 || s[1] <= 0 || s[0] > math.MaxInt32 || s[1] > math.MaxInt32 {
			return nil, notLinear("the weight %q of %s is not a constant matrix", n.input(i), g.describe(n))
		}
		return s, nil
	}
	// fromMatMul finds, among two inputs of an addition, the one computed by
	// op while the other is a constant (the bias).
	fromMatMul := func(a, b, op string) *Node {
		switch {
		case g.producer[a].is(op) && g.isConst(b):
			return g.producer[a]
		case g.producer[b].is(op) && g.isConst(a):
			return g.producer[b]
		}
		return nil
	}

	switch {
	case n.is("DequantizeLinear"):
		chain = append(chain, n)
		dq := n
		n = g.producer[n.input(0)]
		if n != nil && n.OpType == "QLinearAdd" && n.Domain == "com.microsoft" && len(n.Inputs) >= 8 {
			chain = append(chain, n)
			add := n
			if n = fromMatMul(n.input(0), n.input(3), "QLinearMatMul"); n == nil {
				return f, notLinear("%s does not add a constant to a QLinearMatMul", g.describe(add))
			}
		}
		if !n.is("QLinearMatMul") || len(n.Inputs) != 8 {
			return f, notLinear("%s does not dequantize a QLinearMatMul's result", g.describe(dq))
		}
		chain = append(chain, n)
		s, err := matrix(n, 3)
		if err != nil {
			return f, err
		}
		f.Tensor, f.Dim = n.input(0), int(s[0])
		f.Quantized, f.Scale, f.ZeroPoint = true, n.input(1), n.input(2)
	case n.is("Gemm"):
		chain = append(chain, n)
		if n.attrInt("transA") != 0 {
			return f, notLinear("%s transposes its data input", g.describe(n))
		}
		s, err := matrix(n, 1)
		if err != nil {
			return f, err
		}
		f.Tensor, f.Dim = n.input(0), int(s[0])
		if n.attrInt("transB") != 0 {
			f.Dim = int(s[1])
		}
	case n.is("Add"), n.is("MatMul"):
		if n.is("Add") {
			chain = append(chain, n)
			add := n
			if n = fromMatMul(n.input(0), n.input(1), "MatMul"); n == nil {
				return f, notLinear("%s does not add a constant to a MatMul", g.describe(add))
			}
		}
		chain = append(chain, n)
		s, err := matrix(n, 1)
		if err != nil {
			return f, err
		}
		f.Tensor, f.Dim = n.input(0), int(s[0])
	default:
		return f, notLinear("the output %q is computed by %s", out, g.describe(n))
	}
	if f.Tensor == "" {
		return f, notLinear("%s has no data input", g.describe(chain[len(chain)-1]))
	}

	if f.Quantized {
		if f.ScaleValue, f.ZeroPointValue, err = g.quantParams(f.Scale, f.ZeroPoint); err != nil {
			return f, fmt.Errorf("onnx: features %q: %w", f.Tensor, err)
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		f.Classifier = append(f.Classifier, g.id(chain[i]))
	}
	return f, nil
}

// modelGraphOf decodes and indexes the graph of a serialized model.
func modelGraphOf(model []byte) (*Model, *graph, error) {
	m, err := Decode(model)
	if err != nil {
		return nil, nil, fmt.Errorf("onnx: %w", err)
	}
	if m.Graph == nil {
		return nil, nil, fmt.Errorf("onnx: %w: no graph", ErrNotONNX)
	}
	return m, indexGraph(m.Graph), nil
}

// quantParams reads the per-tensor scale (float32) and zero point (uint8 or
// int8) initializers of a quantized tensor.
func (g *graph) quantParams(scale, zeroPoint string) (float32, int32, error) {
	st, ok := g.inits[scale]
	if !ok {
		return 0, 0, fmt.Errorf("scale %q is not an initializer", scale)
	}
	zt, ok := g.inits[zeroPoint]
	if !ok {
		return 0, 0, fmt.Errorf("zero point %q is not an initializer", zeroPoint)
	}
	sv, err := st.Float32s()
	if err != nil {
		return 0, 0, err
	}
	if len(sv) != 1 || math.IsNaN(float64(sv[0])) || math.IsInf(float64(sv[0]), 0) {
		return 0, 0, fmt.Errorf("scale %q is %v, want one finite value (per-tensor quantization)", scale, sv)
	}
	if zt.Type != Uint8 && zt.Type != Int8 {
		return 0, 0, fmt.Errorf("zero point %q is %s, want uint8 or int8", zeroPoint, zt.Type)
	}
	zv, err := zt.Int64s()
	if err != nil {
		return 0, 0, err
	}
	if len(zv) != 1 {
		return 0, 0, fmt.Errorf("zero point %q has %d values, want one (per-tensor quantization)", zeroPoint, len(zv))
	}
	return sv[0], int32(zv[0]), nil
}

// elemType returns the element type of the features: the zero point's type
// when quantized, float32 otherwise.
func (g *graph) elemType(f Features) DataType {
	if t := g.inits[f.ZeroPoint]; f.Quantized && t != nil {
		return t.Type
	}
	return Float
}

// prepare checks that f describes the model's graph g and returns the nodes
// that compute the features.
func (g *graph) prepare(info *ModelInfo, f Features) (map[*Node]bool, error) {
	inputOK := false
	for _, in := range info.Inputs {
		inputOK = inputOK || in.Name == f.Input
	}
	switch {
	case f.Tensor == "":
		return nil, errors.New("onnx: features: no tensor")
	case g.producer[f.Tensor] == nil && !(g.inputs[f.Tensor] && g.inits[f.Tensor] == nil):
		return nil, fmt.Errorf("onnx: features: no node computes %q: %w", f.Tensor, ErrNotFound)
	case !inputOK:
		return nil, fmt.Errorf("onnx: features: the model has no input %q: %w", f.Input, ErrNotFound)
	case f.Dim <= 0:
		return nil, fmt.Errorf("onnx: features: dim %d", f.Dim)
	}
	if f.Quantized {
		if _, _, err := g.quantParams(f.Scale, f.ZeroPoint); err != nil {
			return nil, fmt.Errorf("onnx: features %q: %w", f.Tensor, err)
		}
	}
	keep := g.ancestors(f.Tensor)
	if len(f.Classifier) > 0 {
		ids := map[string]*Node{}
		for _, n := range g.nodes {
			if _, dup := ids[g.id(n)]; !dup {
				ids[g.id(n)] = n
			}
		}
		for _, id := range f.Classifier {
			n, ok := ids[id]
			if !ok {
				return nil, fmt.Errorf("onnx: features: classifier node %q is not in the model: %w", id, ErrNotFound)
			}
			if keep[n] {
				return nil, fmt.Errorf("onnx: features: classifier node %q is needed to compute %q", id, f.Tensor)
			}
		}
	}
	return keep, nil
}

// batchDim is the first dimension of shape when it is symbolic or fixed,
// else a symbolic "batch".
func batchDim(shape []Dim) Dim {
	if len(shape) > 0 && (shape[0].Param != "" || shape[0].Value > 0) {
		return shape[0]
	}
	return Dim{Value: -1, Param: "batch"}
}

// Names of what Export adds to the graph. The intermediate ones get a suffix
// if the backbone already uses them.
const (
	ExportFeatures      = "features"
	ExportLogits        = "logits"
	ExportProbabilities = "probabilities"
	ExportWeight        = "head_weight"
	ExportBias          = "head_bias"
)

// Export builds a self-contained classifier: the backbone's graph without
// its classifier (the nodes after f.Tensor, and the initializers only they
// read), followed by a new linear head and a softmax:
//
//	features      = DequantizeLinear(f.Tensor, f.Scale, f.ZeroPoint)  (quantized only)
//	logits        = Gemm(features, head_weight, head_bias, transB=1)
//	probabilities = Softmax(logits, axis=1)
//
// w holds the head's weight, classes x f.Dim in row-major order (w[c*Dim+d]),
// and b its bias. The graph's only output is "probabilities", float32
// [batch, classes], batch being the input's first dimension. The input,
// the opset imports, the IR version and the rest of the graph are kept as
// they are; producer_name becomes "petbreed" (producer_version is dropped)
// and meta is merged into metadata_props (replacing the values of keys that
// exist). The new initializers are float32 raw_data.
func Export(backbone []byte, f Features, w, b []float32, classes int, meta map[string]string) ([]byte, error) {
	return ExportWith(backbone, f, w, b, classes, meta, ExportOptions{})
}

// ExportWith is Export with the options of export_pet.go and export_tta.go:
// a second output, the backbone's own probability of a cat or a dog, and
// test-time augmentation averaged inside the graph.
func ExportWith(backbone []byte, f Features, w, b []float32, classes int, meta map[string]string, opt ExportOptions) ([]byte, error) {
	switch {
	case classes <= 0:
		return nil, fmt.Errorf("onnx: export: %d classes", classes)
	case f.Dim <= 0:
		return nil, fmt.Errorf("onnx: export: feature dim %d", f.Dim)
	case len(w) != classes*f.Dim:
		return nil, fmt.Errorf("onnx: export: the head weight has %d values, want %d classes x %d features = %d",
			len(w), classes, f.Dim, classes*f.Dim)
	case len(b) != classes:
		return nil, fmt.Errorf("onnx: export: the head bias has %d values, want %d (one per class)", len(b), classes)
	}
	for i, v := range w {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("onnx: export: head weight [%d][%d] is %v", i/f.Dim, i%f.Dim, v)
		}
	}
	for i, v := range b {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("onnx: export: head bias [%d] is %v", i, v)
		}
	}
	if err := checkMeta(meta); err != nil {
		return nil, err
	}
	m, g, err := modelGraphOf(backbone)
	if err != nil {
		return nil, fmt.Errorf("onnx: export: %w", err)
	}
	if err := replaceHead(m, g, f, w, b, classes, opt); err != nil {
		return nil, err
	}
	m.ProducerName = "petbreed"
	m.ProducerVersion = ""
	m.layout.drop(modelProducerVersion)
	m.SetMetadata(meta)
	return m.Encode(), nil
}

// replaceHead is the graph rewrite of Export: it cuts the classifier off
// the graph g of m and appends the new head and softmax.
func replaceHead(m *Model, g *graph, f Features, w, b []float32, classes int, opt ExportOptions) error {
	info, err := m.Info()
	if err != nil {
		return fmt.Errorf("onnx: export: %w", err)
	}
	// DequantizeLinear appeared in opset 10; Gemm broadcasts its bias since
	// opset 7. Softmax(axis=1) of a 2-D input is the same at every opset.
	need := int64(7)
	if f.Quantized {
		need = 10
	}
	if v, ok := info.Opset(""); !ok || v < need {
		return fmt.Errorf("onnx: export: the backbone imports opset %d of %s, want %d or later", v, DefaultDomain, need)
	}
	keep, err := g.prepare(info, f)
	if err != nil {
		return err
	}
	var imagenet string // the backbone's own output, kept for the pet score
	if opt.PetScore {
		if imagenet, err = g.imagenetOutput(info); err != nil {
			return err
		}
		for n := range g.ancestors(imagenet) {
			keep[n] = true
		}
	}
	opset, _ := info.Opset("")
	if len(opt.TTA) > 0 {
		var h, w int64
		if len(f.InputShape) == 4 {
			h, w = f.InputShape[2].Value, f.InputShape[3].Value
		}
		if err := checkViews(opt.TTA, h, w); err != nil {
			return err
		}
		if err := g.checkViewGraph(opset, f.Input, opt.TTA); err != nil {
			return err
		}
	}

	// The names the new graph already uses.
	taken := map[string]bool{}
	nodeNames := map[string]bool{}
	for n := range keep {
		nodeNames[n.Name] = true
		for _, s := range n.reads() {
			taken[s] = true
		}
		for _, s := range n.Outputs {
			taken[s] = true
		}
	}
	for _, in := range info.Inputs {
		taken[in.Name] = true
	}
	taken[f.Tensor], taken[f.Scale], taken[f.ZeroPoint] = true, true, true
	if taken[ExportProbabilities] {
		return fmt.Errorf("onnx: export: the backbone already has a value named %q", ExportProbabilities)
	}
	taken[ExportProbabilities] = true
	if opt.PetScore {
		if taken[ExportPetScore] {
			return fmt.Errorf("onnx: export: the backbone already has a value named %q", ExportPetScore)
		}
		taken[ExportPetScore] = true
	}
	unique := func(set map[string]bool, base string) string {
		s := base
		for i := 1; set[s]; i++ {
			s = fmt.Sprintf("%s_%d", base, i)
		}
		set[s] = true
		return s
	}

	var uses []string
	if f.Quantized {
		uses = []string{f.Scale, f.ZeroPoint}
	}
	g.cut(keep, uses, nil)
	gr := g.g
	features := f.Tensor
	if f.Quantized {
		features = unique(taken, ExportFeatures)
		gr.InsertNode(len(gr.Nodes), NewNode(unique(nodeNames, "petbreed_dequantize"), "DequantizeLinear",
			[]string{f.Tensor, f.Scale, f.ZeroPoint}, []string{features}))
	}
	wName, bName := unique(taken, ExportWeight), unique(taken, ExportBias)
	logits := unique(taken, ExportLogits)
	gr.InsertNode(len(gr.Nodes), NewNode(unique(nodeNames, "petbreed_head"), "Gemm",
		[]string{features, wName, bName}, []string{logits}, IntAttr("transB", 1)))
	value := func(base string) string { return unique(taken, base) }
	node := func(base string) string { return unique(nodeNames, base) }
	init := func(t *Tensor) { // initializers must also be graph inputs before IR 4
		gr.SetInitializer(t)
		if info.IRVersion < 4 {
			gr.Inputs = append(gr.Inputs, TensorValue(t.Name, t.Type, dimsOf(t.Dims)))
		}
	}
	probs, pet := ExportProbabilities, ExportPetScore
	if len(opt.TTA) > 0 { // one row per view and image, averaged below
		probs, pet = unique(taken, "view_"+ExportProbabilities), unique(taken, "view_"+ExportPetScore)
	}
	gr.InsertNode(len(gr.Nodes), NewNode(unique(nodeNames, "petbreed_softmax"), "Softmax",
		[]string{logits}, []string{probs}, IntAttr("axis", 1)))
	if opt.PetScore {
		addPetScore(gr, imagenet, pet, value, node, init)
	}
	if len(opt.TTA) > 0 {
		views := viewRewrite{opset: opset, input: f.Input, views: opt.TTA, classes: classes,
			value: value, node: node, init: init}
		views.average(gr, probs, ExportProbabilities, true)
		if opt.PetScore {
			views.average(gr, pet, ExportPetScore, false)
		}
		views.stack(gr)
	}
	wDims, bDims := []int64{int64(classes), int64(f.Dim)}, []int64{int64(classes)}
	gr.SetInitializer(FloatTensor(wName, wDims, w))
	gr.SetInitializer(FloatTensor(bName, bDims, b))
	if info.IRVersion < 4 { // initializers must also be graph inputs
		gr.Inputs = append(gr.Inputs,
			TensorValue(wName, Float, []Dim{{Value: wDims[0]}, {Value: wDims[1]}}),
			TensorValue(bName, Float, []Dim{{Value: bDims[0]}}))
	}
	gr.AddOutput(TensorValue(ExportProbabilities, Float, []Dim{batchDim(f.InputShape), {Value: int64(classes)}}))
	if opt.PetScore {
		gr.AddOutput(TensorValue(ExportPetScore, Float, []Dim{batchDim(f.InputShape)}))
	}
	return nil
}

// FeatureModel returns a copy of the model whose only output is the features
// f.Tensor (of its own element type: uint8 or int8 when f.Quantized), with
// only the nodes and initializers that compute them: what a feature
// extractor loads into ONNX Runtime, dequantizing the output itself with
// f.ScaleValue and f.ZeroPointValue. The output is declared [batch, f.Dim]
// unless the model's value_info gives it a type.
func FeatureModel(model []byte, f Features) ([]byte, error) {
	m, g, err := modelGraphOf(model)
	if err != nil {
		return nil, err
	}
	info, err := m.Info()
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	keep, err := g.prepare(info, f)
	if err != nil {
		return nil, err
	}
	typ := g.types[f.Tensor]
	if typ == nil {
		typ = encodeTensorType(g.elemType(f), []Dim{batchDim(f.InputShape), {Value: int64(f.Dim)}})
	}
	g.cut(keep, nil, []string{f.Tensor})
	g.g.AddOutput(NewValue(f.Tensor, typ))
	return m.Encode(), nil
}

// SetMetadata returns a copy of the model with the keys of kv set in its
// metadata_props: an existing key keeps its place and takes the new value
// (repeats of it are dropped), new keys come last, sorted. The rest of the
// model is copied byte for byte.
func SetMetadata(model []byte, kv map[string]string) ([]byte, error) {
	if err := checkMeta(kv); err != nil {
		return nil, err
	}
	m, err := Decode(model)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	if _, err := m.Info(); err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	m.SetMetadata(kv)
	return m.Encode(), nil
}

func checkMeta(kv map[string]string) error {
	if _, ok := kv[""]; ok {
		return errors.New("onnx: metadata: empty key")
	}
	return nil
}

func encodeEntry(k, v string) []byte {
	return appendStringField(appendStringField(nil, entryKey, k), entryValue, v)
}
