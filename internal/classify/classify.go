// Package classify is a model with its labels and its preprocessing: what
// the CLI and the server call to turn images into top-k breeds. It owns the
// path from decoded pixels to probabilities; decoding and transforms are
// package imaging, the model runtime is package onnxrt.
package classify

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"petbreed"
	"petbreed/internal/imaging"
	"petbreed/internal/onnxrt"
)

// Options configure Open.
type Options struct {
	// Threads is ONNX Runtime's intra-op thread count; 0 means one per core.
	Threads int
	// Labels, when set, name the classes instead of the model's metadata.
	Labels []string
	// Preprocess, when set, replaces the model's own (or the default).
	Preprocess *petbreed.Preprocess
	// LowMemory trades ONNX Runtime's per-shape memory plans for a smaller
	// footprint (onnxrt.Options.NoMemPattern): for long-running servers.
	LowMemory bool
	// Name identifies the model in answers (default: its path), such as the
	// models:/ URI it was resolved from.
	Name string
}

// Classifier runs one image classification model. It is safe for concurrent use.
type Classifier struct {
	sess    *onnxrt.Session
	name    string
	input   onnxrt.TensorInfo
	output  int // index of the probabilities/logits output
	pet     int // index of the pet score output, -1 without one (pet.go)
	petMin  float32
	classes int
	labels  []string
	pre     petbreed.Preprocess
	norm    *imaging.Normalizer
}

// Open loads the ONNX model at path with its labels and preprocessing:
// from opts when given, else from the model's metadata, else the defaults
// (torchvision's ImageNet evaluation transform; class indices as labels).
func Open(path string, opts Options) (*Classifier, error) {
	sess, err := onnxrt.Open(path, onnxrt.Options{IntraOpThreads: opts.Threads, NoMemPattern: opts.LowMemory})
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = path
	}
	c, err := New(sess, name, opts)
	if err != nil {
		sess.Close()
		return nil, err
	}
	return c, nil
}

// New wraps an open session; name identifies the model in answers. The
// classifier owns sess from then on (Close closes it).
func New(sess *onnxrt.Session, name string, opts Options) (*Classifier, error) {
	c := &Classifier{sess: sess, name: name}
	ins := sess.Inputs()
	if len(ins) != 1 || ins[0].Type != "float32" || len(ins[0].Shape) != 4 {
		return nil, fmt.Errorf("%s: want one float32 image input [N,3,H,W], the model has %v", name, ins)
	}
	c.input = ins[0]
	if ch := c.input.Shape[1]; ch != 3 && ch != -1 {
		return nil, fmt.Errorf("%s: input %s has %d channels, want 3", name, c.input.Name, ch)
	}
	c.output = -1
	for i, o := range sess.Outputs() {
		if o.Type == "float32" && len(o.Shape) == 2 {
			c.output, c.classes = i, int(o.Shape[1])
			break
		}
	}
	if c.output < 0 {
		return nil, fmt.Errorf("%s: no float32 [N,classes] output among %v", name, sess.Outputs())
	}

	meta := sess.Metadata().Custom
	if err := c.findPet(sess.Outputs(), meta); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.pre = petbreed.DefaultPreprocess()
	if s, ok := meta[petbreed.MetaPreprocess]; ok {
		if err := json.Unmarshal([]byte(s), &c.pre); err != nil {
			return nil, fmt.Errorf("%s: metadata %s: %w", name, petbreed.MetaPreprocess, err)
		}
	}
	if opts.Preprocess != nil {
		c.pre = *opts.Preprocess
	}
	if err := c.SetPreprocess(c.pre); err != nil {
		return nil, err
	}

	switch {
	case opts.Labels != nil:
		c.labels = opts.Labels
	case meta[petbreed.MetaLabels] != "":
		labels, err := ParseLabels([]byte(meta[petbreed.MetaLabels]))
		if err != nil {
			return nil, fmt.Errorf("%s: metadata %s: %w", name, petbreed.MetaLabels, err)
		}
		c.labels = labels
	}
	if c.labels != nil && c.classes > 0 && len(c.labels) != c.classes {
		return nil, fmt.Errorf("%s: %d labels for a model with %d classes", name, len(c.labels), c.classes)
	}
	return c, nil
}

// Name identifies the model (its path or URI).
func (c *Classifier) Name() string { return c.name }

// Preprocess is the transform images go through before the model.
func (c *Classifier) Preprocess() petbreed.Preprocess { return c.pre }

// SetPreprocess replaces the preprocessing, after checking that it makes
// images of the size the model takes. Call it before the classifier is
// used, not while other goroutines classify.
func (c *Classifier) SetPreprocess(p petbreed.Preprocess) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	h, w := c.input.Shape[2], c.input.Shape[3]
	if (h > 0 && h != int64(p.Size)) || (w > 0 && w != int64(p.Size)) {
		return fmt.Errorf("%s: the model takes %dx%d images, the preprocessing makes %dx%d",
			c.name, w, h, p.Size, p.Size)
	}
	c.pre, c.norm = p, imaging.NewNormalizer(p.Mean, p.Std)
	return nil
}

// Session is the model's runtime session (for inspection).
func (c *Classifier) Session() *onnxrt.Session { return c.sess }

// HasLabels reports whether the classes have names (else they are indices).
func (c *Classifier) HasLabels() bool { return c.labels != nil }

// Classes returns the class names, or their indices as strings when the
// model has no labels. It returns nil when the class count is not fixed by
// the model and there are no labels.
func (c *Classifier) Classes() []string {
	if c.labels != nil {
		return append([]string(nil), c.labels...)
	}
	out := make([]string, max(c.classes, 0))
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}

// Label names class i.
func (c *Classifier) Label(i int) string {
	if i >= 0 && i < len(c.labels) {
		return c.labels[i]
	}
	return strconv.Itoa(i)
}

// TensorLen is the number of float32 values one image takes in a batch.
func (c *Classifier) TensorLen() int { return 3 * c.pre.Size * c.pre.Size }

// Prepare transforms a decoded image into the model's input: the
// preprocessing, then normalisation into dst (TensorLen values, NCHW).
func (c *Classifier) Prepare(img *imaging.RGB, dst []float32) error {
	seen, err := imaging.Apply(img, c.pre)
	if err != nil {
		return err
	}
	return c.norm.Normalize(seen, dst)
}

// Run runs the model on n prepared images laid out one after the other in
// batch, and returns each image's class probabilities. A model with a pet
// score gives rows that carry it too (see Pet).
func (c *Classifier) Run(batch []float32, n int) ([][]float32, error) {
	if n <= 0 || len(batch) != n*c.TensorLen() {
		return nil, fmt.Errorf("classify: batch of %d values for %d images of %d", len(batch), n, c.TensorLen())
	}
	s := int64(c.pre.Size)
	outs, err := c.sess.Run(batch, []int64{int64(n), 3, s, s})
	if err != nil {
		return nil, err
	}
	o := outs[c.output]
	if len(o.Shape) != 2 || o.Shape[0] != int64(n) || o.Shape[1] <= 0 {
		return nil, fmt.Errorf("classify: output %s has shape %v for a batch of %d", o.Name, o.Shape, n)
	}
	k := int(o.Shape[1])
	if c.labels != nil && len(c.labels) != k {
		return nil, fmt.Errorf("classify: %d labels, the model gave %d classes", len(c.labels), k)
	}
	if c.pet >= 0 {
		return c.withPet(o.Float32, outs[c.pet], n, k)
	}
	probs := make([][]float32, n)
	for i := range probs {
		row := o.Float32[i*k : (i+1)*k : (i+1)*k]
		if !isDistribution(row) {
			softmax(row)
		}
		probs[i] = row
	}
	return probs, nil
}

// TopK returns the k most probable classes, most probable first (ties by
// index). k <= 0 or beyond the class count returns them all.
func (c *Classifier) TopK(probs []float32, k int) []petbreed.Prediction {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	if k <= 0 || k > len(idx) {
		k = len(idx)
	}
	out := make([]petbreed.Prediction, k)
	for r, i := range idx[:k] {
		out[r] = petbreed.Prediction{Label: c.Label(i), Index: i, Probability: probs[i]}
	}
	return out
}

// Close releases the model.
func (c *Classifier) Close() error { return c.sess.Close() }

// isDistribution reports whether row already is a probability vector
// (non-negative, summing to 1), as a model ending in softmax outputs.
func isDistribution(row []float32) bool {
	var sum float64
	for _, v := range row {
		if !(v >= 0 && v <= 1) {
			return false
		}
		sum += float64(v)
	}
	return math.Abs(sum-1) < 1e-3
}

// softmax turns logits into probabilities in place, stably: the maximum is
// subtracted first so that exp never overflows.
func softmax(row []float32) {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for i, v := range row {
		e := math.Exp(float64(v) - m)
		row[i] = float32(e)
		sum += e
	}
	for i := range row {
		row[i] = float32(float64(row[i]) / sum)
	}
}

// LoadLabels reads class names from a file: one label a line, or JSON
// {"classes": [...]} (or a JSON array).
func LoadLabels(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	labels, err := ParseLabels(b)
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", path, err)
	}
	return labels, nil
}

// ParseLabels parses the formats LoadLabels reads.
func ParseLabels(b []byte) ([]string, error) {
	s := strings.TrimSpace(string(b))
	var labels []string
	switch {
	case strings.HasPrefix(s, "{"):
		var v struct {
			Classes []string `json:"classes"`
		}
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("JSON labels: %w", err)
		}
		if v.Classes == nil {
			return nil, errors.New(`JSON labels need a "classes" array`)
		}
		labels = v.Classes
	case strings.HasPrefix(s, "["):
		if err := json.Unmarshal([]byte(s), &labels); err != nil {
			return nil, fmt.Errorf("JSON labels: %w", err)
		}
	default:
		for i, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				return nil, fmt.Errorf("line %d is empty", i+1)
			}
			labels = append(labels, line)
		}
	}
	if len(labels) == 0 || (len(labels) == 1 && labels[0] == "") {
		return nil, errors.New("no labels")
	}
	return labels, nil
}
