package onnx_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"petbreed"
	"petbreed/internal/imaging"
	"petbreed/internal/onnx"
	"petbreed/internal/onnxrt"
	"petbreed/internal/testassets"
)

// These tests load what package onnx writes into ONNX Runtime. They live in
// package onnx_test because onnxrt imports onnx.

func openBytes(t *testing.T, name string, data []byte, opts onnxrt.Options) *onnxrt.Session {
	t.Helper()
	if _, err := onnxrt.Load(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if opts.IntraOpThreads == 0 {
		opts.IntraOpThreads = 2
	}
	s, err := onnxrt.Open(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// imageBatch prepares real images as the backbone expects them.
func imageBatch(t testing.TB, paths ...string) []float32 {
	t.Helper()
	pre := petbreed.DefaultPreprocess()
	norm := imaging.NewNormalizer(pre.Mean, pre.Std)
	n := 3 * pre.Size * pre.Size
	batch := make([]float32, len(paths)*n)
	for i, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := imaging.Decode(data, imaging.DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		seen, err := imaging.Apply(img, pre)
		if err != nil {
			t.Fatal(err)
		}
		if err := norm.Normalize(seen, batch[i*n:(i+1)*n]); err != nil {
			t.Fatal(err)
		}
	}
	return batch
}

// head computes softmax(W·x + b) in float64, as the Go side does on cached
// features.
func head(x []float32, w, b []float32, classes int) []float64 {
	dim := len(w) / classes
	n := len(x) / dim
	out := make([]float64, n*classes)
	for i := 0; i < n; i++ {
		logits := out[i*classes : (i+1)*classes]
		maxv := math.Inf(-1)
		for c := range logits {
			s := float64(b[c])
			for d := 0; d < dim; d++ {
				s += float64(w[c*dim+d]) * float64(x[i*dim+d])
			}
			logits[c] = s
			maxv = math.Max(maxv, s)
		}
		sum := 0.0
		for c := range logits {
			logits[c] = math.Exp(logits[c] - maxv)
			sum += logits[c]
		}
		for c := range logits {
			logits[c] /= sum
		}
	}
	return out
}

func maxAbsDiff(a []float32, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-b[i]))
	}
	return m
}

func TestExportRealBackbone(t *testing.T) {
	backbone := testassets.Read(t, "backbone", "mobilenetv2-12-int8.onnx")
	f, err := onnx.FindFeatures(backbone)
	if err != nil {
		t.Fatal(err)
	}
	const classes = 3
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float32, classes*f.Dim)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	b := []float32{0.5, -0.25, 0.125}
	meta := map[string]string{
		petbreed.MetaLabels:   `["Abyssinian","Bengal","american_bulldog"]`,
		petbreed.MetaRunID:    "0123456789abcdef",
		petbreed.MetaBackbone: "83530ad811bc31d2b60a5599a21265a5057608c9b044b4ee758cc22f2309f54f",
	}
	exported, err := onnx.Export(backbone, f, w, b, classes, meta)
	if err != nil {
		t.Fatal(err)
	}
	featModel, err := onnx.FeatureModel(backbone, f)
	if err != nil {
		t.Fatal(err)
	}
	headBytes := 4 * (classes*f.Dim + classes)
	t.Logf("sizes: backbone %d, exported %d (head %d bytes), feature model %d",
		len(backbone), len(exported), headBytes, len(featModel))
	// The 1280x1000 int8 classifier weights (1.28 MB) are gone.
	if len(exported) >= len(backbone) || len(exported) < len(backbone)-1_300_000+headBytes {
		t.Errorf("exported model is %d bytes, backbone %d", len(exported), len(backbone))
	}

	// The model as a file describes itself.
	info, err := onnx.ParseInfo(exported)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Outputs) != 1 || info.Outputs[0].String() != "probabilities: float32[batch_size,3]" {
		t.Errorf("outputs = %v", info.Outputs)
	}
	if len(info.Inputs) != 1 || info.Inputs[0].String() != "input: float32[batch_size,3,224,224]" {
		t.Errorf("inputs = %v", info.Inputs)
	}
	if !reflect.DeepEqual(info.Metadata, meta) || info.ProducerName != "petbreed" {
		t.Errorf("metadata = %v, producer %q", info.Metadata, info.ProducerName)
	}
	if v, _ := info.Opset(""); v != 12 || info.IRVersion != 7 {
		t.Errorf("opset %d, IR %d", v, info.IRVersion)
	}
	// 73 nodes - 3 classifier nodes + DequantizeLinear, Gemm, Softmax.
	if info.Nodes != 73 || info.Initializers >= 348 {
		t.Errorf("nodes %d, initializers %d", info.Nodes, info.Initializers)
	}

	sess := openBytes(t, "exported.onnx", exported, onnxrt.Options{})
	if got := sess.Outputs(); len(got) != 1 || got[0].String() != "probabilities: float32[-1,3]" {
		t.Errorf("ORT outputs = %v", got)
	}
	if md := sess.Metadata(); !reflect.DeepEqual(md.Custom, meta) || md.Producer != "petbreed" {
		t.Errorf("ORT metadata = %+v", md)
	}
	featSess := openBytes(t, "features.onnx", featModel, onnxrt.Options{})
	if got := featSess.Outputs(); len(got) != 1 || got[0].String() != "472_quantized: uint8[-1,1280]" {
		t.Errorf("feature model outputs = %v", got)
	}

	images := []string{
		testassets.Path(t, "photos", "chelsea.png"),
		testassets.Path(t, "photos", "pets.jpg"),
		testassets.Path(t, "photos", "grace_hopper.bmp"),
		testassets.Path(t, "pets-3breeds", "images", "Abyssinian_34.jpg"), // a GIF
		testassets.Path(t, "pets-3breeds", "images", "Bengal_1.jpg"),
		testassets.Path(t, "pets-3breeds", "images", "american_bulldog_10.jpg"),
	}
	n := len(images)
	batch := imageBatch(t, images...)
	shape := []int64{int64(n), 3, 224, 224}

	outs, err := sess.Run(batch, shape)
	if err != nil {
		t.Fatal(err)
	}
	probs := outs[0]
	if !reflect.DeepEqual(probs.Shape, []int64{int64(n), classes}) || len(probs.Float32) != n*classes {
		t.Fatalf("probabilities: %s%v", probs.Type, probs.Shape)
	}
	fouts, err := featSess.Run(batch, shape)
	if err != nil {
		t.Fatal(err)
	}
	q := fouts[0].Uint8
	if len(q) != n*f.Dim {
		t.Fatalf("features: %s%v", fouts[0].Type, fouts[0].Shape)
	}
	x := make([]float32, len(q))
	for i, v := range q {
		x[i] = float32(int32(v)-f.ZeroPointValue) * f.ScaleValue
	}
	want := head(x, w, b, classes)
	diff := maxAbsDiff(probs.Float32, want)
	t.Logf("max |ORT - Go| over %d images x %d classes: %.3g", n, classes, diff)
	for i := 0; i < n; i++ {
		t.Logf("  %-24s ORT %.6f  Go %.6f", filepath.Base(images[i]), probs.Float32[i*classes:(i+1)*classes], want[i*classes:(i+1)*classes])
	}
	if diff > 1e-5 {
		t.Errorf("max abs difference %g > 1e-5", diff)
	}
	// Not a degenerate head: the images do not all get the same answer.
	if maxAbsDiff(probs.Float32[:classes], want[classes:2*classes]) < 1e-3 {
		t.Error("two images have the same probabilities")
	}

	// The feature model computes the same features as the whole backbone.
	full, err := onnxrt.Open(testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"),
		onnxrt.Options{IntraOpThreads: 2, ExtraOutputs: []string{f.Tensor}})
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	ref, err := full.Run(batch, shape)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ref[1].Uint8, q) {
		t.Error("the feature model's features differ from the backbone's")
	}
}

func TestExportSyntheticFloatORT(t *testing.T) {
	for _, tc := range []struct {
		name  string
		model []byte
		shape []int64
	}{
		{"gemm opset 13", onnx.SynthGemmModel(true), []int64{3, 2, 2}},
		{"matmul add IR 3 opset 9", onnx.SynthMatMulModel(), []int64{3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := onnx.FindFeatures(tc.model)
			if err != nil {
				t.Fatal(err)
			}
			w := []float32{0.5, -1, 2, 0.25, -0.5, 1, 0, 3}
			b := []float32{0.1, -0.1}
			exported, err := onnx.Export(tc.model, f, w, b, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			featModel, err := onnx.FeatureModel(tc.model, f)
			if err != nil {
				t.Fatal(err)
			}
			x := []float32{1, 2, 3, 4, -1, -2, 0.5, 0.25, 0, 0, -3, 7}
			s := openBytes(t, "exported.onnx", exported, onnxrt.Options{IntraOpThreads: 1})
			outs, err := s.Run(x, tc.shape)
			if err != nil {
				t.Fatal(err)
			}
			fs := openBytes(t, "features.onnx", featModel, onnxrt.Options{IntraOpThreads: 1})
			feats, err := fs.Run(x, tc.shape)
			if err != nil {
				t.Fatal(err)
			}
			if got := feats[0].Shape; !reflect.DeepEqual(got, []int64{3, 4}) {
				t.Errorf("features shape %v", got)
			}
			want := head(feats[0].Float32, w, b, 2)
			if d := maxAbsDiff(outs[0].Float32, want); d > 1e-6 || len(outs[0].Float32) != 6 {
				t.Errorf("ORT %v, Go %v (max diff %g)", outs[0].Float32, want, d)
			}
		})
	}
}
