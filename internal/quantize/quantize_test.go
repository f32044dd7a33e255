package quantize

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"petbreed"
	"petbreed/internal/imaging"
	"petbreed/internal/onnx"
	"petbreed/internal/onnxrt"
	"petbreed/internal/testassets"
)

// petImages returns every n-th of the pets-3breeds images, from offset.
func petImages(tb testing.TB, offset, step, count int) []string {
	tb.Helper()
	dir := testassets.Path(tb, "pets-3breeds", "images")
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var all []string
	for _, e := range ents {
		all = append(all, filepath.Join(dir, e.Name()))
	}
	sort.Strings(all)
	var out []string
	for i := offset; i < len(all) && len(out) < count; i += step {
		out = append(out, all[i])
	}
	return out
}

// batchOf prepares images as the model's input.
func batchOf(tb testing.TB, paths []string) ([]float32, []int64) {
	tb.Helper()
	pre := petbreed.DefaultPreprocess()
	norm := imaging.NewNormalizer(pre.Mean, pre.Std)
	per := 3 * 224 * 224
	buf := make([]float32, len(paths)*per)
	for i, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		img, _, err := imaging.Decode(data, imaging.DecodeOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		seen, err := imaging.Apply(img, pre)
		if err != nil {
			tb.Fatal(err)
		}
		if err := norm.Normalize(seen, buf[i*per:(i+1)*per]); err != nil {
			tb.Fatal(err)
		}
	}
	return buf, []int64{int64(len(paths)), 3, 224, 224}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// top1 runs a model on the images and returns each one's top-1 class.
func top1(tb testing.TB, model []byte, x []float32, shape []int64) []int {
	tb.Helper()
	s, err := onnxrt.OpenData("model", model, onnxrt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	var out []int
	per := int(shape[1] * shape[2] * shape[3])
	for i := 0; i < int(shape[0]); i += 8 {
		n := min(8, int(shape[0])-i)
		outs, err := s.Run(x[i*per:(i+n)*per], []int64{int64(n), shape[1], shape[2], shape[3]})
		if err != nil {
			tb.Fatal(err)
		}
		c := int(outs[0].Shape[1])
		for j := 0; j < n; j++ {
			out = append(out, argmax(outs[0].Float32[j*c:(j+1)*c]))
		}
	}
	return out
}

// softmax returns the row's probabilities.
func softmax(v []float32) []float64 {
	m := v[argmax(v)]
	out := make([]float64, len(v))
	var sum float64
	for i, x := range v {
		out[i] = math.Exp(float64(x - m))
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// compare runs both models on the images: the share of equal top-1 and the
// mean over images of the largest probability difference.
func compare(tb testing.TB, a, b []byte, x []float32, shape []int64) (agree, maxDiff float64) {
	tb.Helper()
	pa, pb := run(tb, a, x, shape), run(tb, b, x, shape)
	for i := range pa {
		if argmax(pa[i]) == argmax(pb[i]) {
			agree++
		}
		sa, sb := softmax(pa[i]), softmax(pb[i])
		d := 0.0
		for j := range sa {
			d = max(d, math.Abs(sa[j]-sb[j]))
		}
		maxDiff += d
	}
	return agree / float64(len(pa)), maxDiff / float64(len(pa))
}

// run returns each image's output row.
func run(tb testing.TB, model []byte, x []float32, shape []int64) [][]float32 {
	tb.Helper()
	s, err := onnxrt.OpenData("model", model, onnxrt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	outs, err := s.Run(x, shape)
	if err != nil {
		tb.Fatal(err)
	}
	c := int(outs[0].Shape[1])
	rows := make([][]float32, shape[0])
	for i := range rows {
		rows[i] = outs[0].Float32[i*c : (i+1)*c]
	}
	return rows
}

// twinWithMeta is the fp32 twin carrying metadata a quantized model must keep.
func twinWithMeta(tb testing.TB) []byte {
	fp32, err := onnx.SetMetadata(testassets.Read(tb, "backbone", "mobilenetv2-12-fp32-twin.onnx"),
		map[string]string{"petbreed.labels": `["a","b"]`, "provenance": "twin"})
	if err != nil {
		tb.Fatal(err)
	}
	return fp32
}

// Real ONNX Runtime on the real fp32 twin: quantized per channel (the
// default), the model loads, keeps the metadata, has int8 weights with one
// scale per channel (opset raised to 13) and answers as the float model.
func TestQuantizeTwin(t *testing.T) {
	fp32 := twinWithMeta(t)
	cal := petImages(t, 0, 37, 16)
	q, rep, err := Quantize(context.Background(), fp32, cal, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Nodes != 64 || rep.Folded != 52+10 || rep.Images != 16 {
		t.Errorf("report %+v", rep)
	}
	if r := float64(len(q)) / float64(len(fp32)); r > 0.3 {
		t.Errorf("quantized model is %.0f%% of the float one", 100*r)
	}
	m, err := onnx.Decode(q)
	if err != nil {
		t.Fatal(err)
	}
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Opset(""); v != 13 {
		t.Errorf("opset %d, want 13 for per-channel axes", v)
	}
	if info.Metadata["petbreed.labels"] != `["a","b"]` || info.Metadata["provenance"] != "twin" {
		t.Errorf("metadata not kept: %v", info.Metadata)
	}
	var qi Info
	if err := json.Unmarshal([]byte(info.Metadata[MetaQuantization]), &qi); err != nil {
		t.Fatal(err)
	}
	var sums []string
	for _, p := range cal {
		b, _ := os.ReadFile(p)
		sums = append(sums, sha256Hex(b))
	}
	if qi.Method != "minmax" || qi.Images != 16 || qi.ImagesDigest != Digest(sums) || qi.Granularity != "per-channel" || !qi.ReduceRange {
		t.Errorf("quantization metadata %+v", qi)
	}
	if d, ok := Describe(m); !ok || d.Form != "qdq" || !d.PerChannel || d.Petbreed == nil || d.Petbreed.Images != 16 {
		t.Errorf("Describe: %+v", d)
	}
	w, s := firstConvWeight(t, m)
	if w == nil || w.Type != onnx.Int8 || s == nil || len(s.Dims) != 1 || s.Dims[0] != 32 {
		t.Errorf("first conv weight %v scale %v", w, s)
	}
	x, shape := batchOf(t, petImages(t, 5, 15, 40))
	agree, diff := compare(t, fp32, q, x, shape)
	t.Logf("top-1 agreement %.3f, mean max |Δp| %.3f", agree, diff)
	if agree < 0.8 || diff > 0.1 {
		t.Errorf("top-1 agreement %.3f, mean max |Δp| %.3f", agree, diff)
	}
}

// firstConvWeight returns the quantized weight of the first Conv and its
// scale, read through the DequantizeLinear that feeds it.
func firstConvWeight(tb testing.TB, m *onnx.Model) (w, scale *onnx.Tensor) {
	tb.Helper()
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Conv" {
			dq := m.Graph.Producer(n.Inputs[1])
			if dq == nil || dq.OpType != "DequantizeLinear" {
				tb.Fatalf("the first Conv's weight is not dequantized: %v", dq)
			}
			return m.Graph.Initializer(dq.Inputs[0]), m.Graph.Initializer(dq.Inputs[1])
		}
	}
	tb.Fatal("no Conv")
	return nil, nil
}

// Each calibration method, and per-tensor weights, give a model that loads
// and answers close to the float one.
func TestMethodsAndGranularity(t *testing.T) {
	fp32 := testassets.Read(t, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	cal := petImages(t, 1, 53, 8)
	x, shape := batchOf(t, petImages(t, 7, 20, 30))
	for _, tc := range []struct {
		name  string
		opt   Options
		opset int64
		agree float64
	}{
		{"percentile", Options{Method: Percentile}, 13, 0.7},
		{"entropy", Options{Method: Entropy}, 13, 0.7},
		{"per-tensor", Options{PerTensor: true}, 12, 0.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, rep, err := Quantize(context.Background(), fp32, cal, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			m, err := onnx.Decode(q)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := m.Opset(""); v != tc.opset {
				t.Errorf("opset %d, want %d", v, tc.opset)
			}
			_, s := firstConvWeight(t, m)
			if s == nil || tc.opt.PerTensor != (len(s.Dims) == 0) {
				t.Errorf("weight scale dims %v", s.Dims)
			}
			if want := string(tc.opt.Method); want != "" && rep.Method != want {
				t.Errorf("method %q", rep.Method)
			}
			agree, diff := compare(t, fp32, q, x, shape)
			t.Logf("top-1 agreement %.3f, mean max |Δp| %.3f", agree, diff)
			if agree < tc.agree {
				t.Errorf("top-1 agreement %.3f, want at least %.2f", agree, tc.agree)
			}
		})
	}
}

// A model the quantizer does not understand is refused before any
// calibration, naming the node.
func TestRefused(t *testing.T) {
	fp32 := testassets.Read(t, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	withOp := func(i int, op string) []byte {
		m, err := onnx.Decode(fp32)
		if err != nil {
			t.Fatal(err)
		}
		n := m.Graph.Nodes[i]
		n.OpType = op
		m.Graph.ReplaceNode(i, n)
		return m.Encode()
	}
	imgs := petImages(t, 0, 100, 2)
	for _, tc := range []struct {
		name   string
		model  []byte
		images []string
		opt    Options
		want   string
	}{
		{"unknown op", withOp(3, "LRN"), imgs, Options{}, `the LRN node "`},
		{"already quantized", testassets.Read(t, "backbone", "mobilenetv2-12-int8.onnx"), imgs, Options{}, "already quantized"},
		{"no images", fp32, nil, Options{}, "no calibration images"},
		{"bad method", fp32, imgs, Options{Method: "median"}, "unknown calibration method"},
		{"bad percentile", fp32, imgs, Options{Method: Percentile, Percentile: 101}, "percentile"},
		{"not onnx", []byte("not a model"), imgs, Options{}, "not an ONNX model"},
		{"missing image", fp32, []string{"/nonexistent.jpg"}, Options{}, "/nonexistent.jpg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _, err := Quantize(context.Background(), tc.model, tc.images, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) || q != nil {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	_, _, err := Quantize(context.Background(), withOp(3, "LRN"), imgs, Options{})
	var ue *UnsupportedError
	if !errors.As(err, &ue) || ue.Op != "LRN" || ue.Node == "" {
		t.Errorf("%v: not an UnsupportedError naming the op", err)
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		file, want string
	}{
		{"mobilenetv2-12-fp32-twin.onnx", ""},
		{"mobilenetv2-12-int8.onnx", "operator"},
	} {
		m, err := onnx.Decode(testassets.Read(t, "backbone", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		s, ok := Describe(m)
		if s.Form != tc.want || ok != (tc.want != "") {
			t.Errorf("%s: %+v", tc.file, s)
		}
		t.Logf("%s: %s", tc.file, s)
	}
}

// The pipeline's export (a new head, the pet score, a mirror view averaged
// in the graph) of the real twin quantizes, loads and keeps its outputs.
func TestQuantizeExport(t *testing.T) {
	twin := testassets.Read(t, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	f, err := onnx.FindFeatures(twin)
	if err != nil {
		t.Fatal(err)
	}
	w := make([]float32, 3*f.Dim)
	for i := range w {
		w[i] = float32(i%7-3) / 100
	}
	exp, err := onnx.ExportWith(twin, f, w, []float32{0.1, 0, -0.1}, 3, map[string]string{"petbreed.labels": `["a","b","c"]`},
		onnx.ExportOptions{PetScore: true, TTA: []onnx.TTAView{onnx.MirrorView()}})
	if err != nil {
		t.Fatal(err)
	}
	q, rep, err := Quantize(context.Background(), exp, petImages(t, 2, 61, 4), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("float: %v", rep.Float)
	x, shape := batchOf(t, petImages(t, 9, 31, 8))
	agree, diff := compare(t, exp, q, x, shape)
	t.Logf("top-1 agreement %.3f, mean max |Δp| %.3f", agree, diff)
	s, err := onnxrt.OpenData("q", q, onnxrt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if outs := s.Outputs(); len(outs) != 2 || outs[1].Name != onnx.ExportPetScore {
		t.Errorf("outputs %v", outs)
	}
	if diff > 0.2 {
		t.Errorf("mean max |Δp| %.3f", diff)
	}
}
