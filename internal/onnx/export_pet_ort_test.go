package onnx_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"petbreed/internal/features"
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

// ttaViews are package features' views as the export takes them.
func ttaViews(t testing.TB, names ...features.View) []onnx.TTAView {
	var out []onnx.TTAView
	for _, v := range names {
		s, ok := v.Spec()
		if !ok {
			t.Fatalf("no view %q", v)
		}
		out = append(out, onnx.TTAView{Name: string(v), Crop: s.Crop, X: s.X, Y: s.Y, Flip: s.Flip})
	}
	return out
}

// TestExportTTAORT: the graph's answer with test-time views is the mean of
// the exported model's answers on each view, run apart, the views made by
// package features' Go reference (View.Apply): the mirror alone, and the
// mirror with a centre zoom, its mirror and two corner crops.
func TestExportTTAORT(t *testing.T) {
	images := []string{
		testassets.Path(t, "photos", "chelsea.png"),
		testassets.Path(t, "photos", "parrot.jpg"),
		testassets.Path(t, "pets-3breeds", "images", "Bengal_1.jpg"),
	}
	batch := imageBatch(t, images...)
	n := len(images)
	const size = 224
	shape := []int64{int64(n), 3, size, size}
	for _, name := range backbones {
		for _, views := range [][]features.View{
			{features.Flipped},
			{features.Flipped, features.Center192, features.Center192Flipped, features.TopLeft192, features.BottomRight192},
		} {
			t.Run(fmt.Sprintf("%s/%d views", name, 1+len(views)), func(t *testing.T) {
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
				tta, err := onnx.ExportWith(backbone, f, w, b, classes, nil, onnx.ExportOptions{PetScore: true, TTA: ttaViews(t, views...)})
				if err != nil {
					t.Fatal(err)
				}
				s := openBytes(t, "single.onnx", single, onnxrt.Options{})
				var each [][]onnxrt.Output
				var stacked []float32 // the views, as the Go reference makes them
				for _, v := range append([]features.View{features.Original}, views...) {
					in := make([]float32, len(batch))
					for i := 0; i < n; i++ {
						one := 3 * size * size
						if err := v.Apply(batch[i*one:(i+1)*one], in[i*one:(i+1)*one], size); err != nil {
							t.Fatal(err)
						}
					}
					stacked = append(stacked, in...)
					out, err := s.Run(in, shape)
					if err != nil {
						t.Fatal(err)
					}
					each = append(each, out)
				}
				got, err := openBytes(t, "tta.onnx", tta, onnxrt.Options{ExtraOutputs: []string{"tta_views"}}).Run(batch, shape)
				if err != nil {
					t.Fatal(err)
				}
				// The graph makes the views the Go reference makes (ONNX
				// Resize, linear, half_pixel, up to float rounding).
				if len(got) != 3 || len(got[2].Float32) != len(stacked) {
					t.Fatalf("outputs %d, views %v", len(got), got[len(got)-1].Shape)
				}
				dv := maxAbsDiff(got[2].Float32, float64s(stacked))
				t.Logf("views: max |graph - Go| %.3g", dv)
				if dv > 1e-4 {
					t.Errorf("the graph's views differ from View.Apply's by %g", dv)
				}
				// The int8 backbone quantizes its input: a crop's resized
				// pixels, a rounding away from the Go reference's, can fall
				// on the other side of a quantization step, and the int8
				// network turns that into differences of a few 0.01 in its
				// answers. The fp32 twin agrees to float rounding.
				tolerance := 1e-5
				if f.Quantized && len(views) > 1 {
					tolerance = 0.05
				}
				for o, size := range []int{n * classes, n} {
					if len(got[o].Float32) != size {
						t.Fatalf("output %s: %v", got[o].Name, got[o].Shape)
					}
					want := make([]float64, size)
					var moved float64
					for i := range want {
						for _, e := range each {
							want[i] += float64(e[o].Float32[i]) / float64(len(each))
							moved = math.Max(moved, math.Abs(float64(e[o].Float32[i]-each[0][o].Float32[i])))
						}
					}
					d := maxAbsDiff(got[o].Float32, want)
					t.Logf("%s: max |graph - mean of the views run apart| %.3g (the views differ by up to %.3g)", got[o].Name, d, moved)
					if d > tolerance {
						t.Errorf("%s: TTA %v, mean of the views %v (max diff %g)", got[o].Name, got[o].Float32, want, d)
					}
					// The views are different: the test would see a graph
					// that ignored them.
					if moved < 1e-4 {
						t.Errorf("%s: the views change nothing (%g)", got[o].Name, moved)
					}
				}
				if !reflect.DeepEqual(got[0].Shape, []int64{int64(n), classes}) || !reflect.DeepEqual(got[1].Shape, []int64{int64(n)}) {
					t.Errorf("shapes %v %v", got[0].Shape, got[1].Shape)
				}
			})
		}
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
		{"the image itself", backbone, f, onnx.ExportOptions{TTA: []onnx.TTAView{{Name: "orig"}}}, `"orig" is the image itself`},
		{"view twice", backbone, f, onnx.ExportOptions{TTA: []onnx.TTAView{onnx.MirrorView(), onnx.MirrorView()}}, `"flip" given twice`},
		{"crop outside", backbone, f, onnx.ExportOptions{TTA: []onnx.TTAView{{Name: "c", Crop: 200, X: 30}}}, "outside the 224x224 image"},
		{"no name", backbone, f, onnx.ExportOptions{TTA: []onnx.TTAView{{Flip: true}}}, "has no name"},
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
