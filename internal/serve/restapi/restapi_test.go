package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"petbreed"
	"petbreed/internal/serve/protocol"
	"petbreed/internal/serve/protocol/protocoltest"
)

// The adapter against a fake router: statuses and JSON shapes, in
// milliseconds. The real model is tested end to end in package serve.

func fakeModel() *protocoltest.Predictor {
	return &protocoltest.Predictor{
		M: protocol.Model{Name: "pets", Version: "3", Labels: []string{"a", "b", "c"}, Labelled: true,
			Input: "input", Output: "probs", Size: 4, TensorLen: 48,
			Preprocess: petbreed.Preprocess{Mode: petbreed.ModeSquash, Size: 4, Filter: "bilinear", Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25}}},
		Probs: []float32{0.2, 0.7, 0.1},
	}
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func serve(t *testing.T, rt *protocoltest.Router, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	New(rt, rt, Config{MaxResizePixels: 100 * 100}).Register(func(method, pattern string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+pattern, h)
	})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	if n := rt.Held(); n != 0 {
		t.Errorf("%d holds on the router not given back", n)
	}
	return w
}

type errorBody struct{ Error, Detail string }

func TestPredict(t *testing.T) {
	img := pngBytes(t, 8, 6)
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "cat.png")
	fw.Write(img)
	mw.Close()
	for _, tt := range []struct {
		name     string
		notReady bool
		query    string
		body     []byte
		ctype    string
		err      error // the predictor's
		status   int
		errMsg   string
		topK     int
		filename string
	}{
		{name: "raw body", body: img, status: 200, topK: 3, query: "?filename=x.png", filename: "x.png"},
		{name: "multipart", body: form.Bytes(), ctype: mw.FormDataContentType(), status: 200, topK: 3, filename: "cat.png"},
		{name: "top_k", query: "?top_k=2", body: img, status: 200, topK: 2},
		{name: "bad top_k", query: "?top_k=0", body: img, status: 400, errMsg: "bad parameter"},
		{name: "empty body", status: 400, errMsg: "no image"},
		{name: "not ready", notReady: true, body: img, status: 503, errMsg: "not ready"},
		{name: "overloaded", body: img, err: protocol.ErrOverloaded, status: 503, errMsg: "overloaded"},
		{name: "client gone", body: img, err: context.Canceled, status: protocol.StatusClientClosed, errMsg: "cancelled"},
		{name: "internal", body: img, err: bytes.ErrTooLarge, status: 500, errMsg: "internal error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeModel()
			p.Err = tt.err
			rt := &protocoltest.Router{P: p}
			if tt.notReady {
				rt.P = nil
			}
			req := httptest.NewRequest("POST", "/api/predict"+tt.query, bytes.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			w := serve(t, rt, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status != 200 {
				var e errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error != tt.errMsg || e.Detail == "" {
					t.Errorf("error %s, want %q with a detail", w.Body, tt.errMsg)
				}
				if tt.status == 503 && w.Header().Get("Retry-After") == "" {
					t.Error("a 503 without Retry-After")
				}
				return
			}
			var a PredictAnswer
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			if a.PredictedBreed != "b" || a.Confidence != 0.7 || len(a.TopK) != tt.topK || a.TopK[0].Index != 1 ||
				a.Model != (ModelRef{"pets", "3"}) || a.Filename != tt.filename {
				t.Errorf("answer %+v", a)
			}
			if len(p.Images) != 1 || !bytes.Equal(p.Images[0], img) {
				t.Errorf("the predictor got %d images", len(p.Images))
			}
		})
	}
}

func TestClasses(t *testing.T) {
	rt := &protocoltest.Router{P: fakeModel()}
	w := serve(t, rt, httptest.NewRequest("GET", "/api/classes", nil))
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"classes":["a","b","c"],"count":3,"model":"pets","version":"3"}` {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	w = serve(t, &protocoltest.Router{}, httptest.NewRequest("GET", "/api/classes", nil))
	if w.Code != 503 {
		t.Errorf("not ready: %d", w.Code)
	}
}

func TestResizePreprocess(t *testing.T) {
	img := pngBytes(t, 8, 6)
	for _, tt := range []struct {
		name, path, accept string
		body               []byte
		budget             int64
		status             int
		check              func(t *testing.T, w *httptest.ResponseRecorder)
	}{
		{"resize", "/api/resize?width=5&height=3", "", img, 0, 200, func(t *testing.T, w *httptest.ResponseRecorder) {
			h := w.Header()
			if h.Get("Content-Type") != "image/png" || h.Get("X-New-Width") != "5" || h.Get("X-Original-Width") != "8" {
				t.Errorf("headers %v", h)
			}
		}},
		{"resize json", "/api/resize?width=5&height=3", "application/json", img, 0, 200, func(t *testing.T, w *httptest.ResponseRecorder) {
			var a struct {
				New    struct{ Width, Height int }
				Format string
				Bytes  int
			}
			if json.Unmarshal(w.Body.Bytes(), &a); a.New.Width != 5 || a.New.Height != 3 || a.Format != "png" || a.Bytes == 0 {
				t.Errorf("%s", w.Body)
			}
		}},
		{"resize without height", "/api/resize?width=5", "", img, 0, 400, nil},
		{"resize over the pixel limit", "/api/resize?width=1000&height=1000", "", img, 0, 400, nil},
		{"resize over the budget", "/api/resize?width=50&height=50", "", img, 1000, 400, nil},
		{"resize not an image", "/api/resize?width=5&height=3", "", []byte("hello, world"), 0, 415, nil},
		{"preprocess", "/api/preprocess", "", img, 0, 200, func(t *testing.T, w *httptest.ResponseRecorder) {
			if w.Header().Get("X-Final-Width") != "4" || w.Header().Get("Content-Type") != "image/png" {
				t.Errorf("headers %v", w.Header())
			}
		}},
		{"preprocess json", "/api/preprocess", "application/json", img, 0, 200, func(t *testing.T, w *httptest.ResponseRecorder) {
			var a struct {
				Final      struct{ Width int }
				Normalized bool
				Tensor     *ChannelStats
			}
			// A black image: (0 - 0.5) / 0.25 everywhere.
			if json.Unmarshal(w.Body.Bytes(), &a); a.Final.Width != 4 || !a.Normalized || a.Tensor == nil || a.Tensor.Mean[0] != -2 {
				t.Errorf("%s", w.Body)
			}
		}},
		{"preprocess bad grayscale", "/api/preprocess?grayscale=maybe", "", img, 0, 400, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeModel()
			p.Budget = tt.budget
			req := httptest.NewRequest("POST", tt.path, bytes.NewReader(tt.body))
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			w := serve(t, &protocoltest.Router{P: p}, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.check != nil {
				tt.check(t, w)
			}
		})
	}
}

func TestWantsJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"": false, "application/json": true, "image/png, application/json;q=0.5": true,
		"application/json;q=0": false, "text/html": false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", accept)
		if got := wantsJSON(r); got != want {
			t.Errorf("Accept %q: %v, want %v", accept, got, want)
		}
	}
}
