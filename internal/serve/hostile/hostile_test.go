package hostile

import (
	"bytes"
	"encoding/json"
	"image/png"
	"testing"
)

func TestV2Numbers(t *testing.T) {
	for _, n := range []int{1, 3, 1000} {
		var req struct {
			Inputs []struct {
				Name     string `json:"name"`
				Datatype string `json:"datatype"`
				Shape    []int  `json:"shape"`
				Data     []any  `json:"data"`
			} `json:"inputs"`
		}
		if err := json.Unmarshal(V2Numbers(n), &req); err != nil {
			t.Fatalf("n=%d: not JSON: %v", n, err)
		}
		if len(req.Inputs) != 1 || req.Inputs[0].Datatype != "BYTES" || len(req.Inputs[0].Data) != n {
			t.Fatalf("n=%d: %+v", n, req)
		}
		if _, ok := req.Inputs[0].Data[0].(float64); !ok {
			t.Errorf("n=%d: element 0 is %T, want a number", n, req.Inputs[0].Data[0])
		}
	}
}

func TestGreyPNG(t *testing.T) {
	b := GreyPNG(300, 200, 100, png.BestCompression)
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() != 300 || r.Dy() != 200 {
		t.Errorf("bounds %v", r)
	}
	if r, _, _, _ := img.At(17, 33).RGBA(); r>>8 != 100 {
		t.Errorf("level %d, want 100", r>>8)
	}
}
