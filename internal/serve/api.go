package serve

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"petbreed"
	"petbreed/internal/imaging"
)

// The original project's endpoints, under /api, done right: the image type
// is read from the bytes, sizes are the true ones, errors have their status.

// handleIndex serves the placeholder page (web/index.html) when no web
// page is mounted.
func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	b, err := webFS.ReadFile("web/index.html")
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiJSON)
}

type healthAnswer struct {
	Status          string       `json:"status"` // healthy, loading, stopping
	Ready           bool         `json:"ready"`
	Model           *ModelInfo   `json:"model,omitempty"`
	UptimeSeconds   float64      `json:"uptime_seconds"`
	LastReloadError *reloadError `json:"last_reload_error,omitempty"`
}

// handleHealth answers the server's status. The model's file and URI
// paths, and the paths in a reload error, are for the admin (a request with
// the admin token) and the log only: other clients see the model's name,
// version, file name and sha256 prefix, and the error with each path cut
// to its base name.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	a := healthAnswer{UptimeSeconds: time.Since(s.started).Seconds(), LastReloadError: s.lastErr.Load()}
	admin := s.isAdmin(r)
	m := s.current()
	if m != nil {
		info := m.info()
		if !admin {
			info = info.public()
		}
		a.Model = &info
	}
	if a.LastReloadError != nil && !admin {
		e := *a.LastReloadError
		e.Message = redactPaths(e.Message)
		a.LastReloadError = &e
	}
	status := http.StatusOK
	switch {
	case s.draining.Load():
		a.Status, status = "stopping", http.StatusServiceUnavailable
	case m == nil:
		a.Status, status = "loading", http.StatusServiceUnavailable
	default:
		a.Status, a.Ready = "healthy", true
	}
	if status != http.StatusOK {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, a)
}

func (s *Server) handleClasses(w http.ResponseWriter, r *http.Request) {
	m := s.current()
	if m == nil {
		writeError(w, errNotReady)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Classes []string `json:"classes"`
		Count   int      `json:"count"`
		Model   string   `json:"model"`
		Version string   `json:"version"`
	}{m.classes, len(m.classes), m.name, m.version})
}

type modelRefJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type predictAnswer struct {
	Filename       string                `json:"filename"`
	PredictedBreed string                `json:"predicted_breed"`
	Confidence     float32               `json:"confidence"`
	TopK           []petbreed.Prediction `json:"top_k"`
	Model          modelRefJSON          `json:"model"`
	Ms             float64               `json:"ms"`
}

// handlePredict classifies one image: multipart field "file", or the body.
func (s *Server) handlePredict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m := s.acquire()
	if m == nil {
		writeError(w, errNotReady)
		return
	}
	defer m.release()
	k := 5
	if v := r.URL.Query().Get("top_k"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, badParam("top_k=%q: want a positive integer", v))
			return
		}
		k = n
	}
	k = min(k, len(m.classes))
	ch := s.budget.newCharge(r.Context())
	defer ch.release()
	body, filename, err := s.readImage(w, r, ch)
	if err != nil {
		writeError(w, err)
		return
	}
	defer putBody(body)
	s.metrics.observeStage(iRead, time.Since(start))
	if body.Len() == 0 {
		writeError(w, errorf(http.StatusBadRequest, "no image", "the body is empty: send the image as the body or as the multipart field \"file\""))
		return
	}
	probs, err := s.classifyImages(r.Context(), m, ch, [][]byte{body.Bytes()})
	if err != nil {
		writeError(w, err)
		return
	}
	top := m.clf.TopK(probs[0], k)
	writeJSON(w, http.StatusOK, predictAnswer{
		Filename:       filename,
		PredictedBreed: top[0].Label,
		Confidence:     top[0].Probability,
		TopK:           top,
		Model:          modelRefJSON{m.name, m.version},
		Ms:             ms(time.Since(start)),
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

// decodeUpload reads and decodes the uploaded image, charging ch. On
// success it holds a decoding place (acquirePrep) for the caller's
// transforms: the caller releases it.
func (s *Server) decodeUpload(w http.ResponseWriter, r *http.Request, ch *charge) (*imaging.RGB, imaging.Info, error) {
	body, _, err := s.readImage(w, r, ch)
	if err != nil {
		return nil, imaging.Info{}, err
	}
	defer putBody(body)
	if body.Len() == 0 {
		return nil, imaging.Info{}, errorf(http.StatusBadRequest, "no image", "the body is empty")
	}
	img, info, _, err := s.decode(r.Context(), ch, body.Bytes()) // the cost is held until the request ends
	return img, info, err
}

// handleResize returns the image resized to width x height with Pillow's
// filters, in its own format (PNG for the formats that cannot be written)
// or format=png|jpeg, with the true sizes in X-Original-* and X-New-*
// headers; Accept: application/json answers the sizes as JSON instead.
func (s *Server) handleResize(w http.ResponseWriter, r *http.Request) {
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
	if width*height > s.cfg.MaxResizePixels {
		writeError(w, badParam("%dx%d is %d pixels, over the limit of %d", width, height, width*height, s.cfg.MaxResizePixels))
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
	ch := s.budget.newCharge(r.Context())
	defer ch.release()
	// The output image, its RGBA copy for the encoder and the encoded bytes.
	if err := ch.grow(int64(width) * int64(height) * 11); err != nil {
		var ob errOverBudget
		if errors.As(err, &ob) {
			err = badParam("%dx%d: the output %v", width, height, ob)
		}
		writeError(w, err)
		return
	}
	img, info, err := s.decodeUpload(w, r, ch)
	if err != nil {
		writeError(w, err)
		return
	}
	release := sync.OnceFunc(s.releasePrep) // before writing the answer to a maybe slow client
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

// channelStats describes the normalised tensor, per channel.
type channelStats struct {
	Shape []int      `json:"shape"`
	Mean  [3]float64 `json:"mean"`
	Std   [3]float64 `json:"std"`
	Min   [3]float32 `json:"min"`
	Max   [3]float32 `json:"max"`
}

func tensorStats(t []float32, size int) channelStats {
	st := channelStats{Shape: []int{1, 3, size, size}}
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
func (s *Server) handlePreprocess(w http.ResponseWriter, r *http.Request) {
	normalize, err := boolParam(r, "normalize", true)
	if err != nil {
		writeError(w, err)
		return
	}
	m := s.current()
	if m == nil {
		writeError(w, errNotReady)
		return
	}
	pre := m.pre
	gray, err := boolParam(r, "grayscale", pre.Grayscale)
	if err != nil {
		writeError(w, err)
		return
	}
	pre.Grayscale = gray
	ch := s.budget.newCharge(r.Context())
	defer ch.release()
	img, info, err := s.decodeUpload(w, r, ch)
	if err != nil {
		writeError(w, err)
		return
	}
	release := sync.OnceFunc(s.releasePrep) // before writing the answer to a maybe slow client
	defer release()
	seen, err := imaging.Apply(img, pre)
	if err != nil {
		writeError(w, imageError(err))
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
			Tensor     *channelStats       `json:"tensor,omitempty"`
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

// handleReload reloads the model (POST /admin/reload, Bearer token).
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	res, err := s.Reload()
	if err != nil {
		status := http.StatusInternalServerError
		var le errLoad
		if errors.As(err, &le) {
			status = http.StatusUnprocessableEntity
		}
		a := struct {
			Error  string     `json:"error"`
			Detail string     `json:"detail"`
			Model  *ModelInfo `json:"serving,omitempty"`
		}{Error: "reload failed: the previous model goes on serving", Detail: err.Error()}
		if m := s.current(); m != nil {
			info := m.info()
			a.Model = &info
		}
		writeJSON(w, status, a)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
		ReloadResult
	}{"reloaded", res})
}

// isAdmin reports whether r bears the admin token (never, when none is
// configured), without answering.
func (s *Server) isAdmin(r *http.Request) bool {
	if s.cfg.AdminToken == "" {
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.cfg.AdminToken)) == 1
}

// authorized checks the admin token; without one configured the admin
// endpoints do not exist (404).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.AdminToken == "" {
		writeError(w, errorf(http.StatusNotFound, "not found", "the admin endpoints are off (no admin token configured)"))
		return false
	}
	if !s.isAdmin(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="petbreed admin"`)
		writeError(w, errorf(http.StatusUnauthorized, "unauthorized", "an admin token is needed: Authorization: Bearer TOKEN"))
		return false
	}
	return true
}
