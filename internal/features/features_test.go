package features

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"petbreed/internal/dataset"
	"petbreed/internal/testassets"
)

func openExtractor(t testing.TB) *Extractor {
	t.Helper()
	e, err := NewExtractor(testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func pets(t testing.TB) *dataset.Dataset {
	t.Helper()
	ds, err := dataset.Load(testassets.Path(t, "pets-3breeds"))
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// BenchmarkComputePets is the feature pipeline end to end on the 598
// annotated pets-3breeds images (read, hash, decode, crop, tensor, int8
// backbone at batch 32), cold cache, one view. Goal: at least 200 images/s,
// and at least half of what the model alone does at batch 32
// (BenchmarkRunBatch32 in internal/onnxrt).
func BenchmarkComputePets(b *testing.B) {
	e := openExtractor(b)
	ds := pets(b)
	all := append(append([]dataset.Sample{}, ds.TrainVal...), ds.Test...)
	var rate float64
	for i := 0; i < b.N; i++ {
		c, err := OpenCache(b.TempDir(), e)
		if err != nil {
			b.Fatal(err)
		}
		r, err := Compute(context.Background(), e, c, all, Options{})
		if err != nil {
			b.Fatal(err)
		}
		rate += r.Stats.PerSecond()
	}
	b.ReportMetric(rate/float64(b.N), "images/s")
}

func TestComputeAndCache(t *testing.T) {
	e := openExtractor(t)
	ds := pets(t)
	dir := t.TempDir()
	samples := append([]dataset.Sample{}, ds.Test[:6]...)
	bad := filepath.Join(dir, "bad.jpg")
	os.WriteFile(bad, []byte("\xff\xd8\xff not a jpeg"), 0o644)
	samples = append(samples, dataset.Sample{Path: bad, ID: "bad"})
	views := []View{Original, Flipped}

	c, err := OpenCache(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := Compute(context.Background(), e, c, samples, Options{Views: views, BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Stats.Computed != 12 || r1.Stats.Cached != 0 || len(r1.Skipped) != 1 || r1.OK[6] || !r1.OK[0] {
		t.Fatalf("first pass: %+v, skipped %v, ok %v", r1.Stats, r1.Skipped, r1.OK)
	}
	d := e.Dim()
	orig, flip := r1.X[Original][:d], r1.X[Flipped][:d]
	same := true
	for i := range orig {
		same = same && orig[i] == flip[i]
	}
	if same {
		t.Error("the mirrored view has the same features")
	}
	// The features are the backbone's on the image, batch-independent.
	fresh, err := OpenCache(t.TempDir(), e)
	if err != nil {
		t.Fatal(err)
	}
	one, err := Compute(context.Background(), e, fresh, samples[:1], Options{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range orig {
		if one.X[Original][i] != orig[i] {
			t.Fatalf("feature %d: %v alone, %v in a batch", i, one.X[Original][i], orig[i])
		}
	}

	// A new process: everything comes from the disk, bit for bit, and a
	// damaged shard is ignored rather than fatal.
	os.WriteFile(filepath.Join(c.Dir(), "orig-1-broken.shard"), []byte("PBFEAT1\nshort"), 0o644)
	c2, err := OpenCache(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Compute(context.Background(), e, c2, samples, Options{Views: views})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Stats.Cached != 12 || r2.Stats.Computed != 0 {
		t.Fatalf("second pass: %+v", r2.Stats)
	}
	for _, v := range views {
		for i := range r1.X[v] {
			if r1.X[v][i] != r2.X[v][i] {
				t.Fatalf("view %s value %d: %v then %v from the cache", v, i, r1.X[v][i], r2.X[v][i])
			}
		}
	}
	// The same image under another name is the same key.
	b, _ := os.ReadFile(samples[0].Path)
	if _, ok := c2.Get(Original, KeyOf(b)); !ok {
		t.Error("cache lookup by content failed")
	}
	if _, ok := c2.Get(Original, KeyOf(append(b, 0))); ok {
		t.Error("different content, same key")
	}
}

func TestComputeCancelledFlushes(t *testing.T) {
	e := openExtractor(t)
	ds := pets(t)
	dir := t.TempDir()
	c, _ := OpenCache(dir, e)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Compute(ctx, e, c, ds.TrainVal[:64], Options{BatchSize: 8, Progress: func(done, total int) {
		if done == 20 {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("no error after cancel")
	}
	c2, _ := OpenCache(dir, e)
	if n := c2.Len(Original); n < 16 {
		t.Errorf("only %d features reached the disk after a cancel at 20", n)
	}
}
