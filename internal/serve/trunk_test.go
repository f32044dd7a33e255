package serve

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"petbreed/internal/classify"
	"petbreed/internal/imaging"
	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
)

// wholeAnswers runs a model file whole (its own ONNX Runtime session, as
// `petbreed predict` does) on images prepared by its own preprocessing.
func wholeAnswers(t *testing.T, path string, images [][]byte) [][]float32 {
	t.Helper()
	clf, err := classify.Open(path, classify.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	tl := clf.TensorLen()
	batch := make([]float32, len(images)*tl)
	for i, data := range images {
		img, _, err := imaging.Decode(data, imaging.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := clf.Prepare(img, batch[i*tl:(i+1)*tl]); err != nil {
			t.Fatal(err)
		}
	}
	probs, err := clf.Run(batch, len(images))
	if err != nil {
		t.Fatal(err)
	}
	return probs
}

// served answers images one request each, concurrently (so the server
// batches them, the two versions' requests together), through the path the
// HTTP adapters call.
func servedAnswers(t *testing.T, ts *testServer, name string, images [][]byte) [][]float32 {
	t.Helper()
	out := make([][]float32, len(images))
	var wg sync.WaitGroup
	for i, img := range images {
		wg.Go(func() {
			sl := ts.slotByName(name)
			m := sl.acquire()
			c := ts.newCall(context.Background(), m)
			defer c.release()
			probs, err := c.PredictImages(context.Background(), [][]byte{img})
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			out[i] = probs[0]
		})
	}
	wg.Wait()
	return out
}

func maxDiff(t *testing.T, clf *classify.Classifier, got, want [][]float32) float64 {
	t.Helper()
	var d float64
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("image %d: %d classes, want %d", i, len(got[i]), len(want[i]))
		}
		for c := range want[i] {
			d = math.Max(d, math.Abs(float64(got[i][c]-want[i][c])))
		}
		gp, gok := clf.Pet(got[i])
		wp, wok := clf.Pet(want[i])
		if gok != wok {
			t.Fatalf("image %d: pet score %v, the whole model's %v", i, gok, wok)
		}
		d = math.Max(d, math.Abs(float64(gp.Score-wp.Score)))
	}
	return d
}

// TestSharedBackboneServe: two real pipeline-trained versions of one
// backbone run it once (one trunk, one batcher); each answers what it
// answers run whole, to 1e-5, probabilities and pet score; a shadow of the
// same backbone runs only its head on the primary's features (no model run
// of its own) and records the same answers; --share-backbone=false runs
// every model whole.
func TestSharedBackboneServe(t *testing.T) {
	dir, _ := twoVersions(t)
	var images [][]byte
	for _, name := range breedImages[:10] {
		images = append(images, petImage(t, name))
	}

	ts := startAll(t, Config{Models: twoModels(1, 1), TrackingURI: dir})
	champ, chal := ts.slotByName("champion").current(), ts.slotByName("challenger").current()
	if champ.trunk == nil || champ.trunk != chal.trunk || len(ts.trunks) != 1 || champ.trunk.users != 2 {
		t.Fatalf("the two versions do not share one trunk: %p %p, %d trunks", champ.trunk, chal.trunk, len(ts.trunks))
	}
	var h healthAnswer
	get(t, ts.URL+"/api/health").json(t, &h)
	if k := h.Models[0].Model.SharedBackbone; k == "" || k != h.Models[1].Model.SharedBackbone {
		t.Errorf("health: shared backbones %q and %q", k, h.Models[1].Model.SharedBackbone)
	}
	clf, err := classify.Open(champ.path, classify.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	for _, m := range []*model{champ, chal} {
		want := wholeAnswers(t, m.path, images)
		got := servedAnswers(t, ts, m.desc.Name, images)
		d := maxDiff(t, clf, got, want)
		t.Logf("%s: max |shared - whole| %.3g", m.desc.Name, d)
		if d > 1e-5 {
			t.Errorf("%s: the shared path differs from the whole model by %g", m.desc.Name, d)
		}
	}
	// The versions are different models: the test would see one head
	// answering for both.
	if d := maxDiff(t, clf, wholeAnswers(t, chal.path, images), wholeAnswers(t, champ.path, images)); d < 1e-3 {
		t.Fatalf("champion and challenger answer alike (%g)", d)
	}

	// Apart, each version has its own session and batcher.
	apart := startAll(t, Config{Models: twoModels(1, 1), TrackingURI: dir, SeparateBackbones: true})
	a, b := apart.slotByName("champion").current(), apart.slotByName("challenger").current()
	if a.trunk != nil || b.trunk != nil || a.batch == b.batch || len(apart.trunks) != 0 {
		t.Errorf("SeparateBackbones: trunks %p %p", a.trunk, b.trunk)
	}
	var ha healthAnswer
	get(t, apart.URL+"/api/health").json(t, &ha)
	if ha.Models[0].Model.SharedBackbone != "" {
		t.Errorf("apart, health says %q", ha.Models[0].Model.SharedBackbone)
	}
	if d := maxDiff(t, clf, servedAnswers(t, apart, "challenger", images), wholeAnswers(t, b.path, images)); d > 1e-5 {
		t.Errorf("apart: the challenger differs from itself run whole by %g", d)
	}

	// Closing the server stops the trunk.
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if len(ts.trunks) != 0 {
		t.Errorf("%d trunks left after Close", len(ts.trunks))
	}
}

// TestSharedBackboneShadow: a full shadow of the same backbone costs no
// model run: it gets every copy (none dropped at 8 clients at once) and
// answers what the challenger answers run whole.
func TestSharedBackboneShadow(t *testing.T) {
	dir, _ := twoVersions(t)
	rec := &recorder{}
	models := []ModelSpec{{Name: "champion", URI: "models:/pet-breed@champion", Weight: 1},
		{Name: "shadow", URI: "models:/pet-breed@challenger", Shadow: true}}
	ts := startAll(t, Config{Models: models, TrackingURI: dir, PredictionLog: rec})
	champ, shadow := ts.slotByName("champion").current(), ts.slotByName("shadow").current()
	if shadow.head == nil || shadow.trunkKey != champ.trunkKey || shadow.trunk != champ.trunk {
		t.Fatalf("the shadow does not share the champion's backbone")
	}
	var images [][]byte
	for _, name := range breedImages[:8] {
		images = append(images, petImage(t, name))
	}
	const rounds = 3
	var wg sync.WaitGroup
	ids := make([][]string, len(images))
	for i, img := range images {
		wg.Go(func() {
			for r := range rounds {
				res := post(t, ts.URL+"/api/predict", img, map[string]string{"X-User-Id": fmt.Sprint("u", i)})
				var a predictAnswer
				res.json(t, &a)
				if res.status != 200 || a.Model.Name != "champion" {
					t.Errorf("round %d image %d: %s", r, i, res)
				}
				ids[i] = append(ids[i], a.RequestID)
			}
		})
	}
	wg.Wait()
	n := len(images) * rounds
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.records()) < 2*n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	want := wholeAnswers(t, shadow.path, images)
	byID := map[string]int{}
	for i, list := range ids {
		for _, id := range list {
			byID[id] = i
		}
	}
	var shadows int
	for _, r := range rec.records() {
		if !r.Shadow {
			continue
		}
		shadows++
		i, ok := byID[r.RequestID]
		if !ok || r.Model != "shadow" {
			t.Fatalf("shadow record %+v", r)
		}
		top := r.TopK[0]
		if d := math.Abs(float64(top.Probability - want[i][top.Index])); d > 1e-5 {
			t.Errorf("image %d: the shadow's %s %.6f, the challenger run whole %.6f", i, top.Label, top.Probability, want[i][top.Index])
		}
	}
	if shadows != n {
		t.Errorf("%d shadow records, want %d (none dropped)", shadows, n)
	}
	if v, _ := metric(t, ts.URL, `petbreed_shadow_dropped_total{model="shadow"}`); v != 0 {
		t.Errorf("%v shadow copies dropped", v)
	}
	// The backbone ran each image once: for the champion, not the shadow.
	if images, _ := metric(t, ts.URL, `petbreed_batch_size_sum`); images != float64(n) {
		t.Errorf("the backbone ran %v images for %d requests of one image: the shadow ran its own", images, n)
	}
}

// TestSharedBackboneRefused: a model whose trunk and head disagree with it
// (here: a tolerance no answer meets) is served whole, its session opened
// again, and answers as before; a file that is not a petbreed export (the
// backbone itself) is served whole too, and so is a model alone.
func TestSharedBackboneRefused(t *testing.T) {
	dir, _ := twoVersions(t)
	logs := &testutil.Buffer{}
	s, err := New(Config{Models: twoModels(1, 1), TrackingURI: dir, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.shareTolerance = -1
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	m := s.slotByName("challenger").current()
	if m.trunk != nil || len(s.trunks) != 0 || m.head != nil {
		t.Fatalf("shared although the check failed: %d trunks", len(s.trunks))
	}
	if !strings.Contains(logs.String(), "trunk and head differ from the whole model") {
		t.Errorf("no log of the refusal: %s", logs)
	}
	images := [][]byte{petImage(t, breedImages[0]), petImage(t, breedImages[5])}
	ts := &testServer{Server: s}
	clf, err := classify.Open(m.path, classify.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	if d := maxDiff(t, clf, servedAnswers(t, ts, "challenger", images), wholeAnswers(t, m.path, images)); d > 1e-6 {
		t.Errorf("the model served whole differs from itself by %g", d)
	}

	labels := testassets.Path(t, "backbone", "imagenet_labels.txt")
	names, err := classify.LoadLabels(labels)
	if err != nil {
		t.Fatal(err)
	}
	backbone := testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")
	bb := startAll(t, Config{Models: []ModelSpec{{Name: "a", URI: backbone, Weight: 1}, {Name: "b", URI: backbone, Weight: 1}}, Labels: names})
	if cur := bb.slotByName("b").current(); cur.trunk != nil || cur.head != nil || len(bb.trunks) != 0 {
		t.Error("the backbone itself runs on a trunk")
	}
	if r := post(t, bb.URL+"/api/predict", petImage(t, breedImages[0]), nil); r.status != 200 {
		t.Errorf("backbone: %s", r)
	}

	// One model alone has no one to share with: it runs whole.
	one := start(t, Config{})
	if cur := one.current(); cur.trunk != nil || len(one.trunks) != 0 {
		t.Error("a model alone runs on a trunk")
	}
}

// TestClassesByModel: /api/classes?model=NAME lists that model's classes
// (the page fills an answer's feedback with its model's breeds); an
// unknown name is 404.
func TestClassesByModel(t *testing.T) {
	dir, _ := twoVersions(t)
	ts := startAll(t, Config{Models: twoModels(1, 0), TrackingURI: dir})
	for _, name := range []string{"champion", "challenger"} {
		var c struct {
			Classes []string `json:"classes"`
			Model   string   `json:"model"`
			Version string   `json:"version"`
		}
		r := get(t, ts.URL+"/api/classes?model="+name)
		r.json(t, &c)
		if r.status != 200 || c.Model != name || len(c.Classes) != 3 {
			t.Errorf("%s: %s", name, r)
		}
	}
	if r := get(t, ts.URL+"/api/classes?model=nope"); r.status != 404 {
		t.Errorf("an unknown model: %s", r)
	}
}
