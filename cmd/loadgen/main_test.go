package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"-url", "http://192.0.2.1:8080/api/predict", "-image", "x.jpg"},
		{"-url", "http://example.com/api/predict", "-image", "x.jpg"},
		{"-wait", "http://10.0.0.1/api/health"},
	} {
		code, _, stderr := cli(t, args...)
		if code != exitUsage || !strings.Contains(stderr, "not loopback") || !strings.Contains(stderr, "forbids traffic elsewhere") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and a clear refusal", args, code, stderr)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-url", "http://127.0.0.1:1/", "-wait", "http://127.0.0.1:1/"},
		{"-url", "http://127.0.0.1:1/"},
		{"-url", "http://127.0.0.1:1/", "-image", "x", "-c", "0"},
		{"-url", "http://127.0.0.1:1/", "-image", "x", "-json", "-env"},
		{"-free-port", "extra"},
		{"-wait", "http://127.0.0.1:1/", "-since", "yesterday"},
	} {
		if code, _, stderr := cli(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d (%s), want %d", args, code, stderr, exitUsage)
		}
	}
}

func TestLoad(t *testing.T) {
	img := filepath.Join(t.TempDir(), "cat.jpg")
	if err := os.WriteFile(img, []byte("\xff\xd8\xff\xe0 a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, h, err := r.FormFile("file"); err != nil || h.Filename != "cat.jpg" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		w.Write([]byte(`{"predicted_breed":"Abyssinian"}`))
	}))
	defer s.Close()
	pid := strconv.Itoa(os.Getpid()) // this process stands in for the server

	code, out, stderr := cli(t, "-url", s.URL, "-image", img, "-multipart", "-c", "4", "-n", "50", "-warmup", "4", "-json", "-pid", pid)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if r.Requests != 50 || r.Errors != 0 || r.Throughput <= 0 || r.LatencyMS.P50 <= 0 || r.Server == nil || r.Server.PeakRSSBytes <= 0 {
		t.Errorf("report %+v", r)
	}

	code, out, _ = cli(t, "-url", s.URL, "-image", img, "-n", "10", "-env")
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	if code != exitOK || env["requests"] != "10" || env["errors"] != "10" || env["errors_by_status"] != "400: 10" ||
		!strings.HasPrefix(env["first_error"], "400 Bad Request: bad form") {
		t.Errorf("raw body to a multipart-only server: exit %d, %v", code, env)
	}

	code, out, _ = cli(t, "-url", s.URL, "-image", img, "-multipart", "-d", "100ms", "-c", "2")
	if code != exitOK || !strings.Contains(out, "throughput") || !strings.Contains(out, "p99") {
		t.Errorf("table: exit %d:\n%s", code, out)
	}
}

func TestWaitAndHelpers(t *testing.T) {
	start := time.Now()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < 200*time.Millisecond {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"status":"healthy"}`)
	}))
	defer s.Close()
	since := strconv.FormatFloat(float64(start.UnixMicro())/1e6, 'f', 6, 64)
	code, out, stderr := cli(t, "-wait", s.URL+"/api/health", "-since", since, "-wait-timeout", "5s")
	secs, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
	if code != exitOK || err != nil || secs < 0.2 || secs > 3 {
		t.Errorf("-wait: exit %d, %q (%s); want about 0.2 s", code, out, stderr)
	}

	code, out, _ = cli(t, "-free-port")
	if port, err := strconv.Atoi(strings.TrimSpace(out)); code != exitOK || err != nil || port <= 0 {
		t.Errorf("-free-port: exit %d, %q", code, out)
	}
	code, out, _ = cli(t, "-rss", strconv.Itoa(os.Getpid()), "-env")
	if code != exitOK || !strings.Contains(out, "peak_rss_bytes=") {
		t.Errorf("-rss: exit %d, %q", code, out)
	}
	if code, _, _ := cli(t, "-rss", "1073741824"); code != exitFailure {
		t.Errorf("-rss of a missing process: exit %d", code)
	}
}

func TestParseEpoch(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1764000000.123456", time.Unix(1764000000, 123456000), true},
		{"1764000000,5", time.Unix(1764000000, 500000000), true},
		{"1764000000", time.Unix(1764000000, 0), true},
		{"abc", time.Time{}, false},
		{"1764000000.-5", time.Time{}, false},
		{"-1", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseEpoch(tt.in)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseEpoch(%q) = %v, %v", tt.in, got, err)
		}
	}
}
