package classify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"

	"petbreed"
	"petbreed/internal/onnx"
	"petbreed/internal/onnxrt"
)

// A shared backbone: petbreed models are one frozen backbone and each its
// own head. When several loaded models have the same backbone, a Trunk runs
// it once per image and each model's Head turns the features into its own
// probabilities (a classes × 1280 product), so a second version costs almost
// nothing more than the first.

// Part is a model file taken apart (onnx.SplitHead): the trunk it shares
// with other models of the same Key, and its own head.
type Part struct {
	// Key identifies what the trunk computes: the sha256 of the trunk graph
	// (without metadata) and of the preprocessing. Models of one key give
	// the same features for the same image.
	Key   string
	split onnx.Split
	Head  *Head
}

// SplitFile reads the model at path and takes it apart. pre is the
// preprocessing the model runs with (Classifier.Preprocess). The error wraps
// onnx.ErrNoHead for a model petbreed did not export.
func SplitFile(path string, pre petbreed.Preprocess) (*Part, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := onnx.SplitHead(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	h := sha256.New()
	h.Write(s.Trunk)
	p, err := json.Marshal(pre)
	if err != nil {
		return nil, err
	}
	h.Write([]byte{0})
	h.Write(p)
	return &Part{Key: hex.EncodeToString(h.Sum(nil)), split: s, Head: newHead(s.Head, s.PetScore)}, nil
}

// Trunk runs a shared backbone: each image's row is its features, Views ×
// Dim values (view by view), then its pet score when the model has one. It
// is safe for concurrent use.
type Trunk struct {
	sess      *onnxrt.Session
	key       string
	pre       petbreed.Preprocess
	views     int
	dim       int
	pet       bool
	feat, ps  int // output indices
	tensorLen int
}

// OpenTrunk loads p's trunk into ONNX Runtime.
func OpenTrunk(p *Part, pre petbreed.Preprocess, opts Options) (*Trunk, error) {
	sess, err := onnxrt.OpenData("trunk "+p.Key[:12], p.split.Trunk, onnxrt.Options{IntraOpThreads: opts.Threads, NoMemPattern: opts.LowMemory})
	if err != nil {
		return nil, err
	}
	t := &Trunk{sess: sess, key: p.Key, pre: pre, views: p.split.Head.Views, dim: p.split.Head.Dim,
		pet: p.split.PetScore, feat: -1, ps: -1, tensorLen: 3 * pre.Size * pre.Size}
	for i, o := range sess.Outputs() {
		switch o.Name {
		case p.split.Features:
			t.feat = i
		case onnx.ExportPetScore:
			t.ps = i
		}
	}
	if t.feat < 0 || t.pet != (t.ps >= 0) {
		sess.Close()
		return nil, fmt.Errorf("trunk %s: outputs %v, want %s (and %s)", p.Key[:12], sess.Outputs(), p.split.Features, onnx.ExportPetScore)
	}
	return t, nil
}

// Key is the Part key the trunk was opened for.
func (t *Trunk) Key() string { return t.key }

// Preprocess is the transform images go through before the trunk.
func (t *Trunk) Preprocess() petbreed.Preprocess { return t.pre }

// TensorLen is the number of float32 values one image takes in a batch.
func (t *Trunk) TensorLen() int { return t.tensorLen }

// Session is the trunk's runtime session.
func (t *Trunk) Session() *onnxrt.Session { return t.sess }

// Close releases the trunk.
func (t *Trunk) Close() error { return t.sess.Close() }

// Run runs the trunk on n prepared images and returns each image's row.
func (t *Trunk) Run(batch []float32, n int) ([][]float32, error) {
	if n <= 0 || len(batch) != n*t.tensorLen {
		return nil, fmt.Errorf("classify: batch of %d values for %d images of %d", len(batch), n, t.tensorLen)
	}
	s := int64(t.pre.Size)
	outs, err := t.sess.Run(batch, []int64{int64(n), 3, s, s})
	if err != nil {
		return nil, err
	}
	f := outs[t.feat]
	rows := int64(t.views * n)
	if len(f.Shape) != 2 || f.Shape[0] != rows || f.Shape[1] != int64(t.dim) || len(f.Float32) != t.views*n*t.dim {
		return nil, fmt.Errorf("classify: trunk output %s has shape %v for %d images of %d views", f.Name, f.Shape, n, t.views)
	}
	width := t.views * t.dim
	if t.pet {
		width++
		if p := outs[t.ps]; len(p.Float32) != n {
			return nil, fmt.Errorf("classify: trunk output %s has shape %v for a batch of %d", p.Name, p.Shape, n)
		}
	}
	buf := make([]float32, n*width)
	out := make([][]float32, n)
	for i := range out {
		row := buf[i*width : (i+1)*width : (i+1)*width]
		for v := range t.views { // view-major: view v of image i is row v·n+i
			copy(row[v*t.dim:(v+1)*t.dim], f.Float32[(v*n+i)*t.dim:(v*n+i+1)*t.dim])
		}
		if t.pet {
			row[width-1] = outs[t.ps].Float32[i]
		}
		out[i] = row
	}
	return out, nil
}

// Head is one model's linear head, run in Go on a trunk's rows.
type Head struct {
	w, b    []float32
	classes int
	dim     int
	views   int
	pet     bool
}

func newHead(h onnx.Head, pet bool) *Head {
	return &Head{w: h.Weight, b: h.Bias, classes: h.Classes, dim: h.Dim, views: h.Views, pet: pet}
}

// Classes is the head's class count.
func (h *Head) Classes() int { return h.classes }

// RowLen is the length of the trunk rows the head reads.
func (h *Head) RowLen() int {
	n := h.views * h.dim
	if h.pet {
		n++
	}
	return n
}

// Probabilities turns trunk rows into rows of class probabilities laid out
// as Classifier.Run's (the pet score carried in each row's capacity, see
// Pet): the mean over views of softmax(W·f + b), as the exported graph
// computes it. A row of the wrong length is an error.
func (h *Head) Probabilities(rows [][]float32) ([][]float32, error) {
	k := h.classes
	stride := 0
	if h.pet {
		stride = 2 // the score and the mark
	}
	buf := make([]float32, len(rows)*(k+stride))
	logits := make([]float64, k)
	out := make([][]float32, len(rows))
	for i, in := range rows {
		if len(in) != h.RowLen() {
			return nil, fmt.Errorf("classify: a trunk row of %d values, the head reads %d", len(in), h.RowLen())
		}
		at := i * (k + stride)
		row := buf[at : at+k : at+k+stride]
		for v := range h.views {
			h.logits(in[v*h.dim:(v+1)*h.dim], logits)
			addSoftmax(logits, row)
		}
		if h.views > 1 {
			for c := range row {
				row[c] /= float32(h.views)
			}
		}
		if h.pet {
			buf[at+k], buf[at+k+1] = in[len(in)-1], math.Float32frombits(petMark)
		}
		out[i] = row
	}
	return out, nil
}

// logits computes W·f + b: float32 products summed in eight float32 lanes
// (as a SIMD Gemm does), the lanes and the bias added in float64.
func (h *Head) logits(f []float32, dst []float64) {
	f = f[:h.dim]
	for c := range dst {
		w := h.w[c*h.dim : (c+1)*h.dim : (c+1)*h.dim]
		var s0, s1, s2, s3, s4, s5, s6, s7 float32
		d := 0
		for ; d+8 <= len(f); d += 8 {
			x, y := f[d:d+8:d+8], w[d:d+8:d+8]
			s0 += x[0] * y[0]
			s1 += x[1] * y[1]
			s2 += x[2] * y[2]
			s3 += x[3] * y[3]
			s4 += x[4] * y[4]
			s5 += x[5] * y[5]
			s6 += x[6] * y[6]
			s7 += x[7] * y[7]
		}
		for ; d < len(f); d++ {
			s0 += f[d] * w[d]
		}
		dst[c] = float64(h.b[c]) + (float64(s0) + float64(s1) + float64(s2) + float64(s3)) +
			(float64(s4) + float64(s5) + float64(s6) + float64(s7))
	}
}

// addSoftmax adds softmax(logits) to dst.
func addSoftmax(logits []float64, dst []float32) {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(v - m)
	}
	for c, v := range logits {
		dst[c] += float32(math.Exp(v-m) / sum)
	}
}
