package classify

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"petbreed"
	"petbreed/internal/imaging"
	"petbreed/internal/onnx"
	"petbreed/internal/testassets"
)

// openBackbone opens the real ImageNet MobileNetV2 (int8) with its labels.
func openBackbone(t testing.TB) *Classifier {
	t.Helper()
	labels, err := LoadLabels(testassets.Path(t, "backbone", "imagenet_labels.txt"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"), Options{Labels: labels, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// classifyImages prepares, runs and ranks decoded images: what predict and
// serve do through the engine, in its simplest form for the tests.
func classifyImages(c *Classifier, imgs []*imaging.RGB, k int) ([][]petbreed.Prediction, error) {
	n := c.TensorLen()
	batch := make([]float32, len(imgs)*n)
	for i, img := range imgs {
		if err := c.Prepare(img, batch[i*n:(i+1)*n]); err != nil {
			return nil, err
		}
	}
	probs, err := c.Run(batch, len(imgs))
	if err != nil {
		return nil, err
	}
	out := make([][]petbreed.Prediction, len(probs))
	for i, p := range probs {
		out[i] = c.TopK(p, k)
	}
	return out, nil
}

func decode(t testing.TB, elem ...string) *imaging.RGB {
	t.Helper()
	img, _, err := imaging.Decode(testassets.Read(t, elem...), imaging.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestEgyptianCat is the real check: the shared backbone names the cat in
// chelsea.png and cat_720p.jpg "Egyptian cat".
func TestEgyptianCat(t *testing.T) {
	c := openBackbone(t)
	imgs := []*imaging.RGB{decode(t, "photos", "chelsea.png"), decode(t, "photos", "cat_720p.jpg")}
	preds, err := classifyImages(c, imgs, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range preds {
		if len(p) != 5 {
			t.Fatalf("image %d: %d predictions, want 5", i, len(p))
		}
		if p[0].Label != "Egyptian cat" || p[0].Index != 285 {
			t.Errorf("image %d: top-1 %+v, want Egyptian cat (285)", i, p[0])
		}
		for j := 1; j < len(p); j++ {
			if p[j].Probability > p[j-1].Probability {
				t.Errorf("image %d: predictions not sorted: %+v", i, p)
			}
		}
		t.Logf("image %d: %+v", i, p[:3])
	}
}

// TestBatchMatchesSingle: an image's probabilities do not depend on what
// else is in its batch, nor on its position.
func TestBatchMatchesSingle(t *testing.T) {
	c := openBackbone(t)
	imgs := []*imaging.RGB{
		decode(t, "photos", "chelsea.png"),
		decode(t, "photos", "parrot.jpg"),
		decode(t, "photos", "grace_hopper.bmp"),
		decode(t, "pets-3breeds", "images", "Abyssinian_34.jpg"),
	}
	n := c.TensorLen()
	batch := make([]float32, len(imgs)*n)
	for i, img := range imgs {
		if err := c.Prepare(img, batch[i*n:(i+1)*n]); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.Run(batch, len(imgs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range imgs {
		one, err := c.Run(batch[i*n:(i+1)*n], 1)
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for j := range one[0] {
			sum += float64(all[i][j])
			if d := math.Abs(float64(one[0][j] - all[i][j])); d > 1e-5 {
				t.Fatalf("image %d class %d: batch %v, alone %v", i, j, all[i][j], one[0][j])
			}
		}
		if math.Abs(sum-1) > 1e-4 {
			t.Errorf("image %d: probabilities sum to %v", i, sum)
		}
	}
	if _, err := c.Run(batch[:n+1], 1); err == nil {
		t.Error("a batch of the wrong length was accepted")
	}
}

func TestClassifyFiles(t *testing.T) {
	c := openBackbone(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "notes.jpg")
	os.WriteFile(bad, []byte("not an image"), 0o644)
	photos := testassets.Path(t, "photos")
	paths := []string{
		filepath.Join(photos, "chelsea.png"),
		bad,
		filepath.Join(photos, "parrot.jpg"),
		filepath.Join(dir, "missing.png"),
		filepath.Join(photos, "cat_720p.jpg"),
		testassets.Path(t, "pets-3breeds", "images", "Abyssinian_34.jpg"), // a GIF
		testassets.Path(t, "pets-3breeds", "images", "Abyssinian_5.jpg"),  // a PNG with alpha
	}
	want := []string{"Egyptian cat", "", "macaw", "", "Egyptian cat", "*cat", "*cat"}
	for _, batch := range []int{1, 2, 32} {
		var got []Result
		err := c.ClassifyFiles(context.Background(), paths, FilesOptions{TopK: 3, BatchSize: batch, Workers: 3},
			func(r Result) { got = append(got, r) })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(paths) {
			t.Fatalf("batch %d: %d results for %d files", batch, len(got), len(paths))
		}
		for i, r := range got {
			if r.Path != paths[i] {
				t.Fatalf("batch %d: result %d is %s, want %s (order lost)", batch, i, r.Path, paths[i])
			}
			switch w := want[i]; {
			case w == "":
				if r.Err == nil {
					t.Errorf("batch %d: %s: no error", batch, r.Path)
				}
			case r.Err != nil:
				t.Errorf("batch %d: %s: %v", batch, r.Path, r.Err)
			case strings.HasPrefix(w, "*"):
				if !strings.HasSuffix(r.Predictions[0].Label, strings.TrimPrefix(w, "*")) && !strings.Contains(r.Predictions[0].Label, "cat") {
					t.Errorf("batch %d: %s: top-1 %q is not a cat", batch, r.Path, r.Predictions[0].Label)
				}
			default:
				if r.Predictions[0].Label != w {
					t.Errorf("batch %d: %s: top-1 %q, want %q", batch, r.Path, r.Predictions[0].Label, w)
				}
			}
		}
	}
}

func TestSoftmax(t *testing.T) {
	tests := []struct {
		name string
		in   []float32
		want []float32
	}{
		{"uniform", []float32{0, 0, 0, 0}, []float32{0.25, 0.25, 0.25, 0.25}},
		{"huge logits stay finite", []float32{1000, 1000 + float32(math.Log(3))}, []float32{0.25, 0.75}},
		{"very negative", []float32{-1e30, 0}, []float32{0, 1}},
		{"already a distribution", []float32{0.1, 0.2, 0.7}, []float32{0.1, 0.2, 0.7}},
		{"non-negative but not summing to one", []float32{0.5, 0.5, 0.5}, []float32{1.0 / 3, 1.0 / 3, 1.0 / 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := append([]float32(nil), tt.in...)
			if !isDistribution(row) {
				softmax(row)
			}
			for i := range row {
				if math.IsNaN(float64(row[i])) || math.Abs(float64(row[i]-tt.want[i])) > 1e-4 {
					t.Fatalf("got %v, want %v", row, tt.want)
				}
			}
		})
	}
}

func TestParseLabels(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		err      bool
	}{
		{"lines", "cat\ndog\r\nbird\n", []string{"cat", "dog", "bird"}, false},
		{"json object", `{"classes": ["Abyssinian", "Bengal"]}`, []string{"Abyssinian", "Bengal"}, false},
		{"json array", `["a","b"]`, []string{"a", "b"}, false},
		{"json without classes", `{"labels": ["a"]}`, nil, true},
		{"blank line inside", "a\n\nb", nil, true},
		{"empty", "  \n", nil, true},
		{"bad json", `{"classes": [1, 2]}`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLabels([]byte(tt.in))
			if (err != nil) != tt.err || strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, %v; want %q, err %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestOpenOptions(t *testing.T) {
	model := testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")
	// No labels anywhere: classes are indices.
	c, err := Open(model, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.HasLabels() || len(c.Classes()) != 1000 || c.Classes()[285] != "285" || c.Label(7) != "7" {
		t.Errorf("unlabelled model: %v", c.Classes()[:3])
	}
	if _, err := Open(model, Options{Labels: []string{"a", "b"}}); err == nil || !strings.Contains(err.Error(), "2 labels") {
		t.Errorf("label count mismatch: %v", err)
	}
	bad := petbreed.DefaultPreprocess()
	bad.Size = 200
	if _, err := Open(model, Options{Preprocess: &bad}); err == nil {
		t.Error("a preprocessing of the wrong size for the model was accepted")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none.onnx"), Options{}); err == nil {
		t.Error("a missing model opened")
	}
}

// TestWebPAndBMPClassify: the formats beyond JPEG, PNG and GIF classify too.
func TestWebPAndBMPClassify(t *testing.T) {
	bin, err := exec.LookPath("cwebp")
	if err != nil {
		t.Skip("cwebp not installed (scripts/deps.sh installs it)")
	}
	webp := filepath.Join(t.TempDir(), "chelsea.webp")
	if out, err := exec.Command(bin, "-quiet", "-q", "85", testassets.Path(t, "photos", "chelsea.png"), "-o", webp).CombinedOutput(); err != nil {
		t.Fatalf("cwebp: %v %s", err, out)
	}
	c := openBackbone(t)
	var got []Result
	err = c.ClassifyFiles(context.Background(), []string{webp, testassets.Path(t, "photos", "grace_hopper.bmp")},
		FilesOptions{TopK: 1}, func(r Result) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Err != nil || got[0].Info.Format != "webp" || got[0].Predictions[0].Label != "Egyptian cat" {
		t.Errorf("webp: %+v", got[0])
	}
	if got[1].Err != nil || got[1].Info.Format != "bmp" || !strings.Contains(got[1].Predictions[0].Label, "uniform") && !strings.Contains(got[1].Predictions[0].Label, "bow tie") {
		t.Errorf("bmp: %+v", got[1])
	}
}

// TestModelMetadata: a model carrying its labels and preprocessing in its
// metadata is used with them, without any flag.
func TestModelMetadata(t *testing.T) {
	backbone := testassets.Read(t, "backbone", "mobilenetv2-12-int8.onnx")
	labels, err := LoadLabels(testassets.Path(t, "backbone", "imagenet_labels.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pre := petbreed.DefaultPreprocess()
	pre.Mode, pre.Filter = petbreed.ModeSquash, "bicubic"
	lj, _ := json.Marshal(labels)
	pj, _ := json.Marshal(pre)
	model, err := onnx.SetMetadata(backbone, map[string]string{petbreed.MetaLabels: string(lj), petbreed.MetaPreprocess: string(pj)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "with-metadata.onnx")
	if err := os.WriteFile(path, model, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Preprocess() != pre || !c.HasLabels() || c.Label(285) != "Egyptian cat" {
		t.Fatalf("metadata not used: %+v, label %q", c.Preprocess(), c.Label(285))
	}
	// Prepare really applies the model's transform: squash bicubic.
	img := decode(t, "photos", "chelsea.png")
	got := make([]float32, c.TensorLen())
	if err := c.Prepare(img, got); err != nil {
		t.Fatal(err)
	}
	seen, _ := imaging.Apply(img, pre)
	want := make([]float32, c.TensorLen())
	imaging.Normalize(seen, pre.Mean, pre.Std, want)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d: %v, want %v (squash bicubic)", i, got[i], want[i])
		}
	}
	preds, err := classifyImages(c, []*imaging.RGB{img}, 1)
	if err != nil || preds[0][0].Label != "Egyptian cat" {
		t.Errorf("%v %v", preds, err)
	}
	// Options override the metadata.
	crop := petbreed.DefaultPreprocess()
	c2, err := Open(path, Options{Preprocess: &crop, Labels: classes1000()})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Preprocess() != crop || c2.Label(3) != "label3" {
		t.Errorf("override: %+v %q", c2.Preprocess(), c2.Label(3))
	}
	// Broken metadata is an error, not a silent default.
	bad, _ := onnx.SetMetadata(backbone, map[string]string{petbreed.MetaPreprocess: `{"mode": "zoom"}`})
	os.WriteFile(path, bad, 0o644)
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "zoom") {
		t.Errorf("bad preprocess metadata: %v", err)
	}
}

func classes1000() []string {
	out := make([]string, 1000)
	for i := range out {
		out[i] = "label" + strconv.Itoa(i)
	}
	return out
}
