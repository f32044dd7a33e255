package serve

import (
	"bytes"
	"encoding/json"
	"image"
	_ "image/jpeg"
	"image/png"
	"io"
	"net/http/httptest"
	"petbreed/internal/testassets"
	"petbreed/internal/web"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"petbreed/internal/imaging"
)

// chunked hides a reader's length, so the client streams it without a
// Content-Length.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestNotReadyBeforeTheModelLoads(t *testing.T) {
	s, err := New(Config{Model: "models:/pet-breed@champion", TrackingURI: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	jpg := petImage(t, "Bengal_10.jpg")
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/health", 503},
		{"GET", "/api/classes", 503},
		{"POST", "/api/predict", 503},
		{"POST", "/api/preprocess", 503},
		{"GET", "/v2/health/live", 200},
		{"GET", "/v2/health/ready", 503},
		{"GET", "/v2/models/pet-breed", 503},
		{"GET", "/v2/models/pet-breed/ready", 503},
		{"POST", "/v2/models/pet-breed/infer", 503},
		{"GET", "/v2", 200},
		{"GET", "/openapi.json", 200},
		{"GET", "/metrics", 200},
		{"POST", "/api/resize?width=10&height=10", 200}, // needs no model
	}
	for _, tt := range tests {
		r := do(t, tt.method, ts.URL+tt.path, bytes.NewReader(jpg), nil)
		if r.status != tt.status {
			t.Errorf("%s %s: %s, want %d", tt.method, tt.path, r, tt.status)
		}
		if r.status == 503 && r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", tt.method, tt.path)
		}
	}
	var h healthAnswer
	r := get(t, ts.URL+"/api/health")
	r.json(t, &h)
	if h.Status != "loading" || h.Ready || h.Model != nil {
		t.Errorf("health before load: %+v", h)
	}
	// Loading fails (no such model): the server stays not ready, and says why.
	if err := s.Load(); err == nil {
		t.Fatal("Load of a model that is not registered succeeded")
	}
	r = get(t, ts.URL+"/api/health")
	r.json(t, &h)
	if r.status != 503 || h.LastReloadError == nil || !strings.Contains(h.LastReloadError.Message, "pet-breed") {
		t.Errorf("health after a failed load: %s", r)
	}
}

func TestPredict(t *testing.T) {
	ts := start(t, Config{MaxBody: 512 << 10})
	jpg := petImage(t, "Bengal_10.jpg")
	form, formType := multipartBody(t, "file", "Bengal_10.jpg", jpg)
	noFile, noFileType := multipartBody(t, "image", "x.jpg", jpg)
	big := bytes.Repeat(jpg, 40) // over 512 KiB
	bigForm, bigFormType := multipartBody(t, "file", "big.jpg", big)
	tests := []struct {
		name   string
		query  string
		body   io.Reader
		ctype  string
		status int
		errMsg string
	}{
		{"multipart", "", bytes.NewReader(form), formType, 200, ""},
		{"raw body", "?top_k=2&filename=cat.jpg", bytes.NewReader(jpg), "image/jpeg", 200, ""},
		{"raw body, lying content type", "", bytes.NewReader(jpg), "text/plain", 200, ""},
		{"raw body, streamed", "", chunked{bytes.NewReader(jpg)}, "application/octet-stream", 200, ""},
		{"top_k over the classes", "?top_k=1000", bytes.NewReader(jpg), "", 200, ""},
		{"top_k zero", "?top_k=0", bytes.NewReader(jpg), "", 400, "bad parameter"},
		{"top_k not a number", "?top_k=many", bytes.NewReader(jpg), "", 400, "bad parameter"},
		{"empty body", "", bytes.NewReader(nil), "", 400, "no image"},
		{"multipart without file", "", bytes.NewReader(noFile), noFileType, 400, "bad multipart body"},
		{"multipart without boundary", "", bytes.NewReader(form), "multipart/form-data", 400, "bad multipart body"},
		{"text", "", strings.NewReader("this is not an image, it is text"), "image/jpeg", 415, "not an image"},
		{"html", "", strings.NewReader("<html><body>hi</body></html>"), "image/png", 415, "not an image"},
		{"truncated jpeg", "", bytes.NewReader(jpg[:len(jpg)/2]), "image/jpeg", 422, "cannot decode the image"},
		{"pixel bomb", "", bytes.NewReader(testassets.BombPNG(20000, 20000)), "image/png", 422, "image over the pixel limit"},
		{"over the limit", "", bytes.NewReader(big), "image/jpeg", 413, "payload too large"},
		{"over the limit, streamed", "", chunked{bytes.NewReader(big)}, "image/jpeg", 413, "payload too large"},
		{"multipart over the limit", "", chunked{bytes.NewReader(bigForm)}, bigFormType, 413, "payload too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.ctype != "" {
				hdr["Content-Type"] = tt.ctype
			}
			r := do(t, "POST", ts.URL+"/api/predict"+tt.query, tt.body, hdr)
			if r.status != tt.status {
				t.Fatalf("%s, want %d", r, tt.status)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.status != 200 {
				var e struct{ Error, Detail string }
				r.json(t, &e)
				if e.Error != tt.errMsg || e.Detail == "" {
					t.Errorf("error %+v, want %q with a detail", e, tt.errMsg)
				}
				return
			}
			var a predictAnswer
			r.json(t, &a)
			if a.PredictedBreed != "Bengal" || a.Confidence < 0.5 || a.TopK[0].Label != "Bengal" || a.Confidence != a.TopK[0].Probability {
				t.Errorf("answer %+v", a)
			}
			if a.Model.Name != "pet-breed" || a.Model.Version != "1" || a.Ms <= 0 {
				t.Errorf("model %+v, ms %v", a.Model, a.Ms)
			}
			wantK := 3 // the class count caps top_k (default 5)
			if strings.Contains(tt.query, "top_k=2") {
				wantK = 2
			}
			if len(a.TopK) != wantK {
				t.Errorf("%d classes, want %d", len(a.TopK), wantK)
			}
			switch tt.name {
			case "multipart":
				if a.Filename != "Bengal_10.jpg" {
					t.Errorf("filename %q", a.Filename)
				}
			case "raw body":
				if a.Filename != "cat.jpg" {
					t.Errorf("filename %q", a.Filename)
				}
			}
		})
	}
	// Every breed comes back as itself.
	for _, f := range breedImages {
		var a predictAnswer
		r := post(t, ts.URL+"/api/predict", petImage(t, f), nil)
		r.json(t, &a)
		if a.PredictedBreed != breedOf(f) {
			t.Errorf("%s: %s", f, r)
		}
	}
	// The log has one line per request, with its id.
	if !strings.Contains(ts.logs.String(), `"path":"/api/predict","status":413`) ||
		!strings.Contains(ts.logs.String(), `"request_id":"`) {
		t.Errorf("request log:\n%.2000s", ts.logs.String())
	}
}

func TestHealthClassesAndPages(t *testing.T) {
	ts := start(t, Config{})
	var h healthAnswer
	r := get(t, ts.URL+"/api/health")
	r.json(t, &h)
	if r.status != 200 || h.Status != "healthy" || !h.Ready || h.Model == nil || h.Model.Name != "pet-breed" ||
		h.Model.Version != "1" || h.Model.Classes != 3 || h.LastReloadError != nil {
		t.Errorf("health: %s", r)
	}
	var c struct {
		Classes []string
		Count   int
	}
	r = get(t, ts.URL+"/api/classes")
	r.json(t, &c)
	slices.Sort(c.Classes)
	if c.Count != 3 || !slices.Equal(c.Classes, []string{"Abyssinian", "American Bulldog", "Bengal"}) {
		t.Errorf("classes: %s", r)
	}
	r = get(t, ts.URL+"/")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(r.body), "petbreed") || !strings.Contains(string(r.body), `href="/openapi.json"`) {
		t.Errorf("index: %s", r)
	}
	r = get(t, ts.URL+"/static/index.html")
	if r.status != 200 || !strings.Contains(string(r.body), "petbreed") {
		t.Errorf("static: %s", r)
	}
	r = get(t, ts.URL+"/nowhere")
	var e struct{ Error, Detail string }
	r.json(t, &e)
	if r.status != 404 || e.Error != "not found" {
		t.Errorf("unknown path: %s", r)
	}
	r = get(t, ts.URL+"/api/predict")
	r.json(t, &e)
	if r.status != 405 || e.Error != "method not allowed" || r.header.Get("Allow") == "" {
		t.Errorf("wrong method: %s", r)
	}
	r = do(t, "POST", ts.URL+"/api/health", nil, nil)
	if r.status != 405 {
		t.Errorf("POST /api/health: %s", r)
	}
	// The request id: the client's when sane, else a new one.
	r = do(t, "GET", ts.URL+"/api/health", nil, map[string]string{"X-Request-Id": "abc-123"})
	if r.header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("request id %q", r.header.Get("X-Request-Id"))
	}
	r = do(t, "GET", ts.URL+"/api/health", nil, map[string]string{"X-Request-Id": "bad id " + strings.Repeat("x", 80)})
	if id := r.header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Errorf("request id %q", id)
	}
}

func TestResize(t *testing.T) {
	ts := start(t, Config{})
	jpg := petImage(t, "Bengal_10.jpg")
	_, w0, h0, err := imaging.DecodeConfig(jpg)
	if err != nil {
		t.Fatal(err)
	}
	gif := petImage(t, "Abyssinian_34.jpg") // a GIF named .jpg
	tests := []struct {
		name, query string
		body        []byte
		accept      string
		status      int
		ctype       string
		w, h        int
	}{
		{"jpeg stays jpeg", "width=100&height=80", jpg, "", 200, "image/jpeg", 100, 80},
		{"to png", "width=64&height=64&format=png&filter=lanczos", jpg, "", 200, "image/png", 64, 64},
		{"upscale jpg", "width=1000&height=900&format=jpg&quality=50", jpg, "", 200, "image/jpeg", 1000, 900},
		{"gif becomes png", "width=50&height=40&filter=nearest", gif, "", 200, "image/png", 50, 40},
		{"json", "width=100&height=80", jpg, "application/json", 200, "application/json", 100, 80},
		{"json among others", "width=10&height=8", jpg, "text/html, application/json;q=0.9", 200, "application/json", 10, 8},
		{"missing height", "width=100", jpg, "", 400, "", 0, 0},
		{"zero width", "width=0&height=10", jpg, "", 400, "", 0, 0},
		{"negative", "width=-5&height=10", jpg, "", 400, "", 0, 0},
		{"not a number", "width=big&height=10", jpg, "", 400, "", 0, 0},
		{"over the side limit", "width=20000&height=10", jpg, "", 400, "", 0, 0},
		{"over the pixel limit", "width=16000&height=16000", jpg, "", 400, "", 0, 0},
		{"bad filter", "width=10&height=10&filter=fancy", jpg, "", 400, "", 0, 0},
		{"bad format", "width=10&height=10&format=gif", jpg, "", 400, "", 0, 0},
		{"bad quality", "width=10&height=10&quality=0", jpg, "", 400, "", 0, 0},
		{"text", "width=10&height=10", []byte("hello world, not an image"), "", 415, "", 0, 0},
		{"truncated", "width=10&height=10", jpg[:len(jpg)/3], "", 422, "", 0, 0},
		{"bomb", "width=10&height=10", testassets.BombPNG(20000, 20000), "", 422, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.accept != "" {
				hdr["Accept"] = tt.accept
			}
			r := post(t, ts.URL+"/api/resize?"+tt.query, tt.body, hdr)
			if r.status != tt.status {
				t.Fatalf("%s, want %d", r, tt.status)
			}
			if tt.status != 200 {
				var e struct{ Error, Detail string }
				r.json(t, &e)
				if e.Error == "" || e.Detail == "" {
					t.Errorf("error %s", r)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); ct != tt.ctype {
				t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
			}
			wantOrig := [2]string{itoa(w0), itoa(h0)}
			if tt.body[0] == 'G' {
				wantOrig = [2]string{"", ""} // checked below from the JSON-free headers only
			}
			if wantOrig[0] != "" && (r.header.Get("X-Original-Width") != wantOrig[0] || r.header.Get("X-Original-Height") != wantOrig[1]) {
				t.Errorf("original size headers %s x %s, want %v", r.header.Get("X-Original-Width"), r.header.Get("X-Original-Height"), wantOrig)
			}
			if r.header.Get("X-New-Width") != itoa(tt.w) || r.header.Get("X-New-Height") != itoa(tt.h) {
				t.Errorf("new size headers %s x %s", r.header.Get("X-New-Width"), r.header.Get("X-New-Height"))
			}
			if tt.ctype == "application/json" {
				var a struct {
					Original struct{ Width, Height int }
					New      struct{ Width, Height int }
					Format   string
					Bytes    int
				}
				r.json(t, &a)
				if a.Original.Width != w0 || a.Original.Height != h0 || a.New.Width != tt.w || a.New.Height != tt.h ||
					a.Format != "jpeg" || a.Bytes == 0 {
					t.Errorf("json %s", r)
				}
				return
			}
			cfg, format, err := image.DecodeConfig(bytes.NewReader(r.body))
			if err != nil || cfg.Width != tt.w || cfg.Height != tt.h || "image/"+format != tt.ctype {
				t.Errorf("the answer is a %dx%d %s (%v)", cfg.Width, cfg.Height, format, err)
			}
		})
	}
}

func TestPreprocess(t *testing.T) {
	ts := start(t, Config{})
	jpg := petImage(t, "american_bulldog_10.jpg")
	_, w0, h0, _ := imaging.DecodeConfig(jpg)
	img, _, err := imaging.Decode(jpg, imaging.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur := ts.current()
	want, err := imaging.Apply(img, cur.pre)
	if err != nil {
		t.Fatal(err)
	}
	// PNG: exactly the pixels the model sees.
	r := post(t, ts.URL+"/api/preprocess", jpg, nil)
	if r.status != 200 || r.header.Get("Content-Type") != "image/png" {
		t.Fatalf("preprocess: %s", r)
	}
	got, err := png.Decode(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounds().Dx() != 224 || got.Bounds().Dy() != 224 {
		t.Fatalf("the image is %v", got.Bounds())
	}
	for y := 0; y < 224; y += 7 {
		for x := 0; x < 224; x += 5 {
			r0, g0, b0, _ := got.At(x, y).RGBA()
			i := (y*224 + x) * 3
			if uint8(r0>>8) != want.Pix[i] || uint8(g0>>8) != want.Pix[i+1] || uint8(b0>>8) != want.Pix[i+2] {
				t.Fatalf("pixel %d,%d differs from the model's input", x, y)
			}
		}
	}
	if r.header.Get("X-Original-Width") != itoa(w0) || r.header.Get("X-Final-Width") != "224" || r.header.Get("X-Mode") != "RGB" {
		t.Errorf("headers %v", r.header)
	}
	// Grey.
	r = post(t, ts.URL+"/api/preprocess?grayscale=true", jpg, nil)
	got, err = png.Decode(bytes.NewReader(r.body))
	if err != nil || r.header.Get("X-Mode") != "L" {
		t.Fatalf("grayscale: %s", r)
	}
	if r0, g0, b0, _ := got.At(100, 100).RGBA(); r0 != g0 || g0 != b0 {
		t.Error("grayscale image is not grey")
	}
	// JSON.
	var a struct {
		Original struct {
			Width, Height int
			Format, Mode  string
		}
		Final      struct{ Width, Height int }
		Mode       string
		Normalized bool
		Tensor     *channelStats
	}
	r = post(t, ts.URL+"/api/preprocess?normalize=true", jpg, map[string]string{"Accept": "application/json"})
	r.json(t, &a)
	if a.Original.Width != w0 || a.Original.Height != h0 || a.Original.Format != "jpeg" || a.Original.Mode != "RGB" ||
		a.Final.Width != 224 || a.Final.Height != 224 || a.Mode != "RGB" || !a.Normalized || a.Tensor == nil ||
		!slices.Equal(a.Tensor.Shape, []int{1, 3, 224, 224}) || a.Tensor.Min[0] >= a.Tensor.Max[0] {
		t.Errorf("json: %s", r)
	}
	r = post(t, ts.URL+"/api/preprocess?normalize=false&grayscale=1", jpg, map[string]string{"Accept": "application/json"})
	a.Tensor = nil
	r.json(t, &a)
	if a.Normalized || a.Tensor != nil || a.Mode != "L" {
		t.Errorf("json without normalisation: %s", r)
	}
	for _, q := range []string{"normalize=maybe", "grayscale=2"} {
		if r := post(t, ts.URL+"/api/preprocess?"+q, jpg, nil); r.status != 400 {
			t.Errorf("%s: %s", q, r)
		}
	}
	if r := post(t, ts.URL+"/api/preprocess", []byte("GIF89a-but-not-really"), nil); r.status != 422 {
		t.Errorf("broken gif: %s", r)
	}
	if r := post(t, ts.URL+"/api/preprocess", []byte("plain text"), nil); r.status != 415 {
		t.Errorf("text: %s", r)
	}
}

func TestMetrics(t *testing.T) {
	ts := start(t, Config{})
	post(t, ts.URL+"/api/predict", petImage(t, "Bengal_11.jpg"), nil)
	post(t, ts.URL+"/api/predict", []byte("text"), nil)
	r := get(t, ts.URL+"/metrics")
	body := string(r.body)
	for _, want := range []string{
		`petbreed_http_requests_total{code="200",method="POST",route="POST /api/predict"} 1`,
		`petbreed_http_requests_total{code="415",method="POST",route="POST /api/predict"} 1`,
		`petbreed_http_request_duration_seconds_bucket{route="POST /api/predict",le="+Inf"} 2`,
		// "text" is refused from its first bytes, before the body is read.
		`petbreed_stage_duration_seconds_count{stage="read"} 1`,
		`petbreed_stage_duration_seconds_count{stage="decode"} 1`,
		`petbreed_stage_duration_seconds_count{stage="preprocess"} 1`,
		`petbreed_stage_duration_seconds_count{stage="queue"} 1`,
		`petbreed_stage_duration_seconds_count{stage="inference"} 1`,
		`petbreed_batch_size_count 1`,
		`petbreed_http_requests_in_flight 1`, // this one
		`petbreed_queue_depth 0`,
		`petbreed_queue_admitted 0`,
		`petbreed_model_info{name="pet-breed",version="1"} 1`,
		`petbreed_images_total 1`,
		`process_resident_memory_bytes`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if regexp.MustCompile(`route="/nowhere`).MatchString(body) {
		t.Error("unmatched paths must not become labels")
	}
}

// TestOpenAPICoversEveryRoute checks that every registered route is in
// /openapi.json with its method, and that the document is OpenAPI 3.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	// With the web page mounted, as petbreed serve runs it.
	s, err := New(Config{Model: "x.onnx", Page: web.New(web.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	routes := s.Routes()
	if len(routes) < 19 {
		t.Errorf("only %d routes", len(routes))
	}
	seen := map[string]bool{}
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		p := strings.TrimSuffix(pattern, "{$}")
		p = strings.ReplaceAll(p, "...}", "}")
		ops, ok := doc.Paths[p]
		if !ok {
			t.Errorf("route %s: no path %q in openapi.json", rt, p)
			continue
		}
		if _, ok := ops[strings.ToLower(method)]; !ok {
			t.Errorf("route %s: path %q has no %s operation", rt, p, method)
		}
		seen[strings.ToLower(method)+" "+p] = true
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if !seen[m+" "+p] {
				t.Errorf("openapi.json describes %s %s, which is not a route", m, p)
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
