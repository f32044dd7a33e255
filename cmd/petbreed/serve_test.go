package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
)

// TestServeSIGTERM runs `petbreed serve` in-process on a free port, with
// settings from flags and the environment, classifies a photo, and stops it
// with SIGTERM: exit 0.
func TestServeSIGTERM(t *testing.T) {
	t.Setenv("PETBREED_MAX_BATCH", "8") // the flag wins
	t.Setenv("PETBREED_QUEUE", "50")    // no flag: the environment
	t.Setenv("PETBREED_MAX_DELAY", "3ms")
	t.Setenv("PETBREED_MEMORY_BUDGET", "256MiB")
	t.Setenv("PETBREED_DECODE_TIMEOUT", "3s")
	t.Setenv("PETBREED_BUDGET_WAIT", "250ms")
	t.Setenv("PETBREED_DRAIN_TIMEOUT", "9s") // the flag wins
	t.Setenv("PETBREED_ADMIN_TOKEN", "")
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--max-batch", "4", "--log-format", "json", "--drain-timeout", "2s"}, backboneArgs(t)...)
	var stdout, stderr testutil.Buffer
	code, exited := make(chan int, 1), make(chan struct{})
	go func() { code <- run(args, &stdout, &stderr); close(exited) }()

	url := testutil.WaitReady(t, stderr.String, exited, 10*time.Second)
	for _, want := range []string{`"max_batch":4`, `"queue":50`, `"max_delay":"3ms"`, `"admin":false`,
		`"max_pixels":25000000`, `"memory_budget":268435456`, `"decode_timeout":"3s"`, `"drain_timeout":"2s"`, `"budget_wait":"250ms"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("settings: want %s in %s", want, stderr.String())
		}
	}
	resp, err := http.Post(url+"/api/predict", "image/png", strings.NewReader(string(testassets.Read(t, "photos", "chelsea.png"))))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var a struct {
		PredictedBreed string `json:"predicted_breed"`
		Model          struct{ Name string }
	}
	if err := json.Unmarshal(b, &a); err != nil || a.PredictedBreed != "Egyptian cat" || a.Model.Name != "mobilenetv2-12-int8" {
		t.Errorf("predict: %d %s", resp.StatusCode, b)
	}

	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d after SIGTERM: %s", c, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if !strings.Contains(stderr.String(), `"path":"/api/predict","status":200`) {
		t.Errorf("no request log line: %s", stderr.String())
	}
}

func TestServeUsageErrors(t *testing.T) {
	t.Setenv("PETBREED_ADMIN_TOKEN", "")
	tests := []struct {
		env, val string
		args     []string
		msg      string
	}{
		{"PETBREED_MAX_BATCH", "many", nil, "PETBREED_MAX_BATCH"},
		{"PETBREED_MAX_DELAY", "soon", nil, "PETBREED_MAX_DELAY"},
		{"", "", []string{"--max-batch", "0"}, "--max-batch"},
		{"", "", []string{"--max-body", "lots"}, "--max-body"},
		{"", "", []string{"--log-format", "xml"}, "--log-format"},
		{"PETBREED_MAX_BODY", "-5", nil, "--max-body"},
		{"PETBREED_MEMORY_BUDGET", "lots", nil, "--memory-budget"},
		{"", "", []string{"--max-body", "20MiB", "--memory-budget", "10MiB"}, "--max-body 20MiB is over --memory-budget"},
		{"PETBREED_DECODE_TIMEOUT", "soon", nil, "PETBREED_DECODE_TIMEOUT"},
		{"", "", []string{"--decode-timeout", "0s"}, "--decode-timeout"},
		{"", "", []string{"--drain-timeout", "-1s"}, "--drain-timeout"},
		{"PETBREED_MAX_PIXELS", "0", nil, "--max-pixels"},
		{"PETBREED_BUDGET_WAIT", "-1s", nil, "--budget-wait"},
		{"", "", []string{"--model", "a=a.onnx"}, "a name is needed"}, // beside x.onnx
		{"", "", []string{"--split", "b=3"}, "--split"},
		{"", "", []string{"--shadow", "nope"}, "--shadow"},
		{"", "", []string{"--guard-window", "0"}, "--guard-window"},
		{"PETBREED_GUARD_LATENCY_RATIO", "0.5", nil, "--guard-latency-ratio"},
		{"PETBREED_SHADOW_TIMEOUT", "0s", nil, "--shadow-timeout"},
		{"PETBREED_SHADOW_THREADS", "0", nil, "--shadow-threads"},
		{"PETBREED_SHARE_BACKBONE", "maybe", nil, "PETBREED_SHARE_BACKBONE"},
		{"", "", []string{"--models", "/nonexistent/models.yaml"}, "--models"},
		{"", "", []string{"--prediction-log-max-bytes", "lots", "--prediction-log", "/tmp/x"}, "--prediction-log-max-bytes"},
		{"", "", []string{"--prediction-log-files", "0", "--prediction-log", "/tmp/x"}, "--prediction-log-files"},
		{"PETBREED_PREDICTION_LOG_QUEUE", "0", []string{"--prediction-log", "/tmp/x"}, "--prediction-log-queue"},
	}
	for _, tt := range tests {
		if tt.env != "" {
			t.Setenv(tt.env, tt.val)
		}
		code, _, errs := cli(t, append([]string{"serve", "--model", "x.onnx", "--addr", "127.0.0.1:0"}, tt.args...)...)
		if code != 2 || !strings.Contains(errs, tt.msg) {
			t.Errorf("%s=%s %v: exit %d, %s", tt.env, tt.val, tt.args, code, errs)
		}
		if tt.env != "" {
			t.Setenv(tt.env, "")
		}
	}
	// Several models: names, weights and roles are checked before anything
	// loads.
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--model", "a=a.onnx", "--model", "a=b.onnx"}, "given twice"},
		{[]string{"--model", "a=a.onnx", "--model", "b=b.onnx", "--split", "a=-3"}, "weight"},
		{[]string{"--model", "a=a.onnx", "--model", "b=b.onnx", "--split", "a=1,c=2"}, "--split"},
		{[]string{"--model", "a=a.onnx", "--shadow", "a"}, "every model is a shadow"},
		{[]string{"--model", "a b=a.onnx", "--model", "b=b.onnx"}, "a name is needed"},
	} {
		code, _, errs := cli(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, tt.args...)...)
		if code != 2 || !strings.Contains(errs, tt.msg) {
			t.Errorf("%v: exit %d, %s", tt.args, code, errs)
		}
	}
	// A model that does not exist: a failure (1), once the flags are fine.
	code, _, errs := cli(t, "serve", "--model", "/nonexistent/model.onnx", "--addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "model.onnx") {
		t.Errorf("missing model: exit %d, %s", code, errs)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"10MiB": 10 << 20, "512KiB": 512 << 10, "1MB": 1e6, "2048": 2048, "3k": 3 << 10, " 7 M ": 7 << 20, "1B": 1} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "0", "ten", "1.5MB", "99999999TB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

// TestServeSeveralModels runs `petbreed serve` with two named models, the
// second a shadow, and a prediction log: the answer comes from the first
// (its headers say so), both answers are logged, and SIGTERM writes the log
// out and exits 0.
func TestServeSeveralModels(t *testing.T) {
	t.Setenv("PETBREED_ADMIN_TOKEN", "")
	logPath := filepath.Join(t.TempDir(), "predictions.jsonl")
	args := []string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--drain-timeout", "2s",
		"--model", "int8=" + testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"),
		"--model", "fp32=" + testassets.Path(t, "backbone", "mobilenetv2-12-fp32-twin.onnx"),
		"--shadow", "fp32", "--labels", testassets.Path(t, "backbone", "imagenet_labels.txt"),
		"--prediction-log", logPath}
	var stdout, stderr testutil.Buffer
	code, exited := make(chan int, 1), make(chan struct{})
	go func() { code <- run(args, &stdout, &stderr); close(exited) }()
	url := testutil.WaitReady(t, stderr.String, exited, 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), `"model":"fp32","version":"1","shadow":true`) {
		if time.Now().After(deadline) {
			t.Fatalf("the shadow did not load: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	req, _ := http.NewRequest("POST", url+"/api/predict", strings.NewReader(string(testassets.Read(t, "photos", "chelsea.png"))))
	req.Header.Set("X-User-Id", "u1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Petbreed-Model") != "int8" || !strings.Contains(string(b), `"name":"int8"`) {
		t.Errorf("predict: %d %s %v", resp.StatusCode, b, resp.Header)
	}
	time.Sleep(500 * time.Millisecond) // the shadow's copy runs after the answer
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d: %s", c, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 2 || !strings.Contains(string(log), `"model":"int8"`) || !strings.Contains(string(log), `"model":"fp32"`) ||
		strings.Count(string(log), `"shadow":true`) != 1 || strings.Count(string(log), `"unit":"u1"`) != 2 {
		t.Errorf("prediction log:\n%s", log)
	}
}
