package restapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"petbreed"
	"petbreed/internal/serve/protocol/protocoltest"
)

// TestPredictPet: the answer carries the model's pet check, the breeds
// still there; a model without one has no "pet" field.
func TestPredictPet(t *testing.T) {
	for _, pet := range []*petbreed.PetCheck{nil, {Score: 0.02, Threshold: 0.0357, IsPet: false}} {
		p := fakeModel()
		p.PetCheck = pet
		req := httptest.NewRequest(http.MethodPost, "/api/predict", bytes.NewReader(pngBytes(t, 8, 6)))
		w := serve(t, &protocoltest.Router{P: p}, req)
		var got PredictAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || got.PredictedBreed != "b" {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		switch {
		case pet == nil && strings.Contains(w.Body.String(), `"pet"`):
			t.Errorf("a model without a pet check: %s", w.Body)
		case pet != nil && (got.Pet == nil || *got.Pet != *pet || !strings.Contains(w.Body.String(), `"pet":{"score":0.02,"threshold":0.0357,"is_pet":false}`)):
			t.Errorf("pet check: %s", w.Body)
		}
	}
}
