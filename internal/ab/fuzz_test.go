package ab

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRead: any bytes read as a log give valid entries and count the rest
// as skipped lines, without a panic; the comparison of what was read never
// fails without a champion named, and its JSON encodes (no NaN).
func FuzzRead(f *testing.F) {
	f.Add([]byte(smallLog))
	f.Add([]byte(`{"kind":"prediction","request_id":"a","model":"m","version":"1","top_k":null}` + "\n"))
	f.Add([]byte(`{"kind":"prediction","request_id":"a","model":"m","version":"1","top_k":[{"label":1}]}` + "\n"))
	f.Add([]byte(`{"kind":"feedback","request_id":"a","label":"x"}` + "\n\r\n\n{"))
	f.Add([]byte(`{"kind":"prediction","request_id":"a","version":"1","latency_ms":1e308,"top_k":[{"probability":3e38}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		es := &Entries{}
		if err := es.read(bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		if len(es.entries)+es.Skipped > lines {
			t.Fatalf("%d entries + %d skipped from %d lines", len(es.entries), es.Skipped, lines)
		}
		for _, e := range es.entries {
			if e.RequestID == "" || (!e.Feedback && e.Model == "" && e.Version == "") || (e.Feedback && e.Label == "") {
				t.Fatalf("invalid entry kept: %+v", e)
			}
		}
		rep, err := es.Compare("")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := json.Marshal(rep); err != nil {
			t.Fatalf("the report does not encode: %v", err)
		}
	})
}

// FuzzFeedback: any body to POST /api/feedback is answered 200, 400, 404,
// 413 or 415 with a JSON error, never a panic.
func FuzzFeedback(f *testing.F) {
	f.Add(`{"request_id":"r1","label":"cat"}`, "application/json")
	f.Add(`{"request_id":"r1","label":"ca\u0000t"}`, "")
	f.Add(`{"request_id":"nope","label":"cat"}`, "application/json; charset=utf-8")
	f.Add(`[1,2]`, "text/plain")
	l, err := Open(filepath.Join(f.TempDir(), "p.jsonl"), 0)
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	l.Record(rec("r1", "1", false, "cat", 0.9))
	h := l.FeedbackHandler()
	f.Fuzz(func(t *testing.T, body, ctype string) {
		req := httptest.NewRequest(http.MethodPost, "/api/feedback", strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var m map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%d %q: not JSON", rec.Code, rec.Body)
		}
		switch rec.Code {
		case 200:
			if m["request_id"] != "r1" {
				t.Fatalf("accepted %v", m)
			}
		case 400, 404, 413, 415, 503:
			if m["error"] == "" || m["detail"] == "" {
				t.Fatalf("%d without error and detail: %v", rec.Code, m)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
