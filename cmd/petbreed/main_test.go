package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"petbreed/internal/imaging"
	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
)

// cli runs the command line in-process and returns its exit code and output.
func cli(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func backboneArgs(t testing.TB) []string {
	return []string{
		"--model", testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"),
		"--labels", testassets.Path(t, "backbone", "imagenet_labels.txt"),
	}
}

func TestPredictText(t *testing.T) {
	args := append([]string{"predict", "--top-k", "3"}, backboneArgs(t)...)
	code, out, errs := cli(t, append(args, testassets.Path(t, "photos", "chelsea.png"))...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "1. Egyptian cat") {
		t.Errorf("output:\n%s", out)
	}
	// --mode squash replaces the transform; the cat is still a cat, with
	// other probabilities.
	code, squash, errs := cli(t, append(args, "--mode", "squash", testassets.Path(t, "photos", "chelsea.png"))...)
	if code != 0 || !strings.Contains(squash, "1. Egyptian cat") || squash == out {
		t.Errorf("--mode squash: exit %d %s\n%s", code, errs, squash)
	}
}

func TestPredictJSONAndFailures(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "broken.jpg"), []byte("\xff\xd8\xff garbage"), 0o644)
	os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not picked up by the directory walk"), 0o644)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	img := testassets.Read(t, "photos", "cat_720p.jpg")
	os.WriteFile(filepath.Join(sub, "cat.JPG"), img, 0o644)
	args := append([]string{"predict", "--json", "-k", "2"}, backboneArgs(t)...)
	code, out, errs := cli(t, append(args, testassets.Path(t, "photos", "chelsea.png"), dir)...)
	if code != 1 {
		t.Errorf("exit %d with a broken file among good ones, want 1", code)
	}
	if !strings.Contains(errs, "broken.jpg") {
		t.Errorf("stderr does not name the broken file: %s", errs)
	}
	var results []jsonResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r jsonResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("not JSON Lines: %q: %v", sc.Text(), err)
		}
		results = append(results, r)
	}
	if len(results) != 3 {
		t.Fatalf("%d results, want 3 (chelsea, broken, sub/cat.JPG):\n%s", len(results), out)
	}
	for i, want := range []string{"Egyptian cat", "", "Egyptian cat"} {
		r := results[i]
		if want == "" {
			if r.Error == "" || len(r.Predictions) != 0 {
				t.Errorf("result %d: %+v, want an error", i, r)
			}
			continue
		}
		if len(r.Predictions) != 2 || r.Predictions[0].Label != want || r.Predictions[0].Index != 285 ||
			r.Model == "" || r.Ms <= 0 || r.Width == 0 {
			t.Errorf("result %d: %+v", i, r)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	img := testassets.Path(t, "photos", "chelsea.png")
	model := backboneArgs(t)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command args", []string{"predict"}, 2, "arg"},
		{"unknown flag", []string{"predict", "--bogus", img}, 2, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"no model", []string{"predict", "--model", "", img}, 2, "no model"},
		{"bad top-k", append([]string{"predict", "--top-k", "0", img}, model...), 2, "top-k"},
		{"bad mode", append([]string{"predict", "--mode", "stretch", img}, model...), 2, "crop or squash"},
		{"missing model file", []string{"predict", "--model", "/nonexistent.onnx", img}, 1, "nonexistent"},
		{"not a model", []string{"predict", "--model", img, img}, 1, "load model"},
		{"resize without size", []string{"resize", img, "x.png"}, 2, "width"},
		{"inspect two args", []string{"inspect", "a", "b"}, 2, "arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := cli(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errs, tt.code, tt.msg)
			}
		})
	}
}

// TestPreprocessMatchesPillow: the PNG preprocess writes is exactly
// torchvision's evaluation transform as Pillow computes it.
func TestPreprocessMatchesPillow(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "seen.png")
	npyOut := filepath.Join(dir, "seen.npy")
	code, _, errs := cli(t, "preprocess", testassets.Path(t, "photos", "chelsea.png"), out, "--tensor", npyOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := testassets.Read(t, "pil-reference", "chelsea.resize256_crop224.rgb")
	if b := m.Bounds(); b.Dx() != 224 || b.Dy() != 224 {
		t.Fatalf("size %v", b)
	}
	diff := 0
	for y := 0; y < 224; y++ {
		for x := 0; x < 224; x++ {
			r, g, b, _ := m.At(x, y).RGBA()
			i := (y*224 + x) * 3
			for c, v := range []uint32{r >> 8, g >> 8, b >> 8} {
				d := int(v) - int(want[i+c])
				diff += max(d, -d)
			}
		}
	}
	if mad := float64(diff) / (224 * 224 * 3); mad > 1.0 {
		t.Errorf("mean abs diff %.3f from Pillow", mad)
	}
	// The tensor: .npy header, [1,3,224,224], normalised values.
	b, err := os.ReadFile(npyOut)
	if err != nil {
		t.Fatal(err)
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	if !strings.Contains(string(b[10:10+hl]), "(1, 3, 224, 224)") || len(b)-10-hl != 4*3*224*224 {
		t.Errorf("npy header %q, %d data bytes", b[10:10+hl], len(b)-10-hl)
	}
}

func TestPreprocessAndResizeErrorsLeaveNoFile(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.jpg")
	os.WriteFile(garbage, []byte("\xff\xd8\xffnot really a jpeg"), 0o644)
	existing := filepath.Join(dir, "existing.png")
	os.WriteFile(existing, []byte("keep me"), 0o644)
	img := testassets.Path(t, "photos", "chelsea.png")
	tests := []struct {
		name string
		args []string
		out  string
		code int
	}{
		{"preprocess garbage", []string{"preprocess", garbage, filepath.Join(dir, "a.png")}, "a.png", 1},
		{"preprocess bad extension", []string{"preprocess", img, filepath.Join(dir, "a.tiff")}, "a.tiff", 2},
		{"resize bad extension", []string{"resize", img, filepath.Join(dir, "b.gif"), "--width", "10", "--height", "10"}, "b.gif", 2},
		{"resize negative", []string{"resize", img, filepath.Join(dir, "c.png"), "--width", "-1", "--height", "10"}, "c.png", 2},
		{"resize unknown filter", []string{"resize", img, filepath.Join(dir, "d.png"), "--width", "9", "--height", "9", "--filter", "cubic"}, "d.png", 2},
		{"resize into missing dir", []string{"resize", img, filepath.Join(dir, "no", "e.png"), "--width", "9", "--height", "9"}, "no/e.png", 1},
		{"bomb guard", []string{"resize", img, existing, "--width", "9", "--height", "9", "--max-pixels", "100"}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := cli(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (%s)", code, tt.code, errs)
			}
			if tt.out != "" {
				if _, err := os.Stat(filepath.Join(dir, tt.out)); !os.IsNotExist(err) {
					t.Errorf("%s exists after a failure", tt.out)
				}
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("a failed resize changed its output file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("files left behind: %v", ents)
	}
}

func TestResize(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		out, format string
		w, h        int
		filter      string
	}{
		{"small.png", imaging.FormatPNG, 100, 50, "bilinear"},
		{"small.jpg", imaging.FormatJPEG, 64, 64, "lanczos"},
		{"big.JPEG", imaging.FormatJPEG, 900, 600, "nearest"},
	} {
		out := filepath.Join(dir, tt.out)
		code, _, errs := cli(t, "resize", testassets.Path(t, "photos", "chelsea.png"), out,
			"--width", itoa(tt.w), "--height", itoa(tt.h), "--filter", tt.filter)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tt.out, code, errs)
		}
		b, _ := os.ReadFile(out)
		img, info, err := imaging.Decode(b, imaging.DecodeOptions{})
		if err != nil || info.Format != tt.format || img.W != tt.w || img.H != tt.h {
			t.Errorf("%s: %+v %v", tt.out, info, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestClassesAndInspect(t *testing.T) {
	code, out, _ := cli(t, append([]string{"classes"}, backboneArgs(t)...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 1000 || lines[285] != "Egyptian cat" {
		t.Errorf("classes: exit %d, %d lines", code, len(lines))
	}
	code, out, errs := cli(t, "classes", "--json", "--model", testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"))
	var v struct {
		Classes []string `json:"classes"`
		Count   int      `json:"count"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Count != 1000 || v.Classes[3] != "3" {
		t.Errorf("classes without labels: exit %d %v %+v", code, err, v.Count)
	}
	if !strings.Contains(errs, "indices") {
		t.Errorf("no note that indices are printed: %q", errs)
	}

	model := testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")
	code, out, _ = cli(t, "inspect", "--json", model)
	var r inspectReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
		t.Fatalf("inspect: exit %d, %v", code, err)
	}
	data := testassets.Read(t, "backbone", "mobilenetv2-12-int8.onnx")
	sum := sha256.Sum256(data)
	if r.SHA256 != hex.EncodeToString(sum[:]) || r.Size != int64(len(data)) || r.Opsets["ai.onnx"] != 12 ||
		len(r.Inputs) != 1 || !strings.HasPrefix(r.Inputs[0], "input: float32[") || !strings.HasSuffix(r.Outputs[0], ",1000]") {
		t.Errorf("inspect: %+v", r)
	}
	if code, _, errs := cli(t, "inspect", testassets.Path(t, "photos", "chelsea.png")); code != 1 || errs == "" {
		t.Errorf("inspect of a PNG: exit %d", code)
	}
	if code, out, _ := cli(t, "version"); code != 0 || !strings.Contains(out, "onnxruntime 1.30") {
		t.Errorf("version: %d %q", code, out)
	}
}

// BenchmarkPredictProcess measures `petbreed predict` of one image from
// process start to answer: the binary is built once, then run per iteration.
func BenchmarkPredictProcess(b *testing.B) {
	bin := testutil.Petbreed(b)
	args := append([]string{"predict", "--json"}, backboneArgs(b)...)
	args = append(args, testassets.Path(b, "photos", "cat_720p.jpg"))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || !bytes.Contains(out, []byte("Egyptian cat")) {
			b.Fatalf("predict: %v %s", err, out)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/process")
}
