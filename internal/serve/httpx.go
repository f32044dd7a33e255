package serve

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"petbreed/internal/httpjson"
	"petbreed/internal/serve/protocol"
)

// apiError is an error with its HTTP status: what the handlers return for
// the caller's mistakes and for the server's state (not ready, overloaded).
type apiError = httpjson.Error

var errorf = httpjson.Errorf

func badParam(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "bad parameter", format, args...)
}

var errNotReady = protocol.ErrNotReady

// imageError maps a decoding error to its status (415, 422).
var imageError = protocol.ImageError

// writeJSON writes v with the status.
func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// asAPIError gives err its status: its own for an *apiError, 499 for a
// request cancelled by its client, else 500.
var asAPIError = protocol.AsError

// writeError answers an /api (or admin) error as {"error", "detail"}; an
// error that is not an *apiError is a 500.
func writeError(w http.ResponseWriter, err error) { httpjson.WriteError(w, asAPIError(err)) }

// Request bodies are read into pooled buffers.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 2 << 20

func putBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		b.Reset()
		bodyPool.Put(b)
	}
}

// bodyError maps a failure to read the body: 413 over the limit, 400 else.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errorf(http.StatusRequestEntityTooLarge, "payload too large", "the body is over the limit of %d bytes", mbe.Limit)
	}
	return errorf(http.StatusBadRequest, "cannot read the body", "%v", err)
}

// closeOnError closes the request's body when *err is set: a body refused
// before it is read whole is not read further (net/http would otherwise
// read up to 256 KiB more of it before answering, to keep the connection).
func closeOnError(r *http.Request, err *error) {
	if *err != nil {
		r.Body.Close()
	}
}

// limitBody refuses a declared length over the limit at once, and bounds
// the body as it is read.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > s.cfg.MaxBody {
		r.Body.Close()
		return errorf(http.StatusRequestEntityTooLarge, "payload too large",
			"the body is %d bytes, over the limit of %d", r.ContentLength, s.cfg.MaxBody)
	}
	// MaxBytesReader tells the server's own ResponseWriter that the limit
	// was hit, so that the connection is closed gracefully (the client gets
	// the 413 instead of a reset): unwrap ours.
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	// A compressed body is decoded within the same limit (compress.go).
	if err := decodeBody(r, s.cfg.MaxBody); err != nil {
		r.Body.Close()
		return err
	}
	return nil
}

// readImage reads an uploaded image, charging its bytes to ch: the
// multipart/form-data field "file" (as the original API takes it), or else
// the whole body. The content type only tells the envelope; the image's
// type is read from its first bytes, before the rest is read.
func (s *Server) readImage(w http.ResponseWriter, r *http.Request, ch *charge) (data *bytes.Buffer, filename string, err error) {
	if err := s.limitBody(w, r); err != nil {
		return nil, "", err
	}
	defer closeOnError(r, &err)
	filename = r.URL.Query().Get("filename")
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		buf, fn, err := readMultipartImage(r.Body, params["boundary"], r.ContentLength, ch)
		if fn != "" {
			filename = fn
		}
		return buf, filename, err
	}
	buf, err := readRawImage(r.Body, r.ContentLength, ch)
	return buf, filename, err
}

// statusWriter records what a handler answered, for the log and metrics.
type statusWriter struct {
	http.ResponseWriter
	req    *http.Request
	status int
	bytes  int64
	// unmatched: the mux found no route (404) or no method (405); its plain
	// text answer is replaced by JSON.
	unmatched bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.req.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.unmatched = true
		msg := "not found"
		detail := "no such endpoint: see /openapi.json"
		if code == http.StatusMethodNotAllowed {
			msg, detail = "method not allowed", "allowed: "+w.Header().Get("Allow")
		}
		b, _ := json.Marshal(map[string]string{"error": msg, "detail": detail})
		b = append(b, '\n')
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		h.Del("X-Content-Type-Options")
		w.ResponseWriter.WriteHeader(code)
		n, _ := w.ResponseWriter.Write(b)
		w.bytes += int64(n)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.unmatched {
		return len(b), nil
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware adds a request id, the in-flight gauge, panic recovery, one log
// line and the metrics per request.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = s.reqPrefix + strconv.FormatUint(s.reqCounter.Add(1), 10)
		}
		w.Header().Set("X-Request-Id", id)
		if r.Header.Get("X-Request-Id") != id {
			r.Header.Set("X-Request-Id", id) // the router reads it (the prediction log)
		}
		var gz *compressWriter
		if enc := answerEncoding(r); enc != "" {
			gz = &compressWriter{ResponseWriter: w, enc: enc}
			w = gz
		}
		sw := &statusWriter{ResponseWriter: w, req: r}
		s.metrics.inFlight.Inc()
		defer func() {
			s.metrics.inFlight.Dec()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic serving a request", "request_id", id, "path", r.URL.Path, "panic", p,
					"stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, errors.New("the server failed on this request"))
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			if gz != nil {
				gz.close()
			}
			d := time.Since(start)
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			s.metrics.observeRequest(route, r.Method, sw.status, d)
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", sw.status),
				slog.Int64("bytes", sw.bytes),
				slog.Float64("duration_ms", ms(d)),
				slog.String("request_id", id),
				slog.String("remote", r.RemoteAddr),
			)
		}()
		next.ServeHTTP(sw, r)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func newRequestPrefix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}
