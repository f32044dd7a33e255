package quantize

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"petbreed"
	"petbreed/internal/imaging"
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

func TestQuantizeTwin(t *testing.T) {
	fp32 := testassets.Read(t, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	q, rep, err := Quantize(context.Background(), fp32, petImages(t, 0, 10, 32), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v size %d -> %d", rep.Info, len(fp32), len(q))
	t.Logf("nodes %d activations %d folded %d float %v", rep.Nodes, rep.Activations, rep.Folded, rep.Float)
	x, shape := batchOf(t, petImages(t, 5, 10, 60))
	a, b := top1(t, fp32, x, shape), top1(t, q, x, shape)
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	t.Logf("top-1 agreement %d/%d", same, len(a))
}
