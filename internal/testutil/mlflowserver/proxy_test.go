package mlflowserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	defer backend.Close()
	p := NewProxy(t, backend.URL)
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", p.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		require, send string
		want          int
	}{{"", "", 200}, {"s3cret", "", 401}, {"s3cret", "wrong", 403}, {"s3cret", "s3cret", 200}} {
		p.RequireToken(tc.require)
		if got := get("/api/2.0/mlflow/runs/get", tc.send); got != tc.want {
			t.Errorf("token %q, sent %q: %d, want %d", tc.require, tc.send, got, tc.want)
		}
	}
	p.RequireToken("")
	get("/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model/model.onnx", "")
	m, _ := p.Counts()
	if p.Total() != 5 || m["GET /api/2.0/mlflow/runs/get"] != 4 || m["GET /api/2.0/mlflow-artifacts/artifacts/..."] != 1 {
		t.Errorf("counts %v total %d", m, p.Total())
	}
	p.SetDelay(200 * time.Millisecond)
	start := time.Now()
	get("/x", "")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("a delayed answer came after %v", d)
	}
	p.Reset()
	if p.Total() != 0 {
		t.Error("Reset kept the count")
	}
}
