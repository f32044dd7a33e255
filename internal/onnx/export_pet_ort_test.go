package onnx_test

import (
	"bufio"
	"bytes"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"petbreed/internal/onnx"
	"petbreed/internal/onnxrt"
	"petbreed/internal/testassets"
)

// TestPetClassesMatchLabels checks the class ranges of the pet score
// against the labels file, and that their neighbours are the wild animals
// the ranges leave out.
func TestPetClassesMatchLabels(t *testing.T) {
	data := testassets.Read(t, "backbone", "imagenet_labels.txt")
	var labels []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		labels = append(labels, sc.Text())
	}
	if len(labels) != onnx.ImageNetClasses {
		t.Fatalf("%d labels, want %d", len(labels), onnx.ImageNetClasses)
	}
	for _, r := range onnx.PetClasses() {
		if labels[r.First] != r.FirstLabel || labels[r.Last] != r.LastLabel {
			t.Errorf("%s: classes %d..%d are %q..%q, want %q..%q", r.Name, r.First, r.Last,
				labels[r.First], labels[r.Last], r.FirstLabel, r.LastLabel)
		}
	}
	for c, want := range map[int]string{150: "sea lion", 269: "timber wolf", 280: "grey fox", 286: "cougar", 292: "tiger,"} {
		if !strings.HasPrefix(labels[c], want) {
			t.Errorf("class %d is %q, want %q...", c, labels[c], want)
		}
	}
	mask := onnx.PetMask()
	var n int
	for _, v := range mask {
		if v == 1 {
			n++
		}
	}
	// Wolves, foxes, big cats and hot dogs are not pets.
	for _, c := range []int{269, 272, 277, 280, 286, 287, 291, 292, 293, 934} {
		if mask[c] != 0 {
			t.Errorf("class %d %q is counted as a pet", c, labels[c])
		}
	}
	if n != 118+5 {
		t.Errorf("%d pet classes, want 123 (118 dogs, 5 cats)", n)
	}
}

func randomHead(dim, classes int) (w, b []float32) {
	rng := rand.New(rand.NewPCG(3, 4))
	w = make([]float32, classes*dim)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	b = make([]float32, classes)
	for i := range b {
		b[i] = float32(rng.NormFloat64() * 0.1)
	}
	return w, b
}

// petScores is the reference: the backbone run alone, its 1000 logits
// through a float64 softmax, summed over PetClasses.
func petScores(logits []float32) []float64 {
	mask := onnx.PetMask()
	n := len(logits) / onnx.ImageNetClasses
	out := make([]float64, n)
	for i := range out {
		row := logits[i*onnx.ImageNetClasses : (i+1)*onnx.ImageNetClasses]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, float64(v))
		}
		var sum, pet float64
		for c, v := range row {
			e := math.Exp(float64(v) - m)
			sum += e
			pet += e * float64(mask[c])
		}
		out[i] = pet / sum
	}
	return out
}

// flipTensor mirrors each [3,H,W] image of batch left to right.
func flipTensor(batch []float32, size int) []float32 {
	out := make([]float32, len(batch))
	for row := 0; row < len(batch)/size; row++ {
		for x := 0; x < size; x++ {
			out[row*size+x] = batch[row*size+size-1-x]
		}
	}
	return out
}

var backbones = []string{"mobilenetv2-12-int8.onnx", "mobilenetv2-12-fp32-twin.onnx"}

// TestExportPetScoreORT: the second output is the backbone's own pet
// probability, and adding it changes nothing in the breed probabilities.
func TestExportPetScoreORT(t *testing.T) {
	images := []string{
		testassets.Path(t, "photos", "chelsea.png"),
		testassets.Path(t, "photos", "pets.jpg"),
		testassets.Path(t, "photos", "parrot.jpg"),
		testassets.Path(t, "photos", "grace_hopper.bmp"),
		testassets.Path(t, "pets-3breeds", "images", "american_bulldog_10.jpg"),
	}
	batch := imageBatch(t, images...)
	n := len(images)
	shape := []int64{int64(n), 3, 224, 224}
	for _, name := range backbones {
		t.Run(name, func(t *testing.T) {
			backbone := testassets.Read(t, "backbone", name)
			f, err := onnx.FindFeatures(backbone)
			if err != nil {
				t.Fatal(err)
			}
			const classes = 3
			w, b := randomHead(f.Dim, classes)
			plain, err := onnx.Export(backbone, f, w, b, classes, nil)
			if err != nil {
				t.Fatal(err)
			}
			withPet, err := onnx.ExportWith(backbone, f, w, b, classes, nil, onnx.ExportOptions{PetScore: true})
			if err != nil {
				t.Fatal(err)
			}
			info, err := onnx.ParseInfo(withPet)
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Outputs) != 2 || info.Outputs[1].String() != "pet_score: float32[batch_size]" {
				t.Fatalf("outputs = %v", info.Outputs)
			}

			got, err := openBytes(t, "pet.onnx", withPet, onnxrt.Options{}).Run(batch, shape)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := openBytes(t, "plain.onnx", plain, onnxrt.Options{}).Run(batch, shape)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[0].Float32, ref[0].Float32) {
				t.Errorf("the breed probabilities changed: %v, without the pet score %v", got[0].Float32, ref[0].Float32)
			}
			logits, err := openBytes(t, "backbone.onnx", backbone, onnxrt.Options{}).Run(batch, shape)
			if err != nil {
				t.Fatal(err)
			}
			want := petScores(logits[0].Float32)
			pet := got[1]
			if !reflect.DeepEqual(pet.Shape, []int64{int64(n)}) {
				t.Fatalf("pet_score shape %v", pet.Shape)
			}
			if d := maxAbsDiff(pet.Float32, want); d > 1e-5 {
				t.Errorf("pet scores %v, backbone's %v (max diff %g)", pet.Float32, want, d)
			}
			for i, p := range images {
				t.Logf("  %-24s pet score %.4f", filepath.Base(p), pet.Float32[i])
			}

			// The same scores from the features alone, as a feature
			// extractor gives them (dequantized).
			fm, err := onnx.FeatureModel(backbone, f)
			if err != nil {
				t.Fatal(err)
			}
			fo, err := openBytes(t, "features.onnx", fm, onnxrt.Options{}).Run(batch, shape)
			if err != nil {
				t.Fatal(err)
			}
			feats := fo[0].Float32
			if f.Quantized {
				feats = make([]float32, len(fo[0].Uint8))
				for i, q := range fo[0].Uint8 {
					feats[i] = float32(int32(q)-f.ZeroPointValue) * f.ScaleValue
				}
			}
			psm, err := onnx.PetScoreModel(backbone, f)
			if err != nil {
				t.Fatal(err)
			}
			ps := openBytes(t, "petscore.onnx", psm, onnxrt.Options{})
			if got := ps.Inputs(); len(got) != 1 || got[0].String() != "features: float32[-1,1280]" && got[0].String() != "472: float32[-1,1280]" {
				t.Errorf("pet score model inputs %v", got)
			}
			fromFeats, err := ps.Run(feats, []int64{int64(n), int64(f.Dim)})
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(fromFeats[0].Float32, float64s(pet.Float32)); d > 1e-6 {
				t.Errorf("pet scores from the features %v, the exported model's %v (max diff %g)", fromFeats[0].Float32, pet.Float32, d)
			}
			// The cat, the dogs and the bulldog look like pets; the parrot and
			// the admiral do not.
			for i, isPet := range []bool{true, true, false, false, true} {
				if (pet.Float32[i] > 0.5) != isPet {
					t.Errorf("%s: pet score %.4f", filepath.Base(images[i]), pet.Float32[i])
				}
			}
		})
	}
}

// TestExportTTAORT: the graph's answer with the mirror view is the mean of
// the exported model's answers on the image and on its mirror, run apart.
func TestExportTTAORT(t *testing.T) {
	images := []string{
		testassets.Path(t, "photos", "chelsea.png"),
		testassets.Path(t, "photos", "parrot.jpg"),
		testassets.Path(t, "pets-3breeds", "images", "Bengal_1.jpg"),
	}
	batch := imageBatch(t, images...)
	n := len(images)
	shape := []int64{int64(n), 3, 224, 224}
	for _, name := range backbones {
		t.Run(name, func(t *testing.T) {
			backbone := testassets.Read(t, "backbone", name)
			f, err := onnx.FindFeatures(backbone)
			if err != nil {
				t.Fatal(err)
			}
			const classes = 3
			w, b := randomHead(f.Dim, classes)
			single, err := onnx.ExportWith(backbone, f, w, b, classes, nil, onnx.ExportOptions{PetScore: true})
			if err != nil {
				t.Fatal(err)
			}
			tta, err := onnx.ExportWith(backbone, f, w, b, classes, nil, onnx.ExportOptions{PetScore: true, TTA: []string{onnx.ViewFlip}})
			if err != nil {
				t.Fatal(err)
			}
			s := openBytes(t, "single.onnx", single, onnxrt.Options{})
			orig, err := s.Run(batch, shape)
			if err != nil {
				t.Fatal(err)
			}
			mirror, err := s.Run(flipTensor(batch, 224), shape)
			if err != nil {
				t.Fatal(err)
			}
			got, err := openBytes(t, "tta.onnx", tta, onnxrt.Options{}).Run(batch, shape)
			if err != nil {
				t.Fatal(err)
			}
			for o, size := range []int{n * classes, n} {
				if len(got[o].Float32) != size {
					t.Fatalf("output %s: %v", got[o].Name, got[o].Shape)
				}
				want := make([]float64, size)
				var moved float64
				for i := range want {
					want[i] = (float64(orig[o].Float32[i]) + float64(mirror[o].Float32[i])) / 2
					moved = math.Max(moved, math.Abs(float64(orig[o].Float32[i]-mirror[o].Float32[i])))
				}
				if d := maxAbsDiff(got[o].Float32, want); d > 1e-5 {
					t.Errorf("%s: TTA %v, mean of the views %v (max diff %g)", got[o].Name, got[o].Float32, want, d)
				}
				// The mirror is a different view: the test would see a graph
				// that ignored it.
				if moved < 1e-4 {
					t.Errorf("%s: the mirror changes nothing (%g)", got[o].Name, moved)
				}
			}
			if !reflect.DeepEqual(got[0].Shape, []int64{int64(n), classes}) || !reflect.DeepEqual(got[1].Shape, []int64{int64(n)}) {
				t.Errorf("shapes %v %v", got[0].Shape, got[1].Shape)
			}
		})
	}
}

func TestExportWithErrors(t *testing.T) {
	backbone := testassets.Read(t, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	f, err := onnx.FindFeatures(backbone)
	if err != nil {
		t.Fatal(err)
	}
	w, b := randomHead(f.Dim, 2)
	exported, err := onnx.Export(backbone, f, w, b, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := onnx.FindFeatures(exported)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		model    []byte
		f        onnx.Features
		opt      onnx.ExportOptions
		contains string
	}{
		{"unknown view", backbone, f, onnx.ExportOptions{TTA: []string{"rotate"}}, `unknown test-time view "rotate"`},
		{"view twice", backbone, f, onnx.ExportOptions{TTA: []string{"flip", "flip"}}, `"flip" given twice`},
		{"pet score of a 2-class model", exported, ef, onnx.ExportOptions{PetScore: true}, "want float32 [batch, 1000] ImageNet scores"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := onnx.ExportWith(tc.model, tc.f, w, b, 2, nil, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %v, want one containing %q", err, tc.contains)
			}
		})
	}
}

func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
