package ab

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// server is a real loopback server with the log's two endpoints.
func server(t *testing.T, l *Log) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/api/feedback", l.FeedbackHandler())
	mux.Handle("/api/ab", l.ReportHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url, ctype, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if method != http.MethodHead {
		if err := json.Unmarshal(b, &m); err != nil || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s %s: %d %q is not JSON: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, m
}

func TestFeedbackHandler(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "p.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Record(rec("r1", "1", false, "cat", 0.9))
	l.Record(rec("r2", "2", true, "dog", 0.9))
	srv := server(t, l)
	const js = "application/json"
	for _, c := range []struct {
		name, method, ctype, body string
		status                    int
		errMsg                    string
	}{
		{"ok", "POST", js, `{"request_id":"r1","label":"cat"}`, 200, ""},
		{"charset", "POST", "application/json; charset=utf-8", `{"request_id":"r2","label":"cat"}`, 200, ""},
		{"no content type", "POST", "", `{"request_id":"r1","label":"dog"}`, 200, ""},
		{"unknown id", "POST", js, `{"request_id":"nope","label":"cat"}`, 404, "unknown request"},
		{"GET", "GET", "", "", 405, "method not allowed"},
		{"form", "POST", "application/x-www-form-urlencoded", "request_id=r1&label=cat", 415, "unsupported media type"},
		{"bad content type", "POST", ";;", `{}`, 415, "unsupported media type"},
		{"too large", "POST", js, `{"request_id":"r1","label":"` + strings.Repeat("a", MaxFeedbackBody) + `"}`, 413, "body too large"},
		{"not JSON", "POST", js, `{"request_id":`, 400, "invalid JSON"},
		{"two values", "POST", js, `{"request_id":"r1","label":"cat"} {}`, 400, "invalid JSON"},
		{"unknown field", "POST", js, `{"request_id":"r1","label":"cat","x":1}`, 400, "invalid JSON"},
		{"wrong type", "POST", js, `{"request_id":1,"label":"cat"}`, 400, "invalid JSON"},
		{"no id", "POST", js, `{"label":"cat"}`, 400, "invalid feedback"},
		{"no label", "POST", js, `{"request_id":"r1","label":"  "}`, 400, "invalid feedback"},
		{"long label", "POST", js, `{"request_id":"r1","label":"` + strings.Repeat("a", MaxLabel+1) + `"}`, 400, "invalid feedback"},
		{"long id", "POST", js, `{"request_id":"` + strings.Repeat("a", MaxField+1) + `","label":"cat"}`, 400, "invalid feedback"},
		{"control", "POST", js, `{"request_id":"r1","label":"ca\nt"}`, 400, "invalid feedback"},
	} {
		status, m := do(t, c.method, srv.URL+"/api/feedback", c.ctype, c.body)
		if status != c.status || (c.errMsg != "" && (m["error"] != c.errMsg || m["detail"] == "")) {
			t.Errorf("%s: %d %v, want %d %q", c.name, status, m, c.status, c.errMsg)
		}
	}
	// Three feedbacks were accepted: r1 twice (the last, dog, counts) and r2.
	status, m := do(t, "GET", srv.URL+"/api/ab", "", "")
	if status != 200 || m["feedback"] != 2.0 || m["records"] != 2.0 {
		t.Fatalf("%d %v", status, m)
	}
	vs := m["versions"].([]any)
	v1 := vs[0].(map[string]any)
	if v1["key"] != "pet-breed/1" || v1["accuracy"].(map[string]any)["hits"] != 0.0 {
		t.Errorf("%v", v1)
	}
}

func TestReportHandler(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "p.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, l)
	// An empty log: no versions, an empty list.
	status, m := do(t, "GET", srv.URL+"/api/ab", "", "")
	if status != 200 || m["records"] != 0.0 || len(m["versions"].([]any)) != 0 {
		t.Fatalf("%d %v", status, m)
	}
	for i := range 10 {
		l.Record(rec(string(rune('a'+i)), "1", false, "cat", 0.5))
		l.Record(rec(string(rune('a'+i)), "2", true, "cat", 0.5))
	}
	// Every record made before the request is in the report (and not a cached one).
	status, m = do(t, "GET", srv.URL+"/api/ab?champion=2", "", "")
	if status != 200 || m["records"] != 20.0 || m["champion"] != "pet-breed/2" {
		t.Fatalf("%d %v", status, m)
	}
	v := m["versions"].([]any)[1].(map[string]any)
	if v["agreement"].(map[string]any)["rate"] != 1.0 || v["verdict"] != "no feedback for this version yet" {
		t.Errorf("%v", v)
	}
	if status, m := do(t, "GET", srv.URL+"/api/ab?champion=7", "", ""); status != 400 || m["error"] != "unknown champion" {
		t.Errorf("%d %v", status, m)
	}
	if status, _ := do(t, "POST", srv.URL+"/api/ab", "", ""); status != 405 {
		t.Errorf("POST: %d", status)
	}
	if status, _ := do(t, "HEAD", srv.URL+"/api/ab", "", ""); status != 200 {
		t.Errorf("HEAD: %d", status)
	}
	// Closed: the report still reads the files; feedback cannot be written.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if status, m := do(t, "GET", srv.URL+"/api/ab", "", ""); status != 200 || m["records"] != 20.0 {
		t.Errorf("closed: %d %v", status, m)
	}
	if status, m := do(t, "POST", srv.URL+"/api/feedback", "", `{"request_id":"a","label":"cat"}`); status != 503 {
		t.Errorf("closed feedback: %d %v", status, m)
	}
}
