package features

import (
	"context"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"petbreed/internal/imaging"
)

// TestApplyView checks the views on synthetic tensors: the identity and the
// mirror exactly, and a crop's bilinear resize against values worked out by
// hand (a ramp stays a ramp of the crop's positions).
func TestApplyView(t *testing.T) {
	const size = 8
	src := make([]float32, 3*size*size)
	for ch := range 3 {
		for y := range size {
			for x := range size {
				src[ch*size*size+y*size+x] = float32(100*ch + 10*y + x)
			}
		}
	}
	dst := make([]float32, len(src))
	applyView(ViewSpec{}, src, dst, size)
	if !slices.Equal(dst, src) {
		t.Error("identity view changed the tensor")
	}
	applyView(ViewSpec{Flip: true}, src, dst, size)
	if dst[0] != 7 || dst[size-1] != 0 || dst[size*size+size] != 117 {
		t.Errorf("mirror: row starts %v", dst[:size])
	}
	twice := make([]float32, len(src))
	applyView(ViewSpec{Flip: true}, dst, twice, size)
	if !slices.Equal(twice, src) {
		t.Error("mirror twice is not the identity")
	}
	// A 4×4 crop at (2, 2) resized to 8: source = (o+0.5)/2 − 0.5, clamped
	// to [0, 3], so output 0 is source 0 and output 7 is source 3.
	applyView(ViewSpec{Crop: 4, X: 2, Y: 2}, src, dst, size)
	for _, c := range []struct {
		y, x int
		want float32
	}{{0, 0, 22}, {0, 7, 25}, {7, 0, 52}, {1, 1, 22 + 0.25*10 + 0.25}, {3, 4, 22 + 1.25*10 + 1.75}} {
		if got := dst[c.y*size+c.x]; math.Abs(float64(got-c.want)) > 1e-5 {
			t.Errorf("crop (%d,%d) = %v, want %v", c.y, c.x, got, c.want)
		}
	}
	if got := dst[2*size*size]; got != 222 {
		t.Errorf("third plane starts %v, want 222", got)
	}
}

// TestViews: every view has a spec, names are what the cache's shard file
// names allow (no '-'), Original comes first, and unknown names are refused.
func TestViews(t *testing.T) {
	vs := Views()
	if vs[0] != Original || len(vs) < 6 {
		t.Fatalf("Views() = %v", vs)
	}
	seen := map[View]bool{}
	for _, v := range vs {
		if _, ok := v.Spec(); !ok || strings.Contains(string(v), "-") || seen[v] {
			t.Errorf("view %q: bad name or no spec", v)
		}
		seen[v] = true
	}
	var v View
	if err := v.UnmarshalText([]byte("c192")); err != nil || v != Center192 {
		t.Errorf("parse c192: %v %v", v, err)
	}
	if err := v.UnmarshalText([]byte("zoom")); err == nil || !strings.Contains(err.Error(), "unknown view \"zoom\"") {
		t.Errorf("parse zoom: %v", err)
	}
}

// TestFlipViewMatchesMirroredImage: the mirror view of the model's input is
// bit for bit the input of the mirrored image (the cache's flip features
// keep their meaning).
func TestFlipViewMatchesMirroredImage(t *testing.T) {
	e := openExtractor(t)
	b, err := os.ReadFile(pets(t).Test[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := imaging.Decode(b, imaging.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base, mirrored, view := make([]float32, e.TensorLen()), make([]float32, e.TensorLen()), make([]float32, e.TensorLen())
	if err := e.Prepare(img, false, base); err != nil {
		t.Fatal(err)
	}
	if err := e.Prepare(img, true, mirrored); err != nil {
		t.Fatal(err)
	}
	if err := Flipped.Apply(base, view, e.Preprocess().Size); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(view, mirrored) {
		t.Error("flip view differs from the mirrored image's tensor")
	}
	if err := Center192.Apply(base, view[:10], 224); err == nil {
		t.Error("short destination: no error")
	}
	if err := Center192.Apply(base[:3*64], view[:3*64], 8); err == nil {
		t.Error("a crop view on an 8×8 input: no error")
	}
	if err := View("zoom").Apply(base, view, 224); err == nil {
		t.Error("unknown view: no error")
	}
}

// TestComputeViews: every view on real images, each its own features,
// cached under its name and read back bit for bit; an unknown view is an
// error before any work.
func TestComputeViews(t *testing.T) {
	e := openExtractor(t)
	samples := pets(t).Test[:3]
	dir := t.TempDir()
	c, err := OpenCache(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Compute(context.Background(), e, c, samples, Options{Views: Views(), BatchSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r.Stats.Computed != 3*len(Views()) {
		t.Fatalf("computed %d, want %d", r.Stats.Computed, 3*len(Views()))
	}
	d := e.Dim()
	for _, v := range Views()[1:] {
		if slices.Equal(r.X[v][:d], r.X[Original][:d]) {
			t.Errorf("view %s has the original's features", v)
		}
	}
	c2, _ := OpenCache(dir, e)
	r2, err := Compute(context.Background(), e, c2, samples, Options{Views: Views()})
	if err != nil || r2.Stats.Cached != 3*len(Views()) {
		t.Fatalf("second pass: %+v %v", r2.Stats, err)
	}
	for _, v := range Views() {
		if !slices.Equal(r.X[v], r2.X[v]) {
			t.Errorf("view %s: cache gives different features", v)
		}
	}
	if _, err := Compute(context.Background(), e, c2, samples, Options{Views: []View{"zoom"}}); err == nil || !strings.Contains(err.Error(), "unknown view") {
		t.Errorf("unknown view: %v", err)
	}
}
