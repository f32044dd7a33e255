package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petbreed"
	"petbreed/internal/ab"
	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
)

// writeABLog writes a real prediction log, small enough to rotate: version 1
// answers every request and is right on 60 of 100 with feedback, version 2
// shadows each and is right on 80.
func writeABLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "predictions.jsonl")
	l, err := ab.OpenOptions(path, ab.Options{MaxBytes: 128 << 10, Files: 8})
	if err != nil {
		t.Fatal(err)
	}
	top := func(label string) []petbreed.Prediction {
		return []petbreed.Prediction{{Label: label, Probability: 0.75}}
	}
	const n = 100
	for i := range n {
		id := fmt.Sprintf("req-%03d", i)
		v1, v2 := "cat", "cat"
		if i >= 60 {
			v1 = "dog"
		}
		if i >= 80 {
			v2 = "dog"
		}
		l.Record(ab.Record{RequestID: id, Time: time.Now(), Model: "pet-breed", Version: "1", TopK: top(v1), LatencyMS: 5})
		l.Record(ab.Record{RequestID: id, Time: time.Now(), Model: "pet-breed", Version: "2", Shadow: true, TopK: top(v2), LatencyMS: 6})
	}
	srv := httptest.NewServer(l.FeedbackHandler())
	defer srv.Close()
	if err := l.Flush(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		body := fmt.Sprintf(`{"request_id":"req-%03d","label":"cat"}`, i)
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("feedback: %s", resp.Status)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Dropped() != 0 {
		t.Fatalf("%d dropped", l.Dropped())
	}
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatalf("the log did not rotate: %v", err)
	}
	return path
}

func TestABReport(t *testing.T) {
	path := writeABLog(t)
	code, out, errs := cli(t, "ab", "report", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"200 predictions, 100 requests with feedback",
		"pet-breed/1", "champion", "pet-breed/2", "challenger",
		"60.0% [50.2, 69.1] of 100", "80.0% [71.1, 86.7] of 100", "80.0% of 100",
		"pet-breed/2 against pet-breed/1: significantly better than the champion at 5% (p = 0.00203)",
		"pet-breed/2 against pet-breed/1: on the same requests, significantly better than the champion at 5% (right on 20 it missed, wrong on 0 it got; p = 1.91e-06)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}

	code, out, errs = cli(t, "ab", "report", "--json", "--champion", "2", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep ab.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Champion != "pet-breed/2" || rep.Records != 200 || len(rep.Versions) != 2 || rep.Versions[1].Test == nil ||
		rep.Versions[1].Test.Significant != true || rep.Versions[1].Test.Diff >= 0 {
		t.Errorf("%+v", rep)
	}

	// Two servers' logs read as one.
	code, out, errs = cli(t, "ab", "report", "--json", path, writeABLog(t))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rep = ab.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Records != 400 || rep.Versions[0].Requests != 200 {
		t.Errorf("%v %+v", err, rep)
	}
}

func TestABReportErrors(t *testing.T) {
	path := writeABLog(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no log", []string{"ab", "report"}, 2, "arg"},
		{"a missing second log", []string{"ab", "report", path, filepath.Join(dir, "none.jsonl")}, 1, "no prediction log at"},
		{"no subcommand", []string{"ab"}, 2, "subcommand"},
		{"unknown flag", []string{"ab", "report", "--bogus", path}, 2, "unknown flag"},
		{"unknown champion", []string{"ab", "report", "--champion", "7", path}, 2, "no such version"},
		{"missing log", []string{"ab", "report", filepath.Join(dir, "none.jsonl")}, 1, "no prediction log at"},
		{"a directory", []string{"ab", "report", dir}, 1, "is a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := cli(t, c.args...)
			if code != c.code || !strings.Contains(errs, c.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errs, c.code, c.msg)
			}
		})
	}
}

// TestABServe: the real `petbreed serve` with two real models (the int8
// backbone answering, its float twin as a shadow) and a prediction log:
// real photos through /api/predict, their ids' feedback, /api/ab, and
// `ab report` on the log the server is writing agree.
func TestABServe(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "predictions.jsonl")
	// From the repository, where the server finds the ONNX Runtime library.
	base := testutil.StartServe(t, testassets.Root(t), nil,
		"--model", "a="+testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"),
		"--model", "b="+testassets.Path(t, "backbone", "mobilenetv2-12-fp32-twin.onnx"),
		"--labels", testassets.Path(t, "backbone", "imagenet_labels.txt"),
		"--shadow", "b", "--prediction-log", log)
	post := func(path, ctype string, body []byte) (int, map[string]any) {
		t.Helper()
		res, err := http.Post(base+path, ctype, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %d %q", path, res.StatusCode, b)
		}
		return res.StatusCode, m
	}
	photos := []string{"chelsea.png", "cat_720p.jpg", "parrot.jpg", "grace_hopper.bmp", "pets.jpg"}
	for _, name := range photos {
		data, err := os.ReadFile(testassets.Path(t, "photos", name))
		if err != nil {
			t.Fatal(err)
		}
		status, m := post("/api/predict", "application/octet-stream", data)
		id, _ := m["request_id"].(string)
		if status != 200 || id == "" {
			t.Fatalf("predict %s: %d %v", name, status, m)
		}
		// The champion's answer is taken as the truth: its accuracy is 100%.
		body := fmt.Sprintf(`{"request_id":%q,"label":%q}`, id, m["predicted_breed"])
		if status, m := post("/api/feedback", "application/json", []byte(body)); status != 200 {
			t.Fatalf("feedback %s: %d %v", name, status, m)
		}
	}
	if status, m := post("/api/feedback", "application/json", []byte(`{"request_id":"never","label":"x"}`)); status != 404 || m["error"] != "unknown request" {
		t.Errorf("unknown id: %d %v", status, m)
	}
	if status, _ := post("/api/feedback", "text/plain", []byte(`{}`)); status != 415 {
		t.Errorf("text/plain: %d", status)
	}

	// The shadow answers after the primary, on its own: wait until each
	// copy is answered or dropped (the server's metrics) and its answer is
	// in the log, so /api/ab and the file are read at rest.
	n := len(photos)
	var live ab.Report
	for deadline := time.Now().Add(30 * time.Second); ; {
		answered, dropped := metricValue(t, base, `petbreed_model_requests_total{model="b",version="1"}`),
			metricValue(t, base, `petbreed_shadow_dropped_total{model="b"}`)
		live = getReport(t, base)
		logged := 0
		if len(live.Versions) == 2 {
			logged = live.Versions[1].Shadow
		}
		if int(answered+dropped) >= n && logged == int(answered) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shadow's copies: %v answered, %v dropped, %d logged, of %d", answered, dropped, logged, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if live.Champion != "a/1" || live.Feedback != n || len(live.Versions) != 2 {
		t.Fatalf("%+v", live)
	}
	a, b := live.Versions[0], live.Versions[1]
	if a.Requests != n || a.Share != 1 || a.Accuracy == nil || a.Accuracy.Hits != n || a.Accuracy.N != n {
		t.Errorf("champion %+v %+v", a, a.Accuracy)
	}
	// A shadow copy may be dropped when the server is busy, never returned.
	if b.Requests != 0 || b.Shadow == 0 || b.Shadow > n || b.Agreement == nil || b.Agreement.N != b.Shadow ||
		b.Accuracy == nil || b.Accuracy.N != b.Shadow || b.Paired == nil || b.Paired.N != b.Shadow {
		t.Errorf("shadow %+v", b)
	}
	if live.Records != n+b.Shadow {
		t.Errorf("%d records, want %d", live.Records, n+b.Shadow)
	}

	// The CLI, from the file the server is writing, says the same.
	code, out, errs := cli(t, "ab", "report", "--json", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var fromFile ab.Report
	if err := json.Unmarshal([]byte(out), &fromFile); err != nil {
		t.Fatal(err)
	}
	live.Dropped = 0
	lj, _ := json.Marshal(live)
	fj, _ := json.Marshal(fromFile)
	if !bytes.Equal(lj, fj) {
		t.Errorf("/api/ab and ab report differ:\n%s\n%s", lj, fj)
	}
}

// getReport reads the server's /api/ab.
func getReport(t *testing.T, base string) ab.Report {
	t.Helper()
	res, err := http.Get(base + "/api/ab")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r ab.Report
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || res.StatusCode != 200 {
		t.Fatalf("/api/ab: %d %v", res.StatusCode, err)
	}
	return r
}

// metricValue is one series' value in the server's /metrics (0 when absent).
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %q", series, line)
			}
			return f
		}
	}
	return 0
}
