package v2

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"petbreed"
	"petbreed/internal/serve/protocol"
	"petbreed/internal/serve/protocol/protocoltest"
)

// The protocol against a fake router: statuses, JSON shapes and the binary
// extension, in milliseconds. The real model is tested end to end in
// package serve.

func fakeModel() *protocoltest.Predictor {
	return &protocoltest.Predictor{
		M: protocol.Model{Name: "pets", Version: "3", Labels: []string{"a", "b", "c"}, Labelled: true,
			Input: "input", Output: "probs", Size: 2, TensorLen: 12, MaxBatch: 8,
			Preprocess: petbreed.Preprocess{Mode: petbreed.ModeSquash, Size: 2}},
		Probs: []float32{0.2, 0.7, 0.1},
	}
}

func serve(t *testing.T, rt *protocoltest.Router, ready bool, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	New(rt, Config{Version: "9.9", MaxImages: 4, Ready: func() bool { return ready }}).Register(func(method, pattern string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+pattern, h)
	})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	if n := rt.Held(); n != 0 {
		t.Errorf("%d holds on the router not given back", n)
	}
	return w
}

func le(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// answerID is an answer's generated id.
var answerID = regexp.MustCompile(`,"id":"[0-9a-f]{16}"`)

func TestInfer(t *testing.T) {
	img := []byte("\x89PNG-not-decoded-by-the-fake")
	tensor := make([]float32, 24)
	for i := range tensor {
		tensor[i] = float32(i) / 4
	}
	tensorJSON, _ := json.Marshal(tensor)
	binTensor := le(tensor...)
	for _, tt := range []struct {
		name      string
		path      string
		notReady  bool
		body      string
		headerLen int // Inference-Header-Content-Length, when > 0
		err       error
		status    int
		want      string // the JSON answer, or the error's words
		binary    []byte // the binary part of the answer
		images, n int    // what the predictor got
	}{
		{name: "bytes json", path: "/v2/models/pets/infer",
			body:   `{"id":"r1","inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + b64(img) + `"]}]}`,
			status: 200, images: 1,
			want: `{"model_name":"pets","model_version":"3","id":"r1","outputs":[{"name":"probs","datatype":"FP32","shape":[1,3],"data":[0.2,0.7,0.1]}]}`},
		{name: "classification", path: "/v2/models/pets/versions/3/infer",
			body:   `{"inputs":[{"name":"image","datatype":"BYTES","shape":[2],"data":["` + b64(img) + `",{"b64":"` + b64(img) + `"}]}],"outputs":[{"name":"probs","parameters":{"classification":2}}]}`,
			status: 200, images: 2,
			want: `{"model_name":"pets","model_version":"3","outputs":[{"name":"probs","datatype":"BYTES","shape":[2,2],"data":["0.700000:1:b","0.200000:0:a","0.700000:1:b","0.200000:0:a"]}]}`},
		{name: "fp32 json", path: "/v2/models/pets/infer",
			body:   `{"inputs":[{"name":"input","datatype":"FP32","shape":[2,3,2,2],"data":` + string(tensorJSON) + `}]}`,
			status: 200, n: 2,
			want: `{"model_name":"pets","model_version":"3","outputs":[{"name":"probs","datatype":"FP32","shape":[2,3],"data":[0.2,0.7,0.1,0.2,0.7,0.1]}]}`},
		{name: "fp32 binary in and out", path: "/v2/models/pets/infer",
			body:      `{"inputs":[{"name":"input","datatype":"FP32","shape":[2,3,2,2],"parameters":{"binary_data_size":96}}],"parameters":{"binary_data_output":true}}` + string(binTensor),
			headerLen: len(`{"inputs":[{"name":"input","datatype":"FP32","shape":[2,3,2,2],"parameters":{"binary_data_size":96}}],"parameters":{"binary_data_output":true}}`),
			status:    200, n: 2,
			want:   `{"model_name":"pets","model_version":"3","outputs":[{"name":"probs","datatype":"FP32","shape":[2,3],"parameters":{"binary_data_size":24}}]}`,
			binary: le(0.2, 0.7, 0.1, 0.2, 0.7, 0.1)},
		{name: "unknown model", path: "/v2/models/dogs/infer", body: `{}`, status: 404, want: "unknown model"},
		{name: "unknown version", path: "/v2/models/pets/versions/4/infer", body: `{}`, status: 404, want: "no version"},
		{name: "loading", path: "/v2/models/pets/infer", notReady: true, body: `{}`, status: 503, want: "the model is loading"},
		{name: "not json", path: "/v2/models/pets/infer", body: `{"inputs":`, status: 400, want: "not valid JSON"},
		{name: "two inputs", path: "/v2/models/pets/infer", body: `{"inputs":[{},{}]}`, status: 400, want: "exactly one input"},
		{name: "unknown output", path: "/v2/models/pets/infer",
			body:   `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + b64(img) + `"]}],"outputs":[{"name":"logits"}]}`,
			status: 400, want: "unknown output"},
		{name: "batch over the limit", path: "/v2/models/pets/infer",
			body:   `{"inputs":[{"name":"image","datatype":"BYTES","shape":[5],"data":[]}]}`,
			status: 400, want: "over the server's limit of 4"},
		{name: "undecodable image", path: "/v2/models/pets/infer",
			body: `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + b64(img) + `"]}]}`,
			err:  protocol.ImageError(bytes.ErrTooLarge), status: 400, want: "cannot process the image"},
		{name: "overloaded", path: "/v2/models/pets/infer",
			body: `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` + b64(img) + `"]}]}`,
			err:  protocol.ErrOverloaded, status: 503, want: "overloaded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeModel()
			p.Err = tt.err
			rt := &protocoltest.Router{P: p}
			if tt.notReady {
				rt.P = nil
			}
			req := httptest.NewRequest("POST", tt.path, strings.NewReader(tt.body))
			if tt.headerLen > 0 {
				req.Header.Set(headerInferLength, strconv.Itoa(tt.headerLen))
			}
			w := serve(t, rt, true, req)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status != 200 {
				var e map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || len(e) != 1 || !strings.Contains(e["error"], tt.want) {
					t.Errorf("error %s, want {\"error\"} with %q", w.Body, tt.want)
				}
				if tt.status == 503 && w.Header().Get("Retry-After") == "" {
					t.Error("a 503 without Retry-After")
				}
				return
			}
			body := w.Body.Bytes()
			if tt.binary != nil {
				n, _ := strconv.Atoi(w.Header().Get(headerInferLength))
				if w.Header().Get("Content-Type") != "application/octet-stream" || n <= 0 || n > len(body) {
					t.Fatalf("binary answer: headers %v", w.Header())
				}
				if !bytes.Equal(body[n:], tt.binary) {
					t.Errorf("binary part %x, want %x", body[n:], tt.binary)
				}
				body = body[:n]
			}
			// Every answer has an id: a random one here (no request id).
			if answerID.Find(body) == nil && !bytes.Contains(body, []byte(`"id":`)) {
				t.Errorf("answer without an id: %s", body)
			}
			if got := answerID.ReplaceAll(body, nil); string(got) != tt.want {
				t.Errorf("answer\n%s\nwant\n%s", got, tt.want)
			}
			if len(p.Images) != tt.images || p.N != tt.n {
				t.Errorf("the predictor got %d images and %d tensors", len(p.Images), p.N)
			}
			if tt.n > 0 && (len(p.GotTensor) != tt.n*12 || p.GotTensor[23] != tensor[23]) {
				t.Errorf("the predictor got the tensor %v", p.GotTensor)
			}
		})
	}
}

func TestMetadataAndHealth(t *testing.T) {
	for _, tt := range []struct {
		name, path string
		notReady   bool
		ready      bool
		status     int
		want       string // a part of the answer
	}{
		{"server", "/v2", false, true, 200, `"extensions":["binary_tensor_data","classification"]`},
		{"live", "/v2/health/live", true, false, 200, `{"live":true}`},
		{"ready", "/v2/health/ready", false, true, 200, `{"ready":true}`},
		{"not ready", "/v2/health/ready", true, false, 503, `{"ready":false}`},
		{"model", "/v2/models/pets", false, true, 200, `"inputs":[{"name":"input","datatype":"FP32","shape":[-1,3,2,2]},{"name":"image","datatype":"BYTES","shape":[-1]}],"outputs":[{"name":"probs","datatype":"FP32","shape":[-1,3]}]`},
		{"model version", "/v2/models/pets/versions/3", false, true, 200, `"versions":["3"]`},
		{"model max batch", "/v2/models/pets", false, true, 200, `"max_batch":8`},
		{"unknown model", "/v2/models/dogs", false, true, 404, `"error"`},
		{"model loading", "/v2/models/pets", true, false, 503, `the model is loading`},
		{"model ready", "/v2/models/pets/ready", false, true, 200, `{"name":"pets","ready":true}`},
		{"model stopping", "/v2/models/pets/versions/3/ready", false, false, 503, `{"name":"pets","ready":false}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt := &protocoltest.Router{P: fakeModel()}
			if tt.notReady {
				rt.P = nil
			}
			w := serve(t, rt, tt.ready, httptest.NewRequest("GET", tt.path, nil))
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("%d %s, want %d with %s", w.Code, w.Body, tt.status, tt.want)
			}
		})
	}
}
