// Package protocol is the seam between the model server (package serve)
// and its protocol adapters (packages restapi and v2, beside it): what an
// adapter may ask of the server, and nothing else.
//
// An adapter registers its routes on a mux and reaches models only through
// a Router: it names a model (or leaves the name empty for the server's
// choice) and gets a Predictor for the length of one request, which reads
// the request's body within the server's limits and memory budget, and
// predicts encoded images (admission, decoding, preprocessing and batching
// are the server's) or tensors. The server owns admission, the memory
// budget, the batcher, metrics and the models' lifecycle; an adapter owns
// its wire format. Adding a protocol is adding an adapter; serving several
// models (a traffic split) is a Router change.
package protocol

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"petbreed"
	"petbreed/internal/httpjson"
	"petbreed/internal/imaging"
)

// Model describes a model being served, as a protocol shows it.
type Model struct {
	Name    string // the registered model's name, or the file's base name
	Version string
	Labels  []string
	// Labelled is false when the labels are only the class indices.
	Labelled bool
	// Input and Output are the model's tensor names: Input takes FP32
	// [N,3,Size,Size], Output gives FP32 [N,len(Labels)].
	Input, Output string
	Size          int
	// TensorLen is one image's preprocessed tensor (3*Size*Size values).
	TensorLen  int
	Preprocess petbreed.Preprocess
	MaxBatch   int // the most images in one model run
}

// The headers of every answer from a model: the model (as it is served)
// and version that answered.
const (
	HeaderModel   = "X-Petbreed-Model"
	HeaderVersion = "X-Petbreed-Version"
)

// Served names the model and version that answer in w's headers; an
// adapter calls it once it has its Predictor.
func Served(w http.ResponseWriter, m *Model) {
	h := w.Header()
	h[HeaderModel] = []string{m.Name}
	h[HeaderVersion] = []string{m.Version}
}

// RequestID is the request's id, as the server's middleware set it on the
// answer (X-Request-Id): what the prediction log and feedback know it by.
func RequestID(w http.ResponseWriter) string { return w.Header().Get("X-Request-Id") }

// Request is one request's share of the server: its body, read and
// charged to the memory budget, and images decoded within the server's
// limits. What it holds is given back by the release function it came with
// (a body's bytes are valid until then).
type Request interface {
	// ReadBody reads the whole body (bounded, charged).
	ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error)
	// ReadImage reads an uploaded image: the multipart/form-data field
	// "file", or else the body; its type is sniffed before the rest is
	// read. filename is the part's, or the "filename" query parameter.
	ReadImage(w http.ResponseWriter, r *http.Request) (data []byte, filename string, err error)
	// Charge adds n bytes to what the request holds of the memory budget:
	// an OverBudget error when the request alone is over it, else a 503
	// (or the context's error) when there is no room in time.
	Charge(n int64) error
	// Decode decodes one image within the pixel limit and decode deadline,
	// its cost charged until the request ends. On success the caller holds
	// one of the server's decoding places and gives it back with done.
	Decode(ctx context.Context, data []byte) (img *imaging.RGB, info imaging.Info, done func(), err error)
}

// Predictor is one model, held for one request.
type Predictor interface {
	Request
	Model() *Model
	// PredictImages classifies encoded images: each row of the answer is
	// one image's class probabilities, the caller's own.
	PredictImages(ctx context.Context, images [][]byte) ([][]float32, error)
	// PredictTensor runs n images already preprocessed and normalised,
	// n*TensorLen values one after the other.
	PredictTensor(ctx context.Context, tensor []float32, n int) ([][]float32, error)
	// Tensor returns a buffer of count values, valid until release.
	Tensor(count int) []float32
	// TopK is the k most probable classes of one row, most probable first.
	TopK(probs []float32, k int) []petbreed.Prediction
}

// Router picks the model a request goes to. model and version are the
// names a protocol's path gives ("" for the router's choice). The release
// function must be called once the request is answered; err is ErrNotReady
// when no model is loaded, an *httpjson.Error with status 404 for a model
// or version not served.
type Router interface {
	Route(r *http.Request, model, version string) (p Predictor, release func(), err error)
}

// Images gives a request that needs no model (resizing) its share of the
// server.
type Images interface {
	Begin(r *http.Request) (req Request, release func())
}

// OverBudget is a charge larger than the whole memory budget: no wait
// could make room for it (its status is the caller's choice: 413 for a
// body, 422 for an image).
type OverBudget struct{ Need, Limit int64 }

func (e OverBudget) Error() string {
	return "needs " + strconv.FormatInt(e.Need, 10) + " bytes, over the server's memory budget of " +
		strconv.FormatInt(e.Limit, 10)
}

// The server's state, as errors with their status.
var (
	ErrNotReady   = &httpjson.Error{Status: http.StatusServiceUnavailable, Msg: "not ready", Detail: "the model is loading"}
	ErrOverloaded = &httpjson.Error{Status: http.StatusServiceUnavailable, Msg: "overloaded", Detail: "the queue is full: retry shortly"}
	// ErrBudgetBusy is a charge that found no room in the memory budget in
	// time.
	ErrBudgetBusy = &httpjson.Error{Status: http.StatusServiceUnavailable, Msg: "overloaded",
		Detail: "the server's memory budget is in use by other requests: retry shortly"}
)

// StatusClientClosed is logged (nginx's 499) for a request whose client
// went away before its answer.
const StatusClientClosed = 499

// AsError gives err its status: its own for an *httpjson.Error, 499 for a
// request cancelled by its client, else 500.
func AsError(err error) *httpjson.Error {
	var ae *httpjson.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &httpjson.Error{Status: StatusClientClosed, Msg: "cancelled", Detail: "the client went away"}
	}
	return &httpjson.Error{Status: http.StatusInternalServerError, Msg: "internal error", Detail: err.Error()}
}

// ImageError maps a decoding error to its status: 415 not an image, 422 an
// image that cannot be decoded, is over the pixel limit or has too many
// scans (a progressive JPEG).
func ImageError(err error) *httpjson.Error {
	switch {
	case errors.Is(err, imaging.ErrUnsupported):
		return &httpjson.Error{Status: http.StatusUnsupportedMediaType, Msg: "not an image", Detail: err.Error()}
	case errors.Is(err, imaging.ErrTooManyScans):
		return &httpjson.Error{Status: http.StatusUnprocessableEntity, Msg: "too many scans", Detail: err.Error()}
	case errors.Is(err, imaging.ErrPixelLimit):
		return &httpjson.Error{Status: http.StatusUnprocessableEntity, Msg: "image over the pixel limit", Detail: err.Error()}
	case errors.Is(err, imaging.ErrCorrupt):
		return &httpjson.Error{Status: http.StatusUnprocessableEntity, Msg: "cannot decode the image", Detail: err.Error()}
	}
	return &httpjson.Error{Status: http.StatusUnprocessableEntity, Msg: "cannot process the image", Detail: err.Error()}
}
