package classify

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"petbreed"
	"petbreed/internal/features"
	"petbreed/internal/imaging"
	"petbreed/internal/onnx"
	"petbreed/internal/testassets"
)

// exportSeeded writes the backbone with a random head of the given classes
// (drawn from seed) and opt to a temporary file.
func exportSeeded(t testing.TB, backbone string, classes int, seed uint64, opt onnx.ExportOptions) string {
	t.Helper()
	data := testassets.Read(t, "backbone", backbone)
	f, err := onnx.FindFeatures(data)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	w := make([]float32, classes*f.Dim)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.08)
	}
	b := make([]float32, classes)
	for i := range b {
		b[i] = float32(rng.NormFloat64() * 0.2)
	}
	model, err := onnx.ExportWith(data, f, w, b, classes, map[string]string{petbreed.MetaRunID: fmt.Sprint(seed)}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return writeModel(t, model)
}

func ttaOf(views ...features.View) []onnx.TTAView {
	var out []onnx.TTAView
	for _, v := range views {
		s, _ := v.Spec()
		out = append(out, onnx.TTAView{Name: string(v), Crop: s.Crop, X: s.X, Y: s.Y, Flip: s.Flip})
	}
	return out
}

// TestSharedBackbone: a model run as a shared trunk and its head in Go
// gives the probabilities and the pet score of the whole model run by ONNX
// Runtime, to 1e-5, on both real backbones, with and without the pet score
// and test-time views; two heads on one backbone have one key.
func TestSharedBackbone(t *testing.T) {
	imgs := []*imaging.RGB{
		decode(t, "photos", "chelsea.png"),
		decode(t, "pets-3breeds", "images", "Bengal_1.jpg"),
		decode(t, "photos", "parrot.jpg"),
	}
	for _, backbone := range []string{"mobilenetv2-12-int8.onnx", "mobilenetv2-12-fp32-twin.onnx"} {
		for _, tc := range []struct {
			name string
			opt  onnx.ExportOptions
		}{
			{"plain", onnx.ExportOptions{}},
			{"pet", onnx.ExportOptions{PetScore: true}},
			{"pet+tta", onnx.ExportOptions{PetScore: true, TTA: ttaOf(features.Flipped, features.Center192)}},
			{"tta", onnx.ExportOptions{TTA: ttaOf(features.Flipped)}},
		} {
			t.Run(backbone+"/"+tc.name, func(t *testing.T) {
				var key string
				for seed := range uint64(2) {
					path := exportSeeded(t, backbone, 37, seed+1, tc.opt)
					whole, err := Open(path, Options{Threads: 1})
					if err != nil {
						t.Fatal(err)
					}
					defer whole.Close()
					part, err := SplitFile(path, whole.Preprocess())
					if err != nil {
						t.Fatal(err)
					}
					if seed == 0 {
						key = part.Key
					} else if part.Key != key {
						t.Errorf("two heads on one backbone: keys %s and %s", key, part.Key)
					}
					trunk, err := OpenTrunk(part, whole.Preprocess(), Options{Threads: 1})
					if err != nil {
						t.Fatal(err)
					}
					defer trunk.Close()
					tl := whole.TensorLen()
					batch := make([]float32, len(imgs)*tl)
					for i, img := range imgs {
						if err := whole.Prepare(img, batch[i*tl:(i+1)*tl]); err != nil {
							t.Fatal(err)
						}
					}
					want, err := whole.Run(batch, len(imgs))
					if err != nil {
						t.Fatal(err)
					}
					rows, err := trunk.Run(batch, len(imgs))
					if err != nil {
						t.Fatal(err)
					}
					got, err := part.Head.Probabilities(rows)
					if err != nil {
						t.Fatal(err)
					}
					var d, spread float64
					for i := range want {
						if len(got[i]) != len(want[i]) {
							t.Fatalf("image %d: %d classes, want %d", i, len(got[i]), len(want[i]))
						}
						for c := range want[i] {
							d = math.Max(d, math.Abs(float64(got[i][c]-want[i][c])))
							spread = math.Max(spread, math.Abs(float64(want[i][c]-want[0][c])))
						}
						wp, wok := whole.Pet(want[i])
						gp, gok := whole.Pet(got[i])
						if wok != gok || math.Abs(float64(wp.Score-gp.Score)) > 1e-5 {
							t.Errorf("image %d: pet %v %v, whole model %v %v", i, gp, gok, wp, wok)
						}
					}
					t.Logf("seed %d: max |shared - whole| %.3g", seed, d)
					if d > 1e-5 {
						t.Errorf("the shared path differs from the whole model by %g", d)
					}
					if spread < 1e-3 {
						t.Errorf("the images get the same answer (%g): the test would not see a wrong head", spread)
					}
				}
			})
		}
	}
}

func TestSharedBackboneKeys(t *testing.T) {
	int8 := exportSeeded(t, "mobilenetv2-12-int8.onnx", 3, 1, onnx.ExportOptions{})
	fp32 := exportSeeded(t, "mobilenetv2-12-fp32-twin.onnx", 3, 1, onnx.ExportOptions{})
	pet := exportSeeded(t, "mobilenetv2-12-int8.onnx", 3, 2, onnx.ExportOptions{PetScore: true})
	pre := petbreed.DefaultPreprocess()
	key := func(path string, pre petbreed.Preprocess) string {
		p, err := SplitFile(path, pre)
		if err != nil {
			t.Fatal(err)
		}
		return p.Key
	}
	other := pre
	other.Mean[0] += 0.01
	resize := pre
	resize.Resize = 232
	base := key(int8, pre)
	for name, k := range map[string]string{
		"the fp32 twin":         key(fp32, pre),
		"a pet score":           key(pet, pre),
		"another normalisation": key(int8, other),
		"another resize":        key(int8, resize),
	} {
		if k == base {
			t.Errorf("%s has the int8 backbone's key", name)
		}
	}
	// A model petbreed did not export has no head to split off.
	if _, err := SplitFile(testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"), pre); !errors.Is(err, onnx.ErrNoHead) {
		t.Errorf("the backbone itself: %v, want ErrNoHead", err)
	}
	p, err := SplitFile(int8, pre)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Head.Probabilities([][]float32{make([]float32, 10)}); err == nil {
		t.Error("a row of 10 values: no error")
	}
}

// BenchmarkHead is the cost of one model's head in Go on a batch of 32
// images' features (37 classes, 1280 features, the pet score carried):
// what a shadow or a second version of the same backbone adds per batch.
//
//	go test -run XXX -bench BenchmarkHead ./internal/classify/
func BenchmarkHead(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const classes, dim, n = 37, 1280, 32
	h := &Head{w: make([]float32, classes*dim), b: make([]float32, classes), classes: classes, dim: dim, views: 1, pet: true}
	for i := range h.w {
		h.w[i] = float32(rng.NormFloat64() * 0.05)
	}
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = make([]float32, dim+1)
		for d := range rows[i] {
			rows[i][d] = float32(rng.Float64() * 3)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.Probabilities(rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/image")
}

// BenchmarkTrunk compares a model run whole with the same model run as its
// trunk and its head in Go, at batch 32 (a 37-class head with the pet
// score, as the pipeline exports), on both backbones: what a model pays for
// going onto a shared trunk.
//
//	go test -run XXX -bench BenchmarkTrunk -benchtime 10x ./internal/classify/
func BenchmarkTrunk(b *testing.B) {
	const n = 32
	img := decode(b, "pets-3breeds", "images", "Bengal_1.jpg")
	for _, backbone := range []string{"mobilenetv2-12-int8.onnx", "mobilenetv2-12-fp32-twin.onnx"} {
		path := exportSeeded(b, backbone, 37, 1, onnx.ExportOptions{PetScore: true})
		whole, err := Open(path, Options{LowMemory: true})
		if err != nil {
			b.Fatal(err)
		}
		part, err := SplitFile(path, whole.Preprocess())
		if err != nil {
			b.Fatal(err)
		}
		trunk, err := OpenTrunk(part, whole.Preprocess(), Options{LowMemory: true})
		if err != nil {
			b.Fatal(err)
		}
		tl := whole.TensorLen()
		batch := make([]float32, n*tl)
		for i := range n {
			if err := whole.Prepare(img, batch[i*tl:(i+1)*tl]); err != nil {
				b.Fatal(err)
			}
		}
		for _, mode := range []string{"whole", "trunk+head"} {
			b.Run(backbone+"/"+mode, func(b *testing.B) {
				for b.Loop() {
					if mode == "whole" {
						if _, err := whole.Run(batch, n); err != nil {
							b.Fatal(err)
						}
						continue
					}
					rows, err := trunk.Run(batch, n)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := part.Head.Probabilities(rows); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
			})
		}
		whole.Close()
		trunk.Close()
	}
}
