package onnxrt

import (
	"bufio"
	"errors"
	"image"
	_ "image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"petbreed/internal/testassets"
)

// assets returns ../shared/assets beside the module root, or skips the test.
func assets(t testing.TB) string {
	t.Helper()
	return testassets.Dir(t)
}

// modelPath returns the real int8 MobileNetV2 after making sure ONNX Runtime
// is loaded (tests fail, rather than skip, when the library is missing: it
// is part of the repository's setup).
func modelPath(t testing.TB) string {
	t.Helper()
	p := filepath.Join(assets(t), "backbone", "mobilenetv2-12-int8.onnx")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("model not found: %v", err)
	}
	if _, err := Load(); err != nil {
		t.Fatal(err)
	}
	return p
}

var shared struct {
	once sync.Once
	s    *Session
	err  error
}

// session returns a Session of the real model shared by the tests, with 2
// intra-op threads.
func session(t testing.TB) *Session {
	t.Helper()
	p := modelPath(t)
	shared.once.Do(func() { shared.s, shared.err = Open(p, Options{IntraOpThreads: 2}) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.s
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindLibraryOrder(t *testing.T) {
	root := t.TempDir()
	// root/repo/third_party/onnxruntime/libonnxruntime.so.1 with the
	// executable in root/repo/bin and the working directory root/repo/a/b;
	// root/other/bin holds another executable beside its own library, and
	// root/empty has nothing.
	repoLib := filepath.Join(root, "repo", "third_party", "onnxruntime", "libonnxruntime.so.1")
	touch(t, repoLib)
	repoBin := filepath.Join(root, "repo", "bin")
	repoWD := filepath.Join(root, "repo", "a", "b")
	otherBin := filepath.Join(root, "other", "bin")
	otherLib := filepath.Join(otherBin, "libonnxruntime.so.1")
	touch(t, otherLib)
	touch(t, filepath.Join(otherBin, "libonnxruntime.so"))
	soOnlyBin := filepath.Join(root, "soonly")
	soOnlyLib := filepath.Join(soOnlyBin, "libonnxruntime.so")
	touch(t, soOnlyLib)
	empty := filepath.Join(root, "empty")
	for _, d := range []string{repoBin, repoWD, empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	envLib := filepath.Join(root, "custom", "libonnxruntime.so.1.30.0")
	touch(t, envLib)

	tests := []struct {
		name         string
		env, exe, wd string
		want         string
	}{
		{"env first", envLib, otherBin, repoWD, envLib},
		{"beside the executable", "", otherBin, repoWD, otherLib},
		{"beside the executable, .so", "", soOnlyBin, repoWD, soOnlyLib},
		{"up from the executable", "", repoBin, empty, repoLib},
		{"up from the working directory", "", empty, repoWD, repoLib},
		{"working directory is the repository", "", "", filepath.Join(root, "repo"), repoLib},
		{"no executable directory", "", "", repoWD, repoLib},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findLibrary(tc.env, tc.exe, tc.wd)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("findLibrary = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFindLibraryErrors(t *testing.T) {
	root := t.TempDir()
	missing := filepath.Join(root, "nope", "libonnxruntime.so.1")
	tests := []struct {
		name         string
		env, exe, wd string
		want         []string
	}{
		// The variable wins even when it is wrong: no silent fallback to
		// another library.
		{"env names a missing file", missing, "", "", []string{"ONNXRUNTIME_LIB=" + missing, "is not a file"}},
		{"env names a directory", root, "", "", []string{"ONNXRUNTIME_LIB=" + root}},
		{"nothing anywhere", "", filepath.Join(root, "bin"), filepath.Join(root, "wd"), []string{
			"beside the executable in " + filepath.Join(root, "bin"),
			filepath.Join("third_party", "onnxruntime", "libonnxruntime.so.1") + " in " +
				filepath.Join(root, "bin") + ", " + filepath.Join(root, "wd") + " and their parent directories",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findLibrary(tc.env, tc.exe, tc.wd)
			if err == nil {
				t.Fatalf("findLibrary = %s, want an error", got)
			}
			if !errors.Is(err, ErrLibraryNotFound) {
				t.Errorf("error does not wrap ErrLibraryNotFound: %v", err)
			}
			msg := err.Error()
			for _, s := range append([]string{
				"ONNX Runtime library not found",
				"run `make onnxruntime` in the petbreed repository, or set ONNXRUNTIME_LIB to the path of libonnxruntime.so.1",
			}, tc.want...) {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q\ndoes not contain %q", msg, s)
				}
			}
		})
	}
}

func TestFindLibraryFromPackage(t *testing.T) {
	t.Setenv(EnvLibrary, "")
	p, err := FindLibrary()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(p) || !strings.HasSuffix(p, filepath.Join("third_party", "onnxruntime", "libonnxruntime.so.1")) {
		t.Errorf("FindLibrary = %s", p)
	}
	t.Setenv(EnvLibrary, filepath.Join(t.TempDir(), "missing.so"))
	if _, err := FindLibrary(); !errors.Is(err, ErrLibraryNotFound) {
		t.Errorf("with ONNXRUNTIME_LIB missing: %v", err)
	}
}

func TestInit(t *testing.T) {
	lib, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if v := Version(); !strings.HasPrefix(v, "1.") {
		t.Errorf("Version = %q", v)
	}
	if err := Init(lib); err != nil {
		t.Errorf("Init with the same library again: %v", err)
	}
	link := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.Symlink(lib, link); err != nil {
		t.Fatal(err)
	}
	if err := Init(link); err != nil {
		t.Errorf("Init with a symlink to the same library: %v", err)
	}
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	touch(t, other)
	if err := Init(other); err == nil || !strings.Contains(err.Error(), "already initialized") {
		t.Errorf("Init with another library: %v", err)
	}
	if err := Init(filepath.Join(t.TempDir(), "missing.so")); err == nil {
		t.Error("Init with a missing file: no error")
	}
	if got, err := Load(); err != nil || got != lib {
		t.Errorf("Load again = %s, %v; want %s", got, err, lib)
	}
}

func TestSessionInfo(t *testing.T) {
	s := session(t)
	wantIn := []TensorInfo{{Name: "input", Type: "float32", Shape: []int64{-1, 3, 224, 224}}}
	wantOut := []TensorInfo{{Name: "output", Type: "float32", Shape: []int64{-1, 1000}}}
	if got := s.Inputs(); !reflect.DeepEqual(got, wantIn) {
		t.Errorf("Inputs = %v, want %v", got, wantIn)
	}
	if got := s.Outputs(); !reflect.DeepEqual(got, wantOut) {
		t.Errorf("Outputs = %v, want %v", got, wantOut)
	}
	if got := s.Inputs()[0].String(); got != "input: float32[-1,3,224,224]" {
		t.Errorf("String = %s", got)
	}
	s.Inputs()[0].Shape[0] = 7 // callers get copies
	if s.Inputs()[0].Shape[0] != -1 {
		t.Error("Inputs returned the session's own slice")
	}
	md := s.Metadata()
	want := Metadata{Producer: "onnx.quantize", GraphName: "torch-jit-export", Custom: map[string]string{}}
	if !reflect.DeepEqual(md, want) {
		t.Errorf("Metadata = %+v, want %+v", md, want)
	}
}

// grey returns n mid-grey 224x224 images, normalized as torchvision does.
func grey(n int) []float32 {
	mean := [3]float32{0.485, 0.456, 0.406}
	std := [3]float32{0.229, 0.224, 0.225}
	const plane = 224 * 224
	x := make([]float32, n*3*plane)
	for i := 0; i < n; i++ {
		for c := 0; c < 3; c++ {
			v := (0.5 - mean[c]) / std[c]
			p := x[(i*3+c)*plane : (i*3+c+1)*plane]
			for j := range p {
				p[j] = v
			}
		}
	}
	return x
}

func TestRun(t *testing.T) {
	s := session(t)
	one, err := s.Run(grey(1), []int64{1, 3, 224, 224})
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || one[0].Name != "output" || one[0].Type != "float32" ||
		!reflect.DeepEqual(one[0].Shape, []int64{1, 1000}) || len(one[0].Float32) != 1000 {
		t.Fatalf("Run(batch 1) = %+v", one)
	}
	for i, v := range one[0].Float32 {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logit %d = %v", i, v)
		}
	}

	three, err := s.Run(grey(3), []int64{3, 3, 224, 224})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(three[0].Shape, []int64{3, 1000}) || len(three[0].Float32) != 3000 {
		t.Fatalf("Run(batch 3): shape %v, %d values", three[0].Shape, len(three[0].Float32))
	}
	// The same image gives the same logits at every batch position and
	// batch size.
	for b := 0; b < 3; b++ {
		for i := 0; i < 1000; i++ {
			if d := math.Abs(float64(three[0].Float32[b*1000+i] - one[0].Float32[i])); d > 1e-4 {
				t.Fatalf("batch 3 item %d logit %d differs from batch 1 by %g", b, i, d)
			}
		}
	}
}

func TestRunRejectsBadShapes(t *testing.T) {
	s := session(t)
	tests := []struct {
		name  string
		n     int
		shape []int64
		want  string
	}{
		{"rank 3", 3 * 224 * 224, []int64{3, 224, 224}, "has rank 3, the model wants 4"},
		{"rank 5", 3 * 224 * 224, []int64{1, 1, 3, 224, 224}, "has rank 5"},
		{"wrong channels", 224 * 224, []int64{1, 1, 224, 224}, "does not match the model's [-1 3 224 224] in dimension 1"},
		{"wrong size", 3 * 225 * 224, []int64{1, 3, 225, 224}, "in dimension 2"},
		{"zero batch", 0, []int64{0, 3, 224, 224}, "dimension 0 is 0, must be positive"},
		{"negative batch", 3 * 224 * 224, []int64{-1, 3, 224, 224}, "must be positive"},
		{"too little data", 3 * 224 * 224, []int64{2, 3, 224, 224}, "needs 301056 values, got 150528"},
		{"too much data", 2 * 3 * 224 * 224, []int64{1, 3, 224, 224}, "needs 150528 values, got 301056"},
		{"no shape", 3 * 224 * 224, nil, "has rank 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := s.Run(make([]float32, tc.n), tc.shape)
			if err == nil {
				t.Fatalf("Run = %v, want an error", out)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `input "input"`) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	modelPath(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "labels.onnx")
	if err := os.WriteFile(text, []byte("tench, Tinca tinca\ngoldfish\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	model, err := os.ReadFile(modelPath(t))
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.onnx")
	if err := os.WriteFile(truncated, model[:len(model)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opts Options
		want []string
		is   error
	}{
		{"missing", filepath.Join(dir, "missing.onnx"), Options{}, []string{"open model", "missing.onnx"}, fs.ErrNotExist},
		{"text file", text, Options{}, []string{"load model " + text, "not an ONNX model"}, nil},
		{"truncated", truncated, Options{}, []string{"load model " + truncated, "not an ONNX model"}, nil},
		{"unknown extra output", modelPath(t), Options{ExtraOutputs: []string{"no_such_tensor"}}, []string{`no value named "no_such_tensor"`}, nil},
		{"negative threads", modelPath(t), Options{IntraOpThreads: -1}, []string{"negative thread count"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.path, tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
		})
	}
}

func TestExtraOutputs(t *testing.T) {
	s, err := Open(modelPath(t), Options{IntraOpThreads: 2,
		ExtraOutputs: []string{"472_quantized", "464_scale", "464_zero_point"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := []TensorInfo{
		{Name: "output", Type: "float32", Shape: []int64{-1, 1000}},
		{Name: "472_quantized", Type: "uint8", Shape: []int64{-1, 1280}},
		{Name: "464_scale", Type: "float32", Shape: []int64{}},
		{Name: "464_zero_point", Type: "uint8", Shape: []int64{}},
	}
	if got := s.Outputs(); !reflect.DeepEqual(got, want) {
		t.Errorf("Outputs = %v, want %v", got, want)
	}
	outs, err := s.Run(grey(2), []int64{2, 3, 224, 224})
	if err != nil {
		t.Fatal(err)
	}
	feat, scale, zp := outs[1], outs[2], outs[3]
	if feat.Type != "uint8" || !reflect.DeepEqual(feat.Shape, []int64{2, 1280}) || len(feat.Uint8) != 2560 {
		t.Errorf("472_quantized = %s %v (%d values)", feat.Type, feat.Shape, len(feat.Uint8))
	}
	if scale.Type != "float32" || len(scale.Shape) != 0 || len(scale.Float32) != 1 || !(scale.Float32[0] > 0) {
		t.Errorf("464_scale = %+v", scale)
	}
	if zp.Type != "uint8" || len(zp.Uint8) != 1 {
		t.Errorf("464_zero_point = %+v", zp)
	}
	nonzero := 0
	for _, q := range feat.Uint8 {
		if q != zp.Uint8[0] {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Error("the pooled features are all at the zero point")
	}
	// The logits do not change when more outputs are fetched.
	plain, err := session(t).Run(grey(2), []int64{2, 3, 224, 224})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plain[0].Float32, outs[0].Float32) {
		t.Error("logits differ with extra outputs")
	}
}

func TestConcurrentRuns(t *testing.T) {
	s := session(t)
	in := grey(1)
	want, err := s.Run(in, []int64{1, 3, 224, 224})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				got, err := s.Run(in, []int64{1, 3, 224, 224})
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got[0].Float32, want[0].Float32) {
					errs <- errors.New("concurrent run gave different logits")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClose(t *testing.T) {
	s, err := Open(modelPath(t), Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Run(grey(1), []int64{1, 3, 224, 224}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}

// TestClassifyChelsea checks the whole path on a real photo, with a crude
// preprocessing (centre square, bilinear to 224): the real one is package
// imaging's.
func TestClassifyChelsea(t *testing.T) {
	s := session(t)
	f, err := os.Open(filepath.Join(assets(t), "photos", "chelsea.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	x := tensorOf(img, 224)
	outs, err := s.Run(x, []int64{1, 3, 224, 224})
	if err != nil {
		t.Fatal(err)
	}
	logits := outs[0].Float32
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	labels := readLabels(t, filepath.Join(assets(t), "backbone", "imagenet_labels.txt"))
	t.Logf("top-1: %d %q (logit %.2f)", best, labels[best], logits[best])
	if best != 285 || labels[best] != "Egyptian cat" {
		t.Errorf("top-1 = %d %q, want 285 Egyptian cat", best, labels[best])
	}
}

// tensorOf crops the centre square of img, resizes it bilinearly to size and
// normalizes it as torchvision does, in NCHW order.
func tensorOf(img image.Image, size int) []float32 {
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	mean := [3]float64{0.485, 0.456, 0.406}
	std := [3]float64{0.229, 0.224, 0.225}
	px := func(x, y int) [3]float64 {
		r, g, bl, _ := img.At(x0+min(x, side-1), y0+min(y, side-1)).RGBA()
		return [3]float64{float64(r) / 65535, float64(g) / 65535, float64(bl) / 65535}
	}
	out := make([]float32, 3*size*size)
	scale := float64(side) / float64(size)
	for j := 0; j < size; j++ {
		sy := math.Max((float64(j)+0.5)*scale-0.5, 0)
		y, fy := int(sy), sy-math.Floor(sy)
		for i := 0; i < size; i++ {
			sx := math.Max((float64(i)+0.5)*scale-0.5, 0)
			x, fx := int(sx), sx-math.Floor(sx)
			a, b2, c, d := px(x, y), px(x+1, y), px(x, y+1), px(x+1, y+1)
			for ch := 0; ch < 3; ch++ {
				v := (a[ch]*(1-fx)+b2[ch]*fx)*(1-fy) + (c[ch]*(1-fx)+d[ch]*fx)*fy
				out[ch*size*size+j*size+i] = float32((v - mean[ch]) / std[ch])
			}
		}
	}
	return out
}

func readLabels(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var labels []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		labels = append(labels, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(labels) != 1000 {
		t.Fatalf("%s has %d labels", path, len(labels))
	}
	return labels
}
