package v2

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"petbreed/internal/serve/protocol"
)

// Parsing V2 inference requests: plain functions of the body (the fuzz
// targets call them), which check every count against the declared shapes
// before allocating anything in proportion to them.

// maxHeaderValues bounds the JSON values of an inference request outside
// its input's "data" (ids, parameters, shapes, outputs): a real request has
// a few dozen, and each costs the decoder an allocation.
const maxHeaderValues = 4096

// v2Call is an inference request whose JSON is parsed and whose one input
// is picked: data is the input's binary data when it was sent so (Triton's
// binary extension), else nil and the input's JSON data is in in.Data.
type v2Call struct {
	req  v2Request
	in   v2Input
	data []byte
}

// parseInferRequest reads an inference request body; headerLen is the
// Inference-Header-Content-Length header ("" when absent). Every error is a
// *v2Error with status 400.
func parseInferRequest(body []byte, headerLen string) (*v2Call, error) {
	header, bin := body, []byte(nil)
	if headerLen != "" {
		n, err := strconv.Atoi(headerLen)
		if err != nil || n < 0 || n > len(body) {
			return nil, v2errorf(http.StatusBadRequest, "%s: %q is not a length within the %d-byte body", headerInferLength, headerLen, len(body))
		}
		header, bin = body[:n], body[n:]
	}
	// Validate first (without building anything), then bound the values
	// outside the data, and only then decode.
	if !json.Valid(header) {
		err := json.Unmarshal(header, &struct{}{}) // for the error's words
		if strings.Contains(err.Error(), "after top-level value") {
			return nil, v2errorf(http.StatusBadRequest, "the inference request has data after its JSON object (binary data needs the %s header)", headerInferLength)
		}
		return nil, v2errorf(http.StatusBadRequest, "the inference request is not valid JSON: %v", err)
	}
	if err := skimRequest(header, maxHeaderValues); err != nil {
		return nil, v2errorf(http.StatusBadRequest, "the inference request: %v", err)
	}
	c := &v2Call{}
	if err := json.Unmarshal(header, &c.req); err != nil {
		return nil, v2errorf(http.StatusBadRequest, "the inference request is not valid: %v", err)
	}
	if len(c.req.Inputs) != 1 {
		return nil, v2errorf(http.StatusBadRequest, "want exactly one input, got %d", len(c.req.Inputs))
	}
	c.in = c.req.Inputs[0]
	var binSize int64 = -1
	if err := param(c.in.Parameters, "binary_data_size", &binSize); err != nil {
		return nil, err
	}
	if binSize >= 0 {
		if binSize != int64(len(bin)) {
			return nil, v2errorf(http.StatusBadRequest, "input %q: binary_data_size is %d but %d bytes follow the JSON header",
				c.in.Name, binSize, len(bin))
		}
		if len(c.in.Data) > 0 {
			return nil, v2errorf(http.StatusBadRequest, "input %q has both binary data and \"data\"", c.in.Name)
		}
		c.data = bin
		if c.data == nil {
			c.data = []byte{}
		}
		return c, nil
	}
	if len(bin) > 0 {
		return nil, v2errorf(http.StatusBadRequest, "%d bytes of binary data follow the JSON header, but no input has binary_data_size", len(bin))
	}
	if len(c.in.Data) == 0 {
		return nil, v2errorf(http.StatusBadRequest, "input %q has no data", c.in.Name)
	}
	return c, nil
}

// skimRequest counts the values of a valid JSON request outside each
// input's "data" member, failing beyond limit.
func skimRequest(b []byte, limit int) error {
	s := skimmer{b: b, limit: limit}
	return s.value(pathTop, true)
}

// Where the skimmer is in the request.
const (
	pathTop    = iota // the request object
	pathInputs        // its "inputs" array
	pathInput         // one input object
	pathOther
)

type skimmer struct {
	b        []byte
	i, n     int
	limit    int
	overflow bool
}

var errTooManyValues = fmt.Errorf("more than %d JSON values outside the input's data (shape, parameters, outputs)", maxHeaderValues)

func (s *skimmer) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\n' || s.b[s.i] == '\r' || s.b[s.i] == '\t') {
		s.i++
	}
}

// str skips a string at s.i and returns its raw contents.
func (s *skimmer) str() []byte {
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			j++
		case '"':
			s.i = j + 1
			return s.b[start:j]
		}
	}
	s.i = len(s.b)
	return nil
}

// value skims one value (the input is valid JSON, so only the structure is
// followed), counting it and its members when counted.
func (s *skimmer) value(path int, counted bool) error {
	s.ws()
	if counted {
		s.n++
		if s.n > s.limit {
			return errTooManyValues
		}
	}
	if s.i >= len(s.b) {
		return nil
	}
	switch s.b[s.i] {
	case '{':
		s.i++
		for {
			s.ws()
			if s.i >= len(s.b) {
				return nil
			}
			if s.b[s.i] == '}' {
				s.i++
				return nil
			}
			if s.b[s.i] == ',' {
				s.i++
				continue
			}
			key := string(s.str())
			s.ws()
			s.i++ // ':'
			child, cnt := pathOther, counted
			switch {
			case path == pathTop && key == "inputs":
				child = pathInputs
			case path == pathInput && key == "data":
				cnt = false
			}
			if err := s.value(child, cnt); err != nil {
				return err
			}
		}
	case '[':
		s.i++
		child := pathOther
		if path == pathInputs {
			child = pathInput
		}
		for {
			s.ws()
			if s.i >= len(s.b) {
				return nil
			}
			if s.b[s.i] == ']' {
				s.i++
				return nil
			}
			if s.b[s.i] == ',' {
				s.i++
				continue
			}
			if err := s.value(child, counted); err != nil {
				return err
			}
		}
	case '"':
		s.str()
	default:
		for s.i < len(s.b) && !strings.ContainsRune(",]} \t\r\n", rune(s.b[s.i])) {
			s.i++
		}
	}
	return nil
}

// inputSpec is what a model takes: its input's name, the image size S of
// FP32 [N,3,S,S], and the most images in one request.
type inputSpec struct {
	name string
	size int64
	maxN int
}

// v2Payload is an input decoded: n images, either as one FP32 tensor of n
// preprocessed images or as n encoded images.
type v2Payload struct {
	n      int
	tensor []float32
	images [][]byte
}

// payload checks the input against the spec (name, datatype, shape, element
// counts) and decodes its data. charge is called with the bytes about to be
// allocated for the decoded data, before they are; newTensor (nil: make)
// returns a buffer of count floats. Errors are *v2Error 400, or what charge
// returned.
func (sp inputSpec) payload(in v2Input, data []byte, charge func(int64) error, newTensor func(count int) []float32) (v2Payload, error) {
	if in.Name != sp.name && in.Name != bytesInput {
		return v2Payload{}, v2errorf(http.StatusBadRequest, "unknown input %q: the model takes %q (FP32 [N,3,%d,%d]) or %q (BYTES [N], encoded images)",
			in.Name, sp.name, sp.size, sp.size, bytesInput)
	}
	switch in.Datatype {
	case "FP32":
		return sp.tensorPayload(in, data, charge, newTensor)
	case "BYTES":
		return sp.imagesPayload(in, data, charge)
	}
	return v2Payload{}, v2errorf(http.StatusBadRequest, "input %q: datatype %q is not supported: send FP32 preprocessed tensors or BYTES encoded images",
		in.Name, in.Datatype)
}

// batchOf checks the batch size of an input against the limit.
func (sp inputSpec) batchOf(name string, n int64) (int, error) {
	if n < 1 {
		return 0, v2errorf(http.StatusBadRequest, "input %q: batch size %d must be at least 1", name, n)
	}
	if n > int64(sp.maxN) {
		return 0, v2errorf(http.StatusBadRequest, "input %q: batch size %d is over the server's limit of %d", name, n, sp.maxN)
	}
	return int(n), nil
}

// tensorPayload reads an FP32 [N,3,S,S] input.
func (sp inputSpec) tensorPayload(in v2Input, data []byte, charge func(int64) error, newTensor func(int) []float32) (v2Payload, error) {
	sz := sp.size
	if len(in.Shape) != 4 || in.Shape[1] != 3 || in.Shape[2] != sz || in.Shape[3] != sz {
		return v2Payload{}, v2errorf(http.StatusBadRequest, "input %q: shape %v does not match the model's [N,3,%d,%d]", in.Name, in.Shape, sz, sz)
	}
	n, err := sp.batchOf(in.Name, in.Shape[0])
	if err != nil {
		return v2Payload{}, err
	}
	count := n * 3 * int(sz) * int(sz)
	if data != nil && len(data) != 4*count {
		return v2Payload{}, v2errorf(http.StatusBadRequest, "input %q: %d bytes of binary data for shape %v, want %d (FP32, 4 bytes each)",
			in.Name, len(data), in.Shape, 4*count)
	}
	if err := charge(4 * int64(count)); err != nil {
		return v2Payload{}, err
	}
	var tensor []float32
	if newTensor != nil {
		tensor = newTensor(count)
	} else {
		tensor = make([]float32, count)
	}
	if data != nil {
		for i := range tensor {
			tensor[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	} else {
		got, err := parseFloats(in.Data, tensor)
		if err != nil {
			return v2Payload{tensor: tensor}, v2errorf(http.StatusBadRequest, "input %q: %v", in.Name, err)
		}
		if got != count {
			return v2Payload{tensor: tensor}, v2errorf(http.StatusBadRequest, "input %q: %d values for shape %v, want %d", in.Name, got, in.Shape, count)
		}
	}
	for _, v := range tensor {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return v2Payload{tensor: tensor}, v2errorf(http.StatusBadRequest, "input %q holds NaN or infinite values", in.Name)
		}
	}
	return v2Payload{n: n, tensor: tensor}, nil
}

// imagesPayload reads a BYTES [N] (or [N,1]) input of encoded images.
func (sp inputSpec) imagesPayload(in v2Input, data []byte, charge func(int64) error) (v2Payload, error) {
	if len(in.Shape) < 1 || len(in.Shape) > 2 || (len(in.Shape) == 2 && in.Shape[1] != 1) {
		return v2Payload{}, v2errorf(http.StatusBadRequest, "input %q: shape %v: BYTES images take [N] or [N,1]", in.Name, in.Shape)
	}
	n, err := sp.batchOf(in.Name, in.Shape[0])
	if err != nil {
		return v2Payload{}, err
	}
	var images [][]byte
	if data != nil {
		images, err = splitBytes(data, n)
	} else {
		images, err = jsonBytes(in.Data, n, charge)
	}
	if err != nil {
		var ve *v2Error
		if errors.As(err, &ve) || errors.Is(err, protocol.ErrBudgetBusy) {
			return v2Payload{}, err
		}
		var ob protocol.OverBudget
		if errors.As(err, &ob) {
			return v2Payload{}, err
		}
		return v2Payload{}, v2errorf(http.StatusBadRequest, "input %q: %v", in.Name, err)
	}
	if len(images) != n {
		return v2Payload{}, v2errorf(http.StatusBadRequest, "input %q: %d elements for shape %v, want %d", in.Name, len(images), in.Shape, n)
	}
	for i, img := range images {
		if len(img) == 0 {
			return v2Payload{}, v2errorf(http.StatusBadRequest, "input %q: element %d is empty", in.Name, i)
		}
	}
	return v2Payload{n: n, images: images}, nil
}

// splitBytes reads BYTES binary data: each element a 4-byte little-endian
// length, then the bytes. More than want elements is an error as soon as it
// is seen.
func splitBytes(b []byte, want int) ([][]byte, error) {
	out := make([][]byte, 0, want)
	for len(b) > 0 {
		if len(out) == want {
			return nil, fmt.Errorf("binary BYTES data holds more than the %d elements of the shape", want)
		}
		if len(b) < 4 {
			return nil, errors.New("binary BYTES data ends inside an element's length")
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("binary BYTES element %d declares %d bytes, %d remain", len(out), n, len(b))
		}
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return out, nil
}

// jsonBytes reads BYTES JSON data, a (nested) array of base64 strings or
// {"b64": "..."} objects, of want elements: the elements are found first
// without decoding them (an element that is not a string or an object, or
// one too many, fails at once), then each is decoded, its bytes charged
// before they are allocated.
func jsonBytes(raw json.RawMessage, want int, charge func(int64) error) ([][]byte, error) {
	elems, err := bytesElements(raw, want)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, e := range elems {
		total += int64(len(e)) // the string copy and its decoded bytes are each at most this
	}
	if err := charge(2 * total); err != nil {
		return nil, err
	}
	out := make([][]byte, len(elems))
	for i, e := range elems {
		var s string
		if e[0] == '{' {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(e, &obj); err != nil || len(obj) != 1 || obj["b64"] == nil || json.Unmarshal(obj["b64"], &s) != nil {
				return nil, fmt.Errorf("element %d is an object: want {\"b64\": \"...\"}", i)
			}
		} else if err := json.Unmarshal(e, &s); err != nil {
			return nil, fmt.Errorf("element %d is not a JSON string: %v", i, err)
		}
		b, err := decodeBase64(s)
		if err != nil {
			return nil, fmt.Errorf("element %d is not base64 (JSON BYTES images are sent in base64): %v", i, err)
		}
		out[i] = b
	}
	return out, nil
}

// bytesElements returns the raw elements (strings or objects) of a nested
// JSON array, without copying them, failing at the first element that is
// neither or at element want+1.
func bytesElements(raw []byte, want int) ([][]byte, error) {
	s := skimmer{b: raw, limit: math.MaxInt}
	s.ws()
	if s.i >= len(raw) || raw[s.i] != '[' {
		return nil, errors.New("data must be an array")
	}
	var out [][]byte
	depth := 0
	for {
		s.ws()
		if s.i >= len(raw) {
			break
		}
		switch c := raw[s.i]; {
		case c == '[':
			depth++
			s.i++
		case c == ']':
			depth--
			s.i++
		case c == ',':
			s.i++
		case c == '"' || c == '{':
			if depth == 0 {
				return nil, errors.New("data must be an array")
			}
			if len(out) == want {
				return nil, fmt.Errorf("more elements than the %d of the shape", want)
			}
			start := s.i
			if err := s.value(pathOther, false); err != nil {
				return nil, err
			}
			out = append(out, raw[start:s.i])
		default:
			kind := "a number"
			switch c {
			case 't', 'f':
				kind = "a boolean"
			case 'n':
				kind = "null"
			}
			return nil, fmt.Errorf("element %d is %s: want a base64 string", len(out), kind)
		}
		if depth == 0 {
			s.ws()
			if s.i < len(raw) {
				return nil, errors.New("data: unexpected text after the array")
			}
			break
		}
	}
	if depth != 0 {
		return nil, errors.New("data: unbalanced brackets")
	}
	return out, nil
}
