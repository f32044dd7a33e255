package v2

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"petbreed"
	"petbreed/internal/serve/protocol/protocoltest"
)

// TestInferPet: a model with a pet check answers a second output tensor,
// pet_score FP32 [N], by default or when asked for; without one the name is
// unknown.
func TestInferPet(t *testing.T) {
	img := []byte("\x89PNG-not-decoded-by-the-fake")
	in := `"inputs":[{"name":"image","datatype":"BYTES","shape":[2],"data":["` + b64(img) + `","` + b64(img) + `"]}]`
	pet := &petbreed.PetCheck{Score: 0.25, Threshold: 0.5}
	for _, tt := range []struct {
		name    string
		pet     *petbreed.PetCheck
		body    string
		status  int
		want    string // in the answer
		wantNot string
	}{
		{"default outputs", pet, `{` + in + `}`, 200,
			`{"name":"probs","datatype":"FP32","shape":[2,3],"data":[0.2,0.7,0.1,0.2,0.7,0.1]},{"name":"pet_score","datatype":"FP32","shape":[2],"data":[0.25,0.25]}]`, ""},
		{"asked for alone", pet, `{` + in + `,"outputs":[{"name":"pet_score"}]}`, 200,
			`"outputs":[{"name":"pet_score","datatype":"FP32","shape":[2],"data":[0.25,0.25]}]`, `"probs"`},
		{"with classification", pet, `{` + in + `,"outputs":[{"name":"probs","parameters":{"classification":1}},{"name":"pet_score"}]}`, 200,
			`"shape":[2,1],"data":["0.700000:1:b","0.700000:1:b"]},{"name":"pet_score"`, ""},
		{"no pet check", nil, `{` + in + `}`, 200, `"data":[0.2,0.7,0.1,0.2,0.7,0.1]}]}`, "pet_score"},
		{"no pet check, asked for", nil, `{` + in + `,"outputs":[{"name":"pet_score"}]}`, 400, `unknown output \"pet_score\"`, ""},
		{"classification of the pet score", pet, `{` + in + `,"outputs":[{"name":"pet_score","parameters":{"classification":1}}]}`, 400, "classification", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeModel()
			p.PetCheck = tt.pet
			req := httptest.NewRequest(http.MethodPost, "/v2/models/pets/infer", strings.NewReader(tt.body))
			w := serve(t, &protocoltest.Router{P: p}, true, req)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) ||
				(tt.wantNot != "" && strings.Contains(w.Body.String(), tt.wantNot)) {
				t.Errorf("%d %s\nwant %d with %s", w.Code, w.Body, tt.status, tt.want)
			}
		})
	}

	// Binary: the scores after the probabilities.
	p := fakeModel()
	p.PetCheck = pet
	req := httptest.NewRequest(http.MethodPost, "/v2/models/pets/infer",
		strings.NewReader(`{`+in+`,"parameters":{"binary_data_output":true}}`))
	w := serve(t, &protocoltest.Router{P: p}, true, req)
	hdr := w.Header().Get(headerInferLength)
	if w.Code != 200 || hdr == "" {
		t.Fatalf("binary: %d %s", w.Code, w.Body)
	}
	body := w.Body.Bytes()
	if want := string(le(0.2, 0.7, 0.1, 0.2, 0.7, 0.1, 0.25, 0.25)); !strings.HasSuffix(string(body), want) ||
		!strings.Contains(string(body), `{"name":"pet_score","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}`) {
		t.Errorf("binary answer %q", body)
	}

	// The model's metadata lists the output.
	w = serve(t, &protocoltest.Router{P: p}, true, httptest.NewRequest(http.MethodGet, "/v2/models/pets", nil))
	if !strings.Contains(w.Body.String(), `{"name":"pet_score","datatype":"FP32","shape":[-1]}`) {
		t.Errorf("metadata %s", w.Body)
	}
}
