// Package restapi is the original project's REST API, under /api, done
// right: the image type is read from the bytes, sizes are the true ones,
// errors have their status and a JSON body {"error", "detail"}. It is a
// protocol adapter: it reaches the model through a protocol.Router and
// the server's decoding through protocol.Images, and knows nothing else of
// the server.
package restapi

import (
	"bytes"
	"errors"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"petbreed"
	"petbreed/internal/httpjson"
	"petbreed/internal/imaging"
	"petbreed/internal/serve/protocol"
)

// Config holds the API's own limits.
type Config struct {
	// MaxResizePixels bounds /api/resize's output size (required).
	MaxResizePixels int
}

// API serves the /api routes but /api/health (the server's own).
type API struct {
	router protocol.Router
	images protocol.Images
	cfg    Config
}

// New makes the API over a router (the model) and the server's images.
func New(router protocol.Router, images protocol.Images, cfg Config) *API {
	return &API{router: router, images: images, cfg: cfg}
}

// Register adds the API's routes through handle.
func (a *API) Register(handle func(method, pattern string, h http.HandlerFunc)) {
	handle("GET", "/api/classes", a.handleClasses)
	handle("POST", "/api/predict", a.handlePredict)
	handle("POST", "/api/resize", a.handleResize)
	handle("POST", "/api/preprocess", a.handlePreprocess)
}

var errorf = httpjson.Errorf

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// writeError answers err as {"error", "detail"}; an error without a status
// is a 500 (499 when the client went away).
func writeError(w http.ResponseWriter, err error) { httpjson.WriteError(w, protocol.AsError(err)) }

func badParam(format string, args ...any) *httpjson.Error {
	return errorf(http.StatusBadRequest, "bad parameter", format, args...)
}

// handleClasses lists a model's classes: the one ?model=NAME names (as V2
// names them), else the one the split gives this request.
func (a *API) handleClasses(w http.ResponseWriter, r *http.Request) {
	p, release, err := a.router.Route(r, r.URL.Query().Get("model"), "")
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	m := p.Model()
	writeJSON(w, http.StatusOK, struct {
		Classes []string `json:"classes"`
		Count   int      `json:"count"`
		Model   string   `json:"model"`
		Version string   `json:"version"`
	}{m.Labels, len(m.Labels), m.Name, m.Version})
}

// ModelRef names the model that answered.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// PredictAnswer is /api/predict's answer.
type PredictAnswer struct {
	Filename       string                `json:"filename"`
	PredictedBreed string                `json:"predicted_breed"`
	Confidence     float32               `json:"confidence"`
	TopK           []petbreed.Prediction `json:"top_k"`
	Model          ModelRef              `json:"model"`
	Ms             float64               `json:"ms"`
	// Pet says whether the image looks like a cat or a dog, when the model
	// can tell (issue 13); the breeds are there either way.
	Pet *petbreed.PetCheck `json:"pet,omitempty"`
	// RequestID is the answer's X-Request-Id, what POST /api/feedback
	// names it by.
	RequestID string `json:"request_id,omitempty"`
}

// handlePredict classifies one image: multipart field "file", or the body.
func (a *API) handlePredict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p, release, err := a.router.Route(r, "", "")
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	m := p.Model()
	protocol.Served(w, m)
	k := 5
	if v := r.URL.Query().Get("top_k"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, badParam("top_k=%q: want a positive integer", v))
			return
		}
		k = n
	}
	k = min(k, len(m.Labels))
	body, filename, err := p.ReadImage(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	if len(body) == 0 {
		writeError(w, errorf(http.StatusBadRequest, "no image", "the body is empty: send the image as the body or as the multipart field \"file\""))
		return
	}
	probs, err := p.PredictImages(r.Context(), [][]byte{body})
	if err != nil {
		writeError(w, err)
		return
	}
	top := p.TopK(probs[0], k)
	writeJSON(w, http.StatusOK, PredictAnswer{
		Filename:       filename,
		PredictedBreed: top[0].Label,
		Confidence:     top[0].Probability,
		TopK:           top,
		Model:          ModelRef{m.Name, m.Version},
		Ms:             float64(time.Since(start).Microseconds()) / 1000,
		Pet:            protocol.PetOf(p, probs[0]),
		RequestID:      protocol.RequestID(w),
	})
}

// wantsJSON reports whether the client asked for JSON (Accept:
// application/json, with a non-zero quality) rather than an image.
func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != "application/json" {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f <= 0 {
				return false
			}
		}
		return true
	}
	return false
}

// intParam reads a bounded integer query parameter; def applies when absent
// (required when def < 0).
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if def < 0 {
			return 0, badParam("%s is required (an integer from %d to %d)", name, lo, hi)
		}
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, badParam("%s=%q: want an integer from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

func boolParam(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badParam("%s=%q: want true or false", name, v)
	}
	return b, nil
}

// sizeJSON is an image's size.
type sizeJSON struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

type originalJSON struct {
	Width       int    `json:"width"`  // after the EXIF orientation: as the image is seen
	Height      int    `json:"height"` // idem
	Format      string `json:"format"`
	Mode        string `json:"mode"`
	Orientation int    `json:"orientation"`
}

func original(img *imaging.RGB, info imaging.Info) originalJSON {
	return originalJSON{img.W, img.H, info.Format, info.Mode, info.Orientation}
}

func setSizeHeaders(h http.Header, prefix string, w, ht int) {
	h.Set(prefix+"-Width", strconv.Itoa(w))
	h.Set(prefix+"-Height", strconv.Itoa(ht))
}

// decodeUpload reads and decodes the uploaded image. On success the caller
// holds a decoding place for its transforms, and gives it back with done.
func decodeUpload(w http.ResponseWriter, r *http.Request, req protocol.Request) (*imaging.RGB, imaging.Info, func(), error) {
	body, _, err := req.ReadImage(w, r)
	if err != nil {
		return nil, imaging.Info{}, nil, err
	}
	if len(body) == 0 {
		return nil, imaging.Info{}, nil, errorf(http.StatusBadRequest, "no image", "the body is empty")
	}
	return req.Decode(r.Context(), body) // the cost is held until the request ends
}

// handleResize returns the image resized to width x height with Pillow's
// filters, in its own format (PNG for the formats that cannot be written)
// or format=png|jpeg, with the true sizes in X-Original-* and X-New-*
// headers; Accept: application/json answers the sizes as JSON instead.
func (a *API) handleResize(w http.ResponseWriter, r *http.Request) {
	const maxSide = 16384
	width, err := intParam(r, "width", -1, 1, maxSide)
	if err != nil {
		writeError(w, err)
		return
	}
	height, err := intParam(r, "height", -1, 1, maxSide)
	if err != nil {
		writeError(w, err)
		return
	}
	if width*height > a.cfg.MaxResizePixels {
		writeError(w, badParam("%dx%d is %d pixels, over the limit of %d", width, height, width*height, a.cfg.MaxResizePixels))
		return
	}
	quality, err := intParam(r, "quality", 95, 1, 100)
	if err != nil {
		writeError(w, err)
		return
	}
	filter := imaging.Bilinear
	if v := r.URL.Query().Get("filter"); v != "" {
		if filter, err = imaging.ParseFilter(v); err != nil {
			writeError(w, badParam("%v", err))
			return
		}
	}
	format := strings.ToLower(r.URL.Query().Get("format"))
	switch format {
	case "", imaging.FormatPNG, imaging.FormatJPEG:
	case "jpg":
		format = imaging.FormatJPEG
	default:
		writeError(w, badParam("format=%q: want png or jpeg", format))
		return
	}
	req, end := a.images.Begin(r)
	defer end()
	// The output image, its RGBA copy for the encoder and the encoded bytes.
	if err := req.Charge(int64(width) * int64(height) * 11); err != nil {
		var ob protocol.OverBudget
		if errors.As(err, &ob) {
			err = badParam("%dx%d: the output %v", width, height, ob)
		}
		writeError(w, err)
		return
	}
	img, info, done, err := decodeUpload(w, r, req)
	if err != nil {
		writeError(w, err)
		return
	}
	release := sync.OnceFunc(done) // before writing the answer to a maybe slow client
	defer release()
	if format == "" {
		format = imaging.FormatPNG
		if info.Format == imaging.FormatJPEG {
			format = imaging.FormatJPEG
		}
	}
	out := imaging.Resize(img, width, height, filter)
	var buf bytes.Buffer
	if err := imaging.Encode(&buf, out, format, quality); err != nil {
		writeError(w, err)
		return
	}
	release()
	h := w.Header()
	setSizeHeaders(h, "X-Original", img.W, img.H)
	h.Set("X-Original-Format", info.Format)
	setSizeHeaders(h, "X-New", out.W, out.H)
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, struct {
			Original originalJSON `json:"original"`
			New      sizeJSON     `json:"new"`
			Format   string       `json:"format"`
			Filter   string       `json:"filter"`
			Bytes    int          `json:"bytes"`
		}{original(img, info), sizeJSON{out.W, out.H}, format, filter.String(), buf.Len()})
		return
	}
	h.Set("Content-Type", "image/"+format)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// ChannelStats describes the normalised tensor, per channel.
type ChannelStats struct {
	Shape []int      `json:"shape"`
	Mean  [3]float64 `json:"mean"`
	Std   [3]float64 `json:"std"`
	Min   [3]float32 `json:"min"`
	Max   [3]float32 `json:"max"`
}

func tensorStats(t []float32, size int) ChannelStats {
	st := ChannelStats{Shape: []int{1, 3, size, size}}
	np := size * size
	for c := range 3 {
		ch := t[c*np : (c+1)*np]
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		var sum, sq float64
		for _, v := range ch {
			lo, hi = min(lo, v), max(hi, v)
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		mean := sum / float64(np)
		st.Mean[c] = mean
		st.Std[c] = math.Sqrt(max(sq/float64(np)-mean*mean, 0))
		st.Min[c], st.Max[c] = lo, hi
	}
	return st
}

// handlePreprocess returns the image the model sees, before normalisation
// (PNG), or with Accept: application/json the true original size, the final
// size and mode, the preprocessing, and (normalize=true) the normalised
// tensor's statistics. grayscale=true converts to grey first, as a model
// trained on grey images would see it.
func (a *API) handlePreprocess(w http.ResponseWriter, r *http.Request) {
	normalize, err := boolParam(r, "normalize", true)
	if err != nil {
		writeError(w, err)
		return
	}
	p, done, err := a.router.Route(r, "", "")
	if err != nil {
		writeError(w, err)
		return
	}
	pre := p.Model().Preprocess // a copy: the model is not held while the image is prepared
	done()
	gray, err := boolParam(r, "grayscale", pre.Grayscale)
	if err != nil {
		writeError(w, err)
		return
	}
	pre.Grayscale = gray
	req, end := a.images.Begin(r)
	defer end()
	img, info, done, err := decodeUpload(w, r, req)
	if err != nil {
		writeError(w, err)
		return
	}
	release := sync.OnceFunc(done) // before writing the answer to a maybe slow client
	defer release()
	seen, err := imaging.Apply(img, pre)
	if err != nil {
		writeError(w, protocol.ImageError(err))
		return
	}
	mode := "RGB"
	if gray {
		mode = "L"
	}
	h := w.Header()
	setSizeHeaders(h, "X-Original", img.W, img.H)
	setSizeHeaders(h, "X-Final", seen.W, seen.H)
	h.Set("X-Mode", mode)
	if wantsJSON(r) {
		release()
		a := struct {
			Original   originalJSON        `json:"original"`
			Final      sizeJSON            `json:"final"`
			Mode       string              `json:"mode"`
			Preprocess petbreed.Preprocess `json:"preprocess"`
			Normalized bool                `json:"normalized"`
			Tensor     *ChannelStats       `json:"tensor,omitempty"`
		}{Original: original(img, info), Final: sizeJSON{seen.W, seen.H}, Mode: mode, Preprocess: pre, Normalized: normalize}
		if normalize {
			t := make([]float32, 3*seen.W*seen.H)
			if err := imaging.Normalize(seen, pre.Mean, pre.Std, t); err != nil {
				writeError(w, err)
				return
			}
			st := tensorStats(t, seen.W)
			a.Tensor = &st
		}
		writeJSON(w, http.StatusOK, a)
		return
	}
	var buf bytes.Buffer
	if err := imaging.Encode(&buf, seen, imaging.FormatPNG, 0); err != nil {
		writeError(w, err)
		return
	}
	release()
	h.Set("Content-Type", "image/png")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}
