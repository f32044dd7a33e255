package classify

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"petbreed"
	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/onnx"
	"petbreed/internal/testassets"
)

func TestPetThreshold(t *testing.T) {
	scores := make([]float32, 400)
	for i := range scores {
		scores[i] = float32(i+1) / 400 // 0.0025 ... 1
	}
	for _, tc := range []struct {
		scores []float32
		accept float64
		want   float32
	}{
		{scores, 0.995, scores[2]}, // two of 400 below it
		{scores, 1, scores[0]},
		{scores, 0.5, scores[200]},
		{[]float32{0.9, 0.2, 0.95}, 0.995, 0.2},
		{[]float32{0.7}, 0.995, 0.7},
	} {
		got, err := PetThreshold(tc.scores, tc.accept)
		if err != nil || got != tc.want {
			t.Errorf("PetThreshold(%d scores, %v) = %v, %v; want %v", len(tc.scores), tc.accept, got, err, tc.want)
		}
		var in int
		for _, s := range tc.scores {
			if s >= got {
				in++
			}
		}
		if float64(in) < tc.accept*float64(len(tc.scores))-1e-9 {
			t.Errorf("threshold %v accepts %d of %d, want at least %v", got, in, len(tc.scores), tc.accept)
		}
	}
	for _, tc := range []struct {
		scores []float32
		accept float64
	}{
		{nil, 0.995},
		{scores, 0},
		{scores, 1.5},
		{[]float32{0.5, float32(math.NaN())}, 0.995},
	} {
		if _, err := PetThreshold(tc.scores, tc.accept); err == nil {
			t.Errorf("PetThreshold(%v, %v): no error", tc.scores, tc.accept)
		}
	}
}

// exportPet writes the backbone with a random 3-class head, the pet score
// and meta to a temporary file.
func exportPet(t testing.TB, backbone string, opt onnx.ExportOptions, meta map[string]string) string {
	t.Helper()
	data := testassets.Read(t, "backbone", backbone)
	f, err := onnx.FindFeatures(data)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	w := make([]float32, 3*f.Dim)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	if meta == nil {
		meta = map[string]string{}
	}
	meta[petbreed.MetaLabels] = `["Abyssinian","Bengal","american_bulldog"]`
	model, err := onnx.ExportWith(data, f, w, []float32{0, 0, 0}, 3, meta, opt)
	if err != nil {
		t.Fatal(err)
	}
	return writeModel(t, model)
}

// writeModel writes a model to a temporary file and returns its path.
func writeModel(t testing.TB, model []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(p, model, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPetCheck(t *testing.T) {
	imgs := []string{"chelsea.png", "parrot.jpg"}
	for _, tc := range []struct {
		name      string
		opt       onnx.ExportOptions
		meta      map[string]string
		hasPet    bool
		threshold float32
	}{
		{"no pet output", onnx.ExportOptions{}, nil, false, 0},
		{"calibrated", onnx.ExportOptions{PetScore: true}, map[string]string{petbreed.MetaPetThreshold: "0.25"}, true, 0.25},
		{"no threshold", onnx.ExportOptions{PetScore: true}, nil, true, DefaultPetThreshold},
		{"with tta", onnx.ExportOptions{PetScore: true, TTA: []onnx.TTAView{onnx.MirrorView()}}, map[string]string{petbreed.MetaPetThreshold: "0.3"}, true, 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(exportPet(t, "mobilenetv2-12-int8.onnx", tc.opt, tc.meta), Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.HasPet() != tc.hasPet {
				t.Fatalf("HasPet = %v", c.HasPet())
			}
			if err := c.CheckServable(); err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, p := range imgs {
				paths = append(paths, testassets.Path(t, "photos", p))
			}
			var got []Result
			if err := c.ClassifyFiles(context.Background(), paths, FilesOptions{TopK: 2}, func(r Result) { got = append(got, r) }); err != nil {
				t.Fatal(err)
			}
			for i, r := range got {
				if r.Err != nil || len(r.Predictions) != 2 {
					t.Fatalf("%s: %v %v", imgs[i], r.Err, r.Predictions)
				}
				if !tc.hasPet {
					if r.Pet != nil {
						t.Errorf("%s: pet check %+v from a model without a pet score", imgs[i], r.Pet)
					}
					continue
				}
				if r.Pet == nil || r.Pet.Threshold != tc.threshold || r.Pet.IsPet != (i == 0) {
					t.Errorf("%s: pet check %+v, want threshold %v, is_pet %v", imgs[i], r.Pet, tc.threshold, i == 0)
				}
			}
		})
	}
	for _, bad := range []string{"x", "1.5", "-0.1", "NaN"} {
		_, err := Open(exportPet(t, "mobilenetv2-12-int8.onnx", onnx.ExportOptions{PetScore: true},
			map[string]string{petbreed.MetaPetThreshold: bad}), Options{Threads: 1})
		if err == nil || !strings.Contains(err.Error(), petbreed.MetaPetThreshold) {
			t.Errorf("threshold %q: error %v", bad, err)
		}
	}
	// A row that Run did not give has no pet check.
	c, err := Open(exportPet(t, "mobilenetv2-12-int8.onnx", onnx.ExportOptions{PetScore: true}, nil), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.Pet([]float32{0.2, 0.3, 0.5}); ok {
		t.Error("Pet of a plain row")
	}
	if _, ok := c.Pet(make([]float32, 3, 5)); ok {
		t.Error("Pet of a row with room after it")
	}
	img := decode(t, "photos", "chelsea.png")
	batch := make([]float32, c.TensorLen())
	if err := c.Prepare(img, batch); err != nil {
		t.Fatal(err)
	}
	rows, err := c.Run(batch, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := c.Pet(rows[0]); !ok || !p.IsPet || len(rows[0]) != 3 {
		t.Errorf("Pet of Run's row: %+v %v, row %v", p, ok, rows[0])
	}
	if _, ok := c.Pet(append(make([]float32, 0, 5), rows[0]...)); ok {
		t.Error("Pet of a copy of Run's row")
	}
}

// nonPets lists the non-pet photos: the non-pets set by its manifest's
// category, and photos/ without a cat or a dog.
func nonPets(t testing.TB) (paths, cats []string) {
	dir := testassets.Path(t, "non-pets")
	f, err := os.Open(filepath.Join(dir, "manifest.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma, r.LazyQuotes = '\t', true
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		paths = append(paths, filepath.Join(dir, "images", row[0]))
		cats = append(cats, row[2])
	}
	for _, p := range []string{"parrot.jpg", "grace_hopper.bmp"} {
		paths = append(paths, testassets.Path(t, "photos", p))
		cats = append(cats, "photos")
	}
	return paths, cats
}

// TestPetDetection calibrates the threshold on pets-3breeds' trainval
// images (PetAccept of them), then measures it on the test split (all pets:
// accepted) and on photos without a cat or a dog (flagged), for both
// backbones. The figures are in docs/training.md.
func TestPetDetection(t *testing.T) {
	for _, backbone := range []string{"mobilenetv2-12-int8.onnx", "mobilenetv2-12-fp32-twin.onnx"} {
		t.Run(backbone, func(t *testing.T) {
			if testing.Short() && strings.Contains(backbone, "fp32") {
				t.Skip("the fp32 backbone costs 4x: not in -short")
			}
			ds, err := dataset.Load(testassets.Path(t, "pets-3breeds"))
			if err != nil {
				t.Fatal(err)
			}
			ext, err := features.NewExtractor(testassets.Path(t, "backbone", backbone), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer ext.Close()
			cache, err := features.OpenCache(t.TempDir(), ext)
			if err != nil {
				t.Fatal(err)
			}
			res, err := features.Compute(context.Background(), ext, cache, ds.TrainVal, features.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var x []float32
			for i, ok := range res.OK {
				if ok {
					x = append(x, res.X[features.Original][i*res.Dim:(i+1)*res.Dim]...)
				}
			}
			n := len(x) / res.Dim
			cal, err := CalibratePet(ext.Model(), ext.Features(), x, n, PetAccept)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("calibrated on %d trainval pets: threshold %.4g accepts %d (%.1f%%)", cal.Images, cal.Threshold,
				cal.Accepted, 100*float64(cal.Accepted)/float64(cal.Images))
			if float64(cal.Accepted) < PetAccept*float64(cal.Images) {
				t.Errorf("the threshold accepts %d of %d training pets", cal.Accepted, cal.Images)
			}

			c, err := Open(exportPet(t, backbone, onnx.ExportOptions{PetScore: true}, cal.Meta()), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.PetThreshold() != cal.Threshold {
				t.Fatalf("the model's threshold %v, calibrated %v", c.PetThreshold(), cal.Threshold)
			}
			score := func(paths []string) []Result {
				var out []Result
				err := c.ClassifyFiles(context.Background(), paths, FilesOptions{TopK: 1}, func(r Result) { out = append(out, r) })
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range out {
					if r.Err != nil || r.Pet == nil {
						t.Fatalf("%s: %v, pet %v", r.Path, r.Err, r.Pet)
					}
				}
				return out
			}
			var testPaths []string
			for _, s := range ds.Test {
				testPaths = append(testPaths, s.Path)
			}
			accepted := 0
			for _, r := range score(testPaths) {
				if r.Pet.IsPet {
					accepted++
				} else {
					t.Logf("  test pet flagged: %s (score %.4f)", filepath.Base(r.Path), r.Pet.Score)
				}
			}
			acceptRate := float64(accepted) / float64(len(testPaths))

			paths, cats := nonPets(t)
			flaggedBy, totalBy := map[string]int{}, map[string]int{}
			flagged := 0
			for i, r := range score(paths) {
				totalBy[cats[i]]++
				if !r.Pet.IsPet {
					flagged++
					flaggedBy[cats[i]]++
				} else {
					t.Logf("  non-pet accepted: %s (%s, score %.4f, %s)", filepath.Base(r.Path), cats[i], r.Pet.Score, r.Predictions[0].Label)
				}
			}
			flagRate := float64(flagged) / float64(len(paths))
			var by []string
			for k := range totalBy {
				by = append(by, fmt.Sprintf("%s %d/%d", k, flaggedBy[k], totalBy[k]))
			}
			sort.Strings(by)
			t.Logf("%s: test pets accepted %d/%d (%.1f%%); non-pets flagged %d/%d (%.1f%%): %s", backbone,
				accepted, len(testPaths), 100*acceptRate, flagged, len(paths), 100*flagRate, strings.Join(by, ", "))
			if acceptRate < 0.99 {
				t.Errorf("test pets accepted %.1f%%, want at least 99%%", 100*acceptRate)
			}
			if flagRate < 0.90 {
				t.Errorf("non-pets flagged %.1f%%, want at least 90%%", 100*flagRate)
			}
		})
	}
}
