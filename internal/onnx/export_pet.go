package onnx

import (
	"fmt"
	"slices"
)

// ExportOptions are what ExportWith adds to the exported classifier.
type ExportOptions struct {
	// PetScore adds a second output, ExportPetScore (float32 [batch]): the
	// backbone's own softmax probability mass on ImageNet's domestic dogs and
	// cats (PetClasses), from the same forward pass as the breed answer. The
	// backbone must end in its 1000-class ImageNet classifier.
	PetScore bool
	// TTA are the views, besides the image itself, averaged inside the
	// graph (test-time augmentation, export_tta.go).
	TTA []TTAView
}

// ExportPetScore names the pet score output of ExportWith.
const ExportPetScore = "pet_score"

// ImageNetClasses is the class count of the backbones the pet score reads.
const ImageNetClasses = 1000

// ClassRange is a run of ImageNet classes, First to Last inclusive, in the
// backbone's output order (line First+1 of imagenet_labels.txt is class
// First). FirstLabel and LastLabel are those lines, so that a test can
// check the ranges against the labels file.
type ClassRange struct {
	Name                  string
	First, Last           int
	FirstLabel, LastLabel string
}

// PetClasses returns ImageNet's domestic dogs and cats: the 118 dog breeds
// (Chihuahua to Mexican hairless) and the five domestic cats (tabby to
// Egyptian cat). The wild canids after the dogs (wolves, dingo, foxes) and
// the big cats after the cats (cougar to cheetah) are not in them.
func PetClasses() []ClassRange {
	return []ClassRange{
		{Name: "dogs", First: 151, Last: 268, FirstLabel: "Chihuahua", LastLabel: "Mexican hairless"},
		{Name: "cats", First: 281, Last: 285, FirstLabel: "tabby, tabby cat", LastLabel: "Egyptian cat"},
	}
}

// PetMask is 1 for the classes of PetClasses and 0 for the others, over
// ImageNet's 1000 classes: the pet score is its dot product with the
// backbone's softmax.
func PetMask() []float32 {
	m := make([]float32, ImageNetClasses)
	for _, r := range PetClasses() {
		for c := r.First; c <= r.Last; c++ {
			m[c] = 1
		}
	}
	return m
}

// imagenetOutput checks that the backbone's one output is its ImageNet
// classifier's, [batch, 1000], and returns its name.
func (g *graph) imagenetOutput(info *ModelInfo) (string, error) {
	if len(info.Outputs) != 1 {
		return "", fmt.Errorf("onnx: export: pet score: the backbone has %d outputs, want one (its ImageNet classes)", len(info.Outputs))
	}
	o := info.Outputs[0]
	if len(o.Shape) != 2 || o.Shape[1].Value != ImageNetClasses || o.ElemType != Float {
		return "", fmt.Errorf("onnx: export: pet score: the backbone's output %s is %s%v, want float32 [batch, %d] ImageNet scores",
			o.Name, o.ElemType, o.Shape, ImageNetClasses)
	}
	return o.Name, nil
}

// addPetScore appends to gr the nodes computing out, float32 [batch], from
// the backbone's 1000 ImageNet scores: its softmax (unless the backbone
// already ends in one) times PetMask. value and node make unused names, init
// adds an initializer.
func addPetScore(gr *Graph, imagenet, out string, value, node func(string) string, init func(*Tensor)) {
	probs := imagenet
	if p := gr.Producer(imagenet); p == nil || !p.is("Softmax") {
		probs = value("imagenet_probabilities")
		gr.InsertNode(len(gr.Nodes), NewNode(node("petbreed_imagenet_softmax"), "Softmax",
			[]string{imagenet}, []string{probs}, IntAttr("axis", 1)))
	}
	mask := value("pet_classes")
	init(FloatTensor(mask, []int64{ImageNetClasses}, PetMask()))
	gr.InsertNode(len(gr.Nodes), NewNode(node("petbreed_pet_score"), "MatMul",
		[]string{probs, mask}, []string{out}))
}

// PetScoreModel returns the part of the backbone after its features, ending
// in the pet score: input "features", float32 [batch, f.Dim] as a feature
// extractor gives them (dequantized), output ExportPetScore, float32
// [batch]. It is what ExportWith's pet score computes from the same
// features, for computing the scores of cached training features (a
// quantized backbone's features are quantized again first, which gives back
// their exact values).
func PetScoreModel(backbone []byte, f Features) ([]byte, error) {
	m, g, err := modelGraphOf(backbone)
	if err != nil {
		return nil, err
	}
	info, err := m.Info()
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	if _, err := g.prepare(info, f); err != nil {
		return nil, err
	}
	out, err := g.imagenetOutput(info)
	if err != nil {
		return nil, err
	}
	before := g.ancestors(f.Tensor)
	keep := g.ancestors(out)
	for n := range before {
		delete(keep, n)
	}
	taken := map[string]bool{}
	for _, n := range g.nodes {
		for _, s := range n.reads() {
			taken[s] = true
		}
		for _, s := range n.Outputs {
			taken[s] = true
		}
	}
	for s := range g.inputs {
		taken[s] = true
	}
	for n := range keep {
		for _, s := range n.reads() {
			_, isInit := g.inits[s]
			if p := g.producer[s]; s != "" && s != f.Tensor && !isInit && (p == nil || !keep[p]) {
				return nil, fmt.Errorf("onnx: pet score model: %s reads %q, computed before the features", g.describe(n), s)
			}
		}
	}
	var uses []string
	if f.Quantized {
		uses = []string{f.Scale, f.ZeroPoint}
	}
	g.cut(keep, uses, nil)
	gr := g.g
	gr.Inputs = slices.DeleteFunc(gr.Inputs, func(v *Value) bool { return v.Name == f.Input || v.Name == f.Tensor })
	unique := func(base string) string {
		s := base
		for i := 1; taken[s]; i++ {
			s = fmt.Sprintf("%s_%d", base, i)
		}
		taken[s] = true
		return s
	}
	if taken[ExportPetScore] {
		return nil, fmt.Errorf("onnx: pet score model: the backbone already has a value named %q", ExportPetScore)
	}
	taken[ExportPetScore] = true
	input := f.Tensor
	if f.Quantized {
		input = unique(ExportFeatures)
		gr.InsertNode(0, NewNode(unique("petbreed_quantize"), "QuantizeLinear",
			[]string{input, f.Scale, f.ZeroPoint}, []string{f.Tensor}))
	}
	batch := batchDim(f.InputShape)
	gr.Inputs = append([]*Value{TensorValue(input, Float, []Dim{batch, {Value: int64(f.Dim)}})}, gr.Inputs...)
	addPetScore(gr, out, ExportPetScore, unique, unique, func(t *Tensor) {
		gr.SetInitializer(t)
		if info.IRVersion < 4 {
			gr.Inputs = append(gr.Inputs, TensorValue(t.Name, t.Type, dimsOf(t.Dims)))
		}
	})
	gr.AddOutput(TensorValue(ExportPetScore, Float, []Dim{batch}))
	return m.Encode(), nil
}
