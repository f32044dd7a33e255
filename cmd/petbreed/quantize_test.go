package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"petbreed/internal/onnx"
	"petbreed/internal/quantize"
	"petbreed/internal/testassets"
)

func TestQuantizeCommand(t *testing.T) {
	dir := t.TempDir()
	twin := testassets.Path(t, "backbone", "mobilenetv2-12-fp32-twin.onnx")
	pets := testassets.Path(t, "pets-3breeds")
	out := filepath.Join(dir, "int8.onnx")
	code, stdout, stderr := cli(t, "quantize", twin, out, "--data", pets, "--images", "4", "--method", "percentile")
	if code != 0 || !strings.Contains(stdout, "percentile on 4 images") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := quantize.Describe(m); !ok || s.Petbreed == nil || s.Petbreed.Method != "percentile" || s.Petbreed.Images != 4 {
		t.Errorf("written model: %+v", s)
	}
	// inspect says how it is quantized.
	if code, stdout, _ := cli(t, "inspect", out); code != 0 || !strings.Contains(stdout, "quantized  qdq, int8 weights per-channel") {
		t.Errorf("inspect: exit %d\n%s", code, stdout)
	}

	// Refusals: usage errors exit 2, a model that cannot be quantized 1,
	// and neither leaves a file.
	bad := filepath.Join(dir, "bad.onnx")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no images flag", []string{twin, bad}, 2, "one of --calibration"},
		{"both", []string{twin, bad, "--data", pets, "--calibration", pets}, 2, "one of --calibration"},
		{"bad method", []string{twin, bad, "--data", pets, "--method", "median"}, 2, "unknown calibration method"},
		{"zero images", []string{twin, bad, "--data", pets, "--images", "0"}, 2, "--images 0"},
		{"batch too big", []string{twin, bad, "--data", pets, "--batch", "257"}, 2, "--batch 257"},
		{"bad percentile", []string{twin, bad, "--data", pets, "--percentile", "101"}, 2, "--percentile 101"},
		{"not a model", []string{pets + "/annotations/test.txt", bad, "--data", pets, "--images", "2"}, 1, "not an ONNX model"},
		{"quantized already", []string{testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"), bad, "--data", pets, "--images", "2"}, 1, "already quantized"},
		{"empty dir", []string{twin, bad, "--calibration", dir + "/none"}, 1, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := cli(t, append([]string{"quantize"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.want)
			}
			if _, err := os.Stat(bad); err == nil {
				t.Error("a file was written")
			}
		})
	}
}
