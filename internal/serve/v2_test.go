package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"petbreed/internal/imaging"
	"petbreed/internal/testassets"
)

// v2Answer is an inference response, read from JSON (and binary data).
type v2Answer struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	ID           string `json:"id"`
	Outputs      []struct {
		Name       string           `json:"name"`
		Datatype   string           `json:"datatype"`
		Shape      []int64          `json:"shape"`
		Parameters map[string]int64 `json:"parameters"`
		Data       json.RawMessage  `json:"data"`
	} `json:"outputs"`
	binary []byte
}

// parseInfer reads a response, JSON or binary.
func parseInfer(t *testing.T, r response) v2Answer {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("infer: %s", r)
	}
	var a v2Answer
	body := r.body
	if hl := r.header.Get("Inference-Header-Content-Length"); hl != "" {
		n, err := strconv.Atoi(hl)
		if err != nil || n > len(body) {
			t.Fatalf("Inference-Header-Content-Length %q for %d bytes", hl, len(body))
		}
		if r.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("binary answer with Content-Type %q", r.header.Get("Content-Type"))
		}
		body, a.binary = body[:n], body[n:]
	}
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("answer %.300q: %v", body, err)
	}
	return a
}

// probs reads output i as FP32 rows.
func (a v2Answer) probs(t *testing.T, i int, bin []byte) [][]float32 {
	t.Helper()
	o := a.Outputs[i]
	if o.Datatype != "FP32" || len(o.Shape) != 2 {
		t.Fatalf("output %+v", o)
	}
	var flat []float32
	if size, ok := o.Parameters["binary_data_size"]; ok {
		if int64(len(bin)) < size {
			t.Fatalf("binary_data_size %d, %d bytes left", size, len(bin))
		}
		for j := int64(0); j < size; j += 4 {
			flat = append(flat, math.Float32frombits(binary.LittleEndian.Uint32(bin[j:])))
		}
	} else if err := json.Unmarshal(o.Data, &flat); err != nil {
		t.Fatal(err)
	}
	n, c := int(o.Shape[0]), int(o.Shape[1])
	if len(flat) != n*c {
		t.Fatalf("%d values for shape %v", len(flat), o.Shape)
	}
	rows := make([][]float32, n)
	for j := range rows {
		rows[j] = flat[j*c : (j+1)*c]
	}
	return rows
}

// classes reads output i as classification strings.
func (a v2Answer) classes(t *testing.T, i int, bin []byte) []string {
	t.Helper()
	o := a.Outputs[i]
	if o.Datatype != "BYTES" {
		t.Fatalf("output %+v", o)
	}
	var out []string
	if size, ok := o.Parameters["binary_data_size"]; ok {
		b := bin[:size]
		for len(b) > 0 {
			n := binary.LittleEndian.Uint32(b)
			out = append(out, string(b[4:4+n]))
			b = b[4+n:]
		}
	} else if err := json.Unmarshal(o.Data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestV2Metadata(t *testing.T) {
	ts := start(t, Config{})
	var srv struct {
		Name       string
		Version    string
		Extensions []string
	}
	r := get(t, ts.URL+"/v2")
	r.json(t, &srv)
	if srv.Name != "petbreed" || !slices.Contains(srv.Extensions, "binary_tensor_data") || !slices.Contains(srv.Extensions, "classification") {
		t.Errorf("/v2: %s", r)
	}
	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/pet-breed/ready", "/v2/models/pet-breed/versions/1/ready"} {
		if r := get(t, ts.URL+p); r.status != 200 || !strings.Contains(string(r.body), "true") {
			t.Errorf("%s: %s", p, r)
		}
	}
	var md struct {
		Name     string
		Versions []string
		Platform string
		Inputs   []tensorMeta
		Outputs  []tensorMeta
	}
	for _, p := range []string{"/v2/models/pet-breed", "/v2/models/pet-breed/versions/1"} {
		r := get(t, ts.URL+p)
		r.json(t, &md)
		if md.Name != "pet-breed" || !slices.Equal(md.Versions, []string{"1"}) || md.Platform != "onnxruntime_onnx" ||
			len(md.Inputs) != 2 || md.Inputs[0].Datatype != "FP32" || !slices.Equal(md.Inputs[0].Shape, []int64{-1, 3, 224, 224}) ||
			md.Inputs[1].Name != "image" || md.Inputs[1].Datatype != "BYTES" ||
			len(md.Outputs) != 2 || md.Outputs[0].Datatype != "FP32" || !slices.Equal(md.Outputs[0].Shape, []int64{-1, 3}) ||
			md.Outputs[1].Name != "pet_score" { // the champion's pet check
			t.Errorf("%s: %s", p, r)
		}
	}
	for _, p := range []string{"/v2/models/other", "/v2/models/other/ready", "/v2/models/pet-breed/versions/2",
		"/v2/models/pet-breed/versions/2/ready"} {
		var e map[string]string
		r := get(t, ts.URL+p)
		r.json(t, &e)
		if r.status != 404 || e["error"] == "" || len(e) != 1 {
			t.Errorf("%s: %s, want 404 {\"error\"}", p, r)
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// lenPrefixed lays out BYTES binary data.
func lenPrefixed(elems ...[]byte) []byte {
	var b []byte
	for _, e := range elems {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

func TestV2Infer(t *testing.T) {
	ts := start(t, Config{})
	m := ts.current()
	inName, outName := m.input.Name, m.output.Name
	files := []string{"Bengal_10.jpg", "Abyssinian_11.jpg", "american_bulldog_12.jpg"}
	var imgs [][]byte
	var b64s []string
	for _, f := range files {
		imgs = append(imgs, petImage(t, f))
		b64s = append(b64s, b64(imgs[len(imgs)-1]))
	}
	infer := ts.URL + "/v2/models/pet-breed/infer"

	// BYTES in JSON (base64), top-3 classification and probabilities.
	req := map[string]any{
		"id":     "req-1",
		"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{3}, "data": b64s}},
		"outputs": []map[string]any{
			{"name": outName, "parameters": map[string]any{"classification": 3}},
			{"name": outName},
		},
	}
	body, _ := json.Marshal(req)
	a := parseInfer(t, post(t, infer, body, map[string]string{"Content-Type": "application/json"}))
	if a.ModelName != "pet-breed" || a.ModelVersion != "1" || a.ID != "req-1" || len(a.Outputs) != 2 {
		t.Fatalf("answer %+v", a)
	}
	cls := a.classes(t, 0, nil)
	if !slices.Equal(a.Outputs[0].Shape, []int64{3, 3}) || len(cls) != 9 {
		t.Fatalf("classification %v %v", a.Outputs[0].Shape, cls)
	}
	probsJSON := a.probs(t, 1, nil)
	for i, f := range files {
		// Triton's "value:index:label", most probable first.
		parts := strings.SplitN(cls[3*i], ":", 3)
		if len(parts) != 3 || parts[2] != breedOf(f) {
			t.Errorf("%s: classification %v", f, cls[3*i:3*i+3])
			continue
		}
		p, _ := strconv.ParseFloat(parts[0], 64)
		idx, _ := strconv.Atoi(parts[1])
		if math.Abs(p-float64(probsJSON[i][idx])) > 1e-6 || parts[0] != fmt.Sprintf("%f", probsJSON[i][idx]) {
			t.Errorf("%s: %q vs probability %v", f, cls[3*i], probsJSON[i][idx])
		}
		if m.classes[idx] != breedOf(f) || slices.Max(probsJSON[i]) != probsJSON[i][idx] {
			t.Errorf("%s: probabilities %v", f, probsJSON[i])
		}
	}

	// The same images in binary (shape [3,1], on a version's path, nested
	// b64 objects are JSON only), with binary outputs asked for.
	hdr, _ := json.Marshal(map[string]any{
		"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{3, 1},
			"parameters": map[string]any{"binary_data_size": len(lenPrefixed(imgs...))}}},
		"outputs": []map[string]any{
			{"name": outName, "parameters": map[string]any{"binary_data": true}},
			{"name": outName, "parameters": map[string]any{"classification": 1, "binary_data": true}},
			{"name": outName, "parameters": map[string]any{"classification": 2}},
		},
	})
	r := post(t, ts.URL+"/v2/models/pet-breed/versions/1/infer", append(hdr, lenPrefixed(imgs...)...),
		map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(hdr)), "Content-Type": "application/octet-stream"})
	a = parseInfer(t, r)
	if a.binary == nil {
		t.Fatal("no binary data in the answer")
	}
	size0 := a.Outputs[0].Parameters["binary_data_size"]
	probsBin := a.probs(t, 0, a.binary)
	top1 := a.classes(t, 1, a.binary[size0:])
	top2 := a.classes(t, 2, nil)
	if len(top1) != 3 || len(top2) != 6 || !slices.Equal(a.Outputs[2].Shape, []int64{3, 2}) {
		t.Fatalf("outputs %+v %v %v", a.Outputs, top1, top2)
	}
	for i, f := range files {
		if !slices.Equal(probsBin[i], probsJSON[i]) {
			t.Errorf("%s: binary %v, JSON %v", f, probsBin[i], probsJSON[i])
		}
		if !strings.HasSuffix(top1[i], ":"+breedOf(f)) || top2[2*i] != top1[i] {
			t.Errorf("%s: %v %v", f, top1[i], top2[2*i:2*i+2])
		}
	}

	// FP32 tensors, preprocessed by the client: the same probabilities.
	tensor := make([]float32, 3*m.clf.TensorLen())
	for i, b := range imgs {
		img, _, err := imaging.Decode(b, imaging.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.clf.Prepare(img, tensor[i*m.clf.TensorLen():(i+1)*m.clf.TensorLen()]); err != nil {
			t.Fatal(err)
		}
	}
	var raw []byte
	for _, v := range tensor {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	hdr, _ = json.Marshal(map[string]any{
		"parameters": map[string]any{"binary_data_output": true},
		"inputs": []map[string]any{{"name": inName, "datatype": "FP32", "shape": []int{3, 3, 224, 224},
			"parameters": map[string]any{"binary_data_size": len(raw)}}},
	})
	r = post(t, infer, append(hdr, raw...), map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(hdr))})
	a = parseInfer(t, r)
	probsFP32 := a.probs(t, 0, a.binary)
	for i := range files {
		for c := range probsFP32[i] {
			if math.Abs(float64(probsFP32[i][c]-probsJSON[i][c])) > 1e-6 {
				t.Errorf("image %d: FP32 input gives %v, BYTES %v", i, probsFP32[i], probsJSON[i])
				break
			}
		}
	}
	// FP32 in JSON, one image, nested arrays.
	one := tensor[:m.clf.TensorLen()]
	var nested [3][224][224]float32
	for c := range 3 {
		for y := range 224 {
			copy(nested[c][y][:], one[c*224*224+y*224:])
		}
	}
	body, _ = json.Marshal(map[string]any{
		"inputs": []map[string]any{{"name": inName, "datatype": "FP32", "shape": []int{1, 3, 224, 224}, "data": [][3][224][224]float32{nested}}},
	})
	a = parseInfer(t, post(t, infer, body, nil))
	if p := a.probs(t, 0, nil); len(p) != 1 || math.Abs(float64(p[0][0]-probsJSON[0][0])) > 1e-6 {
		t.Errorf("FP32 JSON: %v, want %v", p, probsJSON[0])
	}
	// b64 objects and URL-safe base64 are read too.
	body, _ = json.Marshal(map[string]any{
		"inputs": []map[string]any{{"name": inName, "datatype": "BYTES", "shape": []int{2},
			"data": []any{map[string]string{"b64": b64s[0]}, base64.RawURLEncoding.EncodeToString(imgs[1])}}},
		"outputs": []map[string]any{{"name": outName, "parameters": map[string]any{"classification": 1}}},
	})
	a = parseInfer(t, post(t, infer, body, nil))
	if c := a.classes(t, 0, nil); len(c) != 2 || !strings.HasSuffix(c[0], ":Bengal") || !strings.HasSuffix(c[1], ":Abyssinian") {
		t.Errorf("b64 forms: %v", c)
	}
}

func TestV2InferErrors(t *testing.T) {
	ts := start(t, Config{MaxBody: 4 << 20})
	m := ts.current()
	inName, outName := m.input.Name, m.output.Name
	jpg := petImage(t, "Bengal_10.jpg")
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	bytesInput := func(shape []int, data any) []byte {
		return js(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": shape, "data": data}}})
	}
	good := bytesInput([]int{1}, []string{b64(jpg)})
	binHdr := js(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1},
		"parameters": map[string]any{"binary_data_size": 4 + len(jpg)}}}})
	fp32Hdr := js(map[string]any{"inputs": []map[string]any{{"name": inName, "datatype": "FP32", "shape": []int{1, 3, 224, 224},
		"parameters": map[string]any{"binary_data_size": 8}}}})
	tests := []struct {
		name   string
		path   string
		body   []byte
		header map[string]string
		status int
		msg    string
	}{
		{"unknown model", "/v2/models/nope/infer", good, nil, 404, "unknown model"},
		{"unknown version", "/v2/models/pet-breed/versions/7/infer", good, nil, 404, "no version"},
		{"not JSON", "", []byte("{nope"), nil, 400, "not valid JSON"},
		{"trailing data", "", append(append([]byte{}, good...), "xyz"...), nil, 400, "after its JSON"},
		{"no inputs", "", js(map[string]any{"inputs": []any{}}), nil, 400, "exactly one input"},
		{"two inputs", "", js(map[string]any{"inputs": []map[string]any{
			{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(jpg)}},
			{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(jpg)}}}}), nil, 400, "exactly one input"},
		{"unknown input", "", js(map[string]any{"inputs": []map[string]any{{"name": "pixels", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(jpg)}}}}), nil, 400, "unknown input"},
		{"bad datatype", "", js(map[string]any{"inputs": []map[string]any{{"name": inName, "datatype": "INT64", "shape": []int{1}, "data": []int{1}}}}), nil, 400, "not supported"},
		{"no data", "", js(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}}}}), nil, 400, "no data"},
		{"count mismatch", "", bytesInput([]int{2}, []string{b64(jpg)}), nil, 400, "1 elements for shape [2]"},
		{"bad BYTES shape", "", bytesInput([]int{1, 2}, []string{b64(jpg), b64(jpg)}), nil, 400, "BYTES images take"},
		{"zero batch", "", bytesInput([]int{0}, []string{}), nil, 400, "at least 1"},
		{"huge batch", "", bytesInput([]int{100000}, []string{b64(jpg)}), nil, 400, "over the server's limit"},
		{"not base64", "", bytesInput([]int{1}, []string{"@@@ not base64 @@@"}), nil, 400, "not base64"},
		{"number as BYTES", "", bytesInput([]int{1}, []int{5}), nil, 400, "want a base64 string"},
		{"text image", "", bytesInput([]int{1}, []string{b64([]byte("hello, world"))}), nil, 400, "not a supported image"},
		{"truncated image", "", bytesInput([]int{1}, []string{b64(jpg[:len(jpg)/2])}), nil, 400, "truncated"},
		{"bomb", "", bytesInput([]int{1}, []string{b64(testassets.BombPNG(20000, 20000))}), nil, 400, "pixel limit"},
		{"empty element", "", bytesInput([]int{1}, []string{""}), nil, 400, "empty"},
		{"FP32 wrong shape", "", js(map[string]any{"inputs": []map[string]any{{"name": inName, "datatype": "FP32", "shape": []int{1, 3, 100, 100}, "data": []float32{1}}}}), nil, 400, "does not match"},
		{"FP32 wrong count", "", js(map[string]any{"inputs": []map[string]any{{"name": inName, "datatype": "FP32", "shape": []int{1, 3, 224, 224}, "data": []float32{1, 2, 3}}}}), nil, 400, "3 values"},
		{"FP32 strings", "", js(map[string]any{"inputs": []map[string]any{{"name": inName, "datatype": "FP32", "shape": []int{1, 3, 224, 224}, "data": []string{"a"}}}}), nil, 400, "array of numbers"},
		{"FP32 binary short", "", append(fp32Hdr, make([]byte, 8)...),
			map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(fp32Hdr))}, 400, "binary data for shape"},
		{"unknown output", "", js(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(jpg)}}},
			"outputs": []map[string]any{{"name": "logits"}}}), nil, 400, "unknown output"},
		{"classification zero", "", js(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(jpg)}}},
			"outputs": []map[string]any{{"name": outName, "parameters": map[string]any{"classification": 0}}}}), nil, 400, "at least 1"},
		{"classification not a number", "", js(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(jpg)}}},
			"outputs": []map[string]any{{"name": outName, "parameters": map[string]any{"classification": "three"}}}}), nil, 400, "classification"},
		{"header length not a number", "", append(binHdr, lenPrefixed(jpg)...), map[string]string{"Inference-Header-Content-Length": "ten"}, 400, "Inference-Header-Content-Length"},
		{"header length past the body", "", append(binHdr, lenPrefixed(jpg)...), map[string]string{"Inference-Header-Content-Length": "99999999"}, 400, "Inference-Header-Content-Length"},
		{"binary size mismatch", "", append(binHdr, lenPrefixed(jpg)[:100]...), map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(binHdr))}, 400, "binary_data_size"},
		{"binary without binary_data_size", "", append(append([]byte{}, good...), 1, 2, 3), map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(good))}, 400, "no input has binary_data_size"},
		{"BYTES length past the end", "", append(binHdr, append(binary.LittleEndian.AppendUint32(nil, 1<<30), jpg...)...), map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(binHdr))}, 400, "declares"},
		{"over the body limit", "", bytes.Repeat([]byte(" "), 5<<20), nil, 413, "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = "/v2/models/pet-breed/infer"
			}
			r := post(t, ts.URL+path, tt.body, tt.header)
			var e map[string]string
			r.json(t, &e)
			if r.status != tt.status || len(e) != 1 || !strings.Contains(e["error"], tt.msg) {
				t.Errorf("%s, want %d with %q", r, tt.status, tt.msg)
			}
		})
	}
	// The server still works.
	a := parseInfer(t, post(t, ts.URL+"/v2/models/pet-breed/infer", good, nil))
	if len(a.Outputs) != 2 { // the probabilities and the pet score
		t.Errorf("%+v", a)
	}
}
