package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"petbreed"
	"petbreed/internal/onnx"
	"petbreed/internal/testassets"
)

// petModel writes a backbone with a random 3-class head and the pet score,
// its threshold in the metadata.
func petModel(t testing.TB, backbone, threshold string) string {
	t.Helper()
	data := testassets.Read(t, "backbone", backbone)
	f, err := onnx.FindFeatures(data)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	w := make([]float32, 3*f.Dim)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	meta := map[string]string{
		petbreed.MetaLabels:       `["Abyssinian","Bengal","american_bulldog"]`,
		petbreed.MetaPetThreshold: threshold,
	}
	model, err := onnx.ExportWith(data, f, w, make([]float32, 3), 3, meta, onnx.ExportOptions{PetScore: true})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "pet.onnx")
	if err := os.WriteFile(p, model, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPredictPet: predict says which images do not look like a cat or a
// dog, in text and JSON, and still gives their breeds; a model without a
// pet score says nothing of it.
func TestPredictPet(t *testing.T) {
	model := petModel(t, "mobilenetv2-12-int8.onnx", "0.0357")
	cat, parrot := testassets.Path(t, "photos", "chelsea.png"), testassets.Path(t, "photos", "parrot.jpg")

	code, out, errs := cli(t, "predict", "--json", "--model", model, "-k", "2", cat, parrot)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rs := readResults(t, out)
	if len(rs) != 2 {
		t.Fatalf("%d results:\n%s", len(rs), out)
	}
	for i, want := range []bool{true, false} {
		r := rs[i]
		if r.Pet == nil || r.Pet.IsPet != want || r.Pet.Threshold != 0.0357 || len(r.Predictions) != 2 {
			t.Errorf("%s: pet %+v, predictions %v; want is_pet %v", r.File, r.Pet, r.Predictions, want)
		}
	}
	if !strings.Contains(out, `"pet":{"score":`) || !strings.Contains(out, `"is_pet":false`) {
		t.Errorf("JSON:\n%s", out)
	}

	code, out, errs = cli(t, "predict", "--model", model, "-k", "2", cat, parrot)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	parts := strings.SplitN(out, parrot, 2)
	if len(parts) != 2 || strings.Contains(parts[0], "NOT A CAT OR A DOG") ||
		!strings.Contains(parts[1], "NOT A CAT OR A DOG? pet score 0.000, under the model's threshold 0.036") ||
		!strings.Contains(parts[1], "1. ") {
		t.Errorf("text:\n%s", out)
	}

	code, out, _ = cli(t, "predict", "--json", "--model", testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"), parrot)
	if code != 0 || strings.Contains(out, `"pet"`) {
		t.Errorf("a model without a pet score: exit %d\n%s", code, out)
	}

	code, _, errs = cli(t, "predict", "--model", petModel(t, "mobilenetv2-12-int8.onnx", "1.5"), cat)
	if code != 1 || !strings.Contains(errs, `metadata petbreed.pet_threshold is "1.5", want a number in [0,1]`) {
		t.Errorf("a bad threshold: exit %d: %s", code, errs)
	}

	code, out, errs = cli(t, "inspect", model)
	if code != 0 || !strings.Contains(out, "output     pet_score: float32[batch_size]") ||
		!strings.Contains(out, "pet check  pet_score under 0.0357: not a cat or a dog") {
		t.Errorf("inspect: exit %d %s\n%s", code, errs, out)
	}
}
