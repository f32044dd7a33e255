// Package v2 is the KServe V2 Open Inference Protocol (REST), with Triton's
// binary tensor data and classification extensions: a protocol adapter
// that reaches models through a protocol.Router, by the model name and
// version of its paths.
package v2

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"petbreed/internal/httpjson"
	"petbreed/internal/serve/protocol"
)

// Config is what the protocol shows of the server.
type Config struct {
	// Version is the server's version, reported by GET /v2.
	Version string
	// MaxImages bounds the images of one request (the server's queue).
	MaxImages int
	// Ready reports whether the server is ready (a model loaded, not
	// stopping).
	Ready func() bool
}

// Protocol serves the /v2 routes.
type Protocol struct {
	router protocol.Router
	cfg    Config
}

// New makes the protocol over a router.
func New(router protocol.Router, cfg Config) *Protocol {
	return &Protocol{router: router, cfg: cfg}
}

// Register adds the protocol's routes through handle.
func (s *Protocol) Register(handle func(method, pattern string, h http.HandlerFunc)) {
	handle("GET", "/v2", s.handleV2Server)
	handle("GET", "/v2/health/live", s.handleV2Live)
	handle("GET", "/v2/health/ready", s.handleV2Ready)
	handle("GET", "/v2/models/{name}", s.handleV2Model)
	handle("GET", "/v2/models/{name}/versions/{version}", s.handleV2Model)
	handle("GET", "/v2/models/{name}/ready", s.handleV2ModelReady)
	handle("GET", "/v2/models/{name}/versions/{version}/ready", s.handleV2ModelReady)
	handle("POST", "/v2/models/{name}/infer", s.handleV2Infer)
	handle("POST", "/v2/models/{name}/versions/{version}/infer", s.handleV2Infer)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// The KServe V2 Open Inference Protocol (REST), with Triton's binary tensor
// data and classification extensions.
//
// A request has one input: the model's own input, FP32 [N,3,S,S] already
// preprocessed (as the model's metadata says), or BYTES [N] (or [N,1]) of
// encoded images (JPEG, PNG, GIF, BMP, WebP), decoded and preprocessed here
// like /api/predict does it. In JSON, a BYTES element is the image in base64
// (a string, or {"b64": "..."}); with the binary extension, each element is
// a 4-byte little-endian length followed by the image's bytes. The output is
// the model's probabilities, FP32 [N,C], or with the "classification": K
// parameter on the requested output, BYTES [N,K] "probability:index:label"
// strings, most probable first.

// bytesInput is the name of the encoded-images input in the model metadata
// (the model's own input name takes BYTES too).
const bytesInput = "image"

const (
	headerInferLength = "Inference-Header-Content-Length"
	platform          = "onnxruntime_onnx"
)

// v2Error is the protocol's error form, {"error": "..."}.
type v2Error struct {
	status int
	msg    string
}

func (e *v2Error) Error() string { return e.msg }

func v2errorf(status int, format string, args ...any) *v2Error {
	return &v2Error{status, fmt.Sprintf(format, args...)}
}

func writeV2Error(w http.ResponseWriter, err error) {
	var status int
	var ve *v2Error
	if errors.As(err, &ve) {
		status = ve.status
	} else {
		status = protocol.AsError(err).Status
		if status == http.StatusUnsupportedMediaType || status == http.StatusUnprocessableEntity {
			status = http.StatusBadRequest // an undecodable image is a bad input tensor
		}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// TensorMeta describes a tensor in the model metadata.
type TensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

func (s *Protocol) handleV2Server(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Name       string   `json:"name"`
		Version    string   `json:"version"`
		Extensions []string `json:"extensions"`
	}{"petbreed", s.cfg.Version, []string{"binary_tensor_data", "classification"}})
}

func (s *Protocol) handleV2Live(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
}

func (s *Protocol) handleV2Ready(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.Ready() {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]bool{"ready": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

// route finds the model of the path's {name} and {version}.
func (s *Protocol) route(r *http.Request) (protocol.Predictor, func(), error) {
	p, release, err := s.router.Route(r, r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		if errors.Is(err, protocol.ErrNotReady) {
			return nil, nil, v2errorf(http.StatusServiceUnavailable, "the model is loading")
		}
		return nil, nil, err
	}
	return p, release, nil
}

func (s *Protocol) handleV2Model(w http.ResponseWriter, r *http.Request) {
	p, release, err := s.route(r)
	if err != nil {
		writeV2Error(w, err)
		return
	}
	defer release()
	m := p.Model()
	sz := int64(m.Size)
	outputs := []TensorMeta{{m.Output, "FP32", []int64{-1, int64(len(m.Labels))}}}
	if protocol.HasPet(p) {
		outputs = append(outputs, petMeta())
	}
	writeJSON(w, http.StatusOK, struct {
		Name       string         `json:"name"`
		Versions   []string       `json:"versions"`
		Platform   string         `json:"platform"`
		Inputs     []TensorMeta   `json:"inputs"`
		Outputs    []TensorMeta   `json:"outputs"`
		Parameters map[string]any `json:"parameters"`
	}{
		Name: m.Name, Versions: []string{m.Version}, Platform: platform,
		Inputs: []TensorMeta{
			{m.Input, "FP32", []int64{-1, 3, sz, sz}},
			{bytesInput, "BYTES", []int64{-1}},
		},
		Outputs: outputs,
		Parameters: map[string]any{
			"labels":     m.Labels,
			"preprocess": m.Preprocess,
			"max_batch":  m.MaxBatch,
			"note": fmt.Sprintf("send one input: %q FP32 preprocessed tensors, or %q BYTES encoded images; "+
				"ask for top-k labels with the output parameter \"classification\": K", m.Input, bytesInput),
		},
	})
}

func (s *Protocol) handleV2ModelReady(w http.ResponseWriter, r *http.Request) {
	p, release, err := s.route(r)
	if err != nil {
		writeV2Error(w, err)
		return
	}
	defer release()
	name := p.Model().Name
	if !s.cfg.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"name": name, "ready": false})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "ready": true})
}

// The inference request, as far as this server reads it.
type v2Request struct {
	ID         json.RawMessage            `json:"id,omitempty"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	Inputs     []v2Input                  `json:"inputs"`
	Outputs    []v2RequestOutput          `json:"outputs,omitempty"`
}

type v2Input struct {
	Name       string                     `json:"name"`
	Shape      []int64                    `json:"shape"`
	Datatype   string                     `json:"datatype"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	Data       json.RawMessage            `json:"data,omitempty"`
}

type v2RequestOutput struct {
	Name       string                     `json:"name"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
}

// param reads one parameter into v; absent leaves v alone.
func param(params map[string]json.RawMessage, key string, v any) error {
	raw, ok := params[key]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return v2errorf(http.StatusBadRequest, "parameter %q: %s is not a %T", key, raw, v)
	}
	return nil
}

// handleV2Infer runs POST /v2/models/{name}[/versions/{version}]/infer.
func (s *Protocol) handleV2Infer(w http.ResponseWriter, r *http.Request) {
	p, release, err := s.route(r)
	if err != nil {
		writeV2Error(w, err)
		return
	}
	defer release()
	protocol.Served(w, p.Model())
	body, err := p.ReadBody(w, r)
	if err != nil {
		writeV2Error(w, err)
		return
	}
	if err := s.infer(w, r, p, body); err != nil {
		writeV2Error(w, err)
	}
}

func (s *Protocol) infer(w http.ResponseWriter, r *http.Request, p protocol.Predictor, b []byte) error {
	m := p.Model()
	call, err := parseInferRequest(b, r.Header.Get(headerInferLength))
	if err != nil {
		return err
	}
	if call.data == nil {
		// Decoding the JSON copied the input's data once more.
		if err := p.Charge(int64(len(call.in.Data))); err != nil {
			return v2BudgetError(err)
		}
	}
	// Outputs: what to return and how.
	outs, err := s.requestedOutputs(&call.req, m, protocol.HasPet(p))
	if err != nil {
		return err
	}
	spec := inputSpec{name: m.Input, size: int64(m.Size), maxN: s.cfg.MaxImages}
	in, err := spec.payload(call.in, call.data, p.Charge, p.Tensor)
	if err != nil {
		return v2BudgetError(err)
	}
	var probs [][]float32
	if in.tensor != nil {
		probs, err = p.PredictTensor(r.Context(), in.tensor, in.n)
	} else {
		probs, err = p.PredictImages(r.Context(), in.images)
	}
	if err != nil {
		return err
	}
	return writeInferResponse(w, p, &call.req, outs, probs)
}

// v2BudgetError maps a failure to charge the budget: 413 for a request
// that alone is over it, else the error as it is (503, a context error).
func v2BudgetError(err error) error {
	var ob protocol.OverBudget
	if errors.As(err, &ob) {
		return v2errorf(http.StatusRequestEntityTooLarge, "the request %v", ob)
	}
	return err
}

// wantOutput is one output to return.
type wantOutput struct {
	classification int // top-k strings instead of probabilities when > 0
	binary         bool
	pet            bool // the pet score (pet.go)
}

func (s *Protocol) requestedOutputs(req *v2Request, m *protocol.Model, pet bool) ([]wantOutput, error) {
	allBinary := false
	if err := param(req.Parameters, "binary_data_output", &allBinary); err != nil {
		return nil, err
	}
	if len(req.Outputs) == 0 {
		if pet {
			return []wantOutput{{binary: allBinary}, {pet: true, binary: allBinary}}, nil
		}
		return []wantOutput{{binary: allBinary}}, nil
	}
	outs := make([]wantOutput, len(req.Outputs))
	for i, o := range req.Outputs {
		outs[i].pet = pet && o.Name == protocol.PetOutput
		if o.Name != m.Output && !outs[i].pet {
			return nil, v2errorf(http.StatusBadRequest, "unknown output %q: the model's output is %q", o.Name, m.Output)
		}
		outs[i].binary = allBinary
		if err := param(o.Parameters, "binary_data", &outs[i].binary); err != nil {
			return nil, err
		}
		k := 0
		if err := param(o.Parameters, "classification", &k); err != nil {
			return nil, err
		}
		if _, ok := o.Parameters["classification"]; ok && k < 1 {
			return nil, v2errorf(http.StatusBadRequest, "output %q: classification %d must be at least 1", o.Name, k)
		}
		if _, ok := o.Parameters["classification"]; ok && outs[i].pet {
			return nil, v2errorf(http.StatusBadRequest, "output %q: a score, not classes: no classification", o.Name)
		}
		outs[i].classification = min(k, len(m.Labels))
	}
	return outs, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// parseFloats reads a (nested) JSON array of numbers into dst, and returns
// how many there were; one more than dst holds is an error at once.
func parseFloats(raw []byte, dst []float32) (int, error) {
	n, depth := 0, 0
	i := 0
	for i < len(raw) {
		c := raw[i]
		switch {
		case c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ',':
			i++
		case c == '[':
			depth++
			i++
		case c == ']':
			depth--
			if depth < 0 {
				return n, errors.New("data: unbalanced brackets")
			}
			i++
		case c == '-' || (c >= '0' && c <= '9'):
			if depth == 0 {
				return n, errors.New("data must be an array")
			}
			j := i + 1
			for j < len(raw) && (raw[j] >= '0' && raw[j] <= '9' || raw[j] == '.' || raw[j] == 'e' || raw[j] == 'E' || raw[j] == '+' || raw[j] == '-') {
				j++
			}
			v, err := strconv.ParseFloat(string(raw[i:j]), 32)
			if err != nil {
				return n, fmt.Errorf("data: %q is not a number", raw[i:j])
			}
			if n == len(dst) {
				return n + 1, fmt.Errorf("data: more than the %d values of the shape", len(dst))
			}
			dst[n] = float32(v)
			n++
			i = j
		default:
			return n, fmt.Errorf("data: unexpected %q: FP32 data must be an array of numbers", c)
		}
	}
	if depth != 0 {
		return n, errors.New("data: unbalanced brackets")
	}
	return n, nil
}

// writeInferResponse writes the outputs: JSON, or the JSON header and the
// binary tensors when an output is asked for as binary.
func writeInferResponse(w http.ResponseWriter, p protocol.Predictor, req *v2Request, outs []wantOutput, probs [][]float32) error {
	m := p.Model()
	n, c := len(probs), len(m.Labels)
	hdr := make([]byte, 0, 256+n*c*12)
	var bin []byte
	hdr = append(hdr, `{"model_name":`...)
	hdr = appendJSONString(hdr, m.Name)
	hdr = append(hdr, `,"model_version":`...)
	hdr = appendJSONString(hdr, m.Version)
	// Every answer has an id (KServe's response requires one): the
	// request's, else the server's request id.
	hdr = append(hdr, `,"id":`...)
	if len(req.ID) > 0 {
		hdr = append(hdr, compactJSON(req.ID)...)
	} else {
		hdr = appendJSONString(hdr, responseID(w))
	}
	hdr = append(hdr, `,"outputs":[`...)
	for i, o := range outs {
		if i > 0 {
			hdr = append(hdr, ',')
		}
		if o.pet {
			hdr, bin = appendPetOutput(hdr, bin, p, probs, o.binary)
			continue
		}
		hdr = append(hdr, `{"name":`...)
		hdr = appendJSONString(hdr, m.Output)
		if o.classification > 0 {
			k := o.classification
			strs := make([]string, 0, n*k)
			for _, row := range probs {
				for _, pr := range p.TopK(row, k) {
					// Triton's format: value:index[:label], the value as C's %f.
					s := strconv.FormatFloat(float64(pr.Probability), 'f', 6, 32) + ":" + strconv.Itoa(pr.Index)
					if m.Labelled {
						s += ":" + pr.Label
					}
					strs = append(strs, s)
				}
			}
			hdr = fmt.Appendf(hdr, `,"datatype":"BYTES","shape":[%d,%d]`, n, k)
			if o.binary {
				start := len(bin)
				for _, s := range strs {
					bin = binary.LittleEndian.AppendUint32(bin, uint32(len(s)))
					bin = append(bin, s...)
				}
				hdr = fmt.Appendf(hdr, `,"parameters":{"binary_data_size":%d}}`, len(bin)-start)
				continue
			}
			hdr = append(hdr, `,"data":[`...)
			for j, s := range strs {
				if j > 0 {
					hdr = append(hdr, ',')
				}
				hdr = appendJSONString(hdr, s)
			}
			hdr = append(hdr, "]}"...)
			continue
		}
		hdr = fmt.Appendf(hdr, `,"datatype":"FP32","shape":[%d,%d]`, n, c)
		if o.binary {
			start := len(bin)
			for _, p := range probs {
				for _, v := range p {
					bin = binary.LittleEndian.AppendUint32(bin, math.Float32bits(v))
				}
			}
			hdr = fmt.Appendf(hdr, `,"parameters":{"binary_data_size":%d}}`, len(bin)-start)
			continue
		}
		hdr = append(hdr, `,"data":[`...)
		first := true
		for _, p := range probs {
			for _, v := range p {
				if !first {
					hdr = append(hdr, ',')
				}
				first = false
				hdr = strconv.AppendFloat(hdr, float64(v), 'g', -1, 32)
			}
		}
		hdr = append(hdr, "]}"...)
	}
	hdr = append(hdr, "]}"...)
	h := w.Header()
	if bin != nil {
		h.Set("Content-Type", "application/octet-stream")
		h.Set(headerInferLength, strconv.Itoa(len(hdr)))
		h.Set("Content-Length", strconv.Itoa(len(hdr)+len(bin)))
		w.WriteHeader(http.StatusOK)
		w.Write(hdr)
		w.Write(bin)
		return nil
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(hdr)))
	w.WriteHeader(http.StatusOK)
	w.Write(hdr)
	return nil
}

// responseID is the answer's id when the request has none: the server's
// request id (X-Request-Id), else a random one.
func responseID(w http.ResponseWriter) string {
	if id := protocol.RequestID(w); id != "" {
		return id
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func compactJSON(raw json.RawMessage) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return []byte(`null`)
	}
	return buf.Bytes()
}
