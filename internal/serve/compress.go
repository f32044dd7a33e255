package serve

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Compressed bodies, both ways. A request body with Content-Encoding gzip
// or deflate (Triton's client sends them on request) is decoded as it is
// read: the limit (MaxBody, 413 beyond) and the memory budget count the
// decoded bytes, so a small bomb cannot make the server hold more than an
// uncompressed body could. An answer is compressed, gzip or deflate as the
// client's Accept-Encoding prefers, when it is JSON or text of at least
// minCompress bytes.

// minCompress is the smallest answer worth compressing.
const minCompress = 1024

// decodeBody replaces r's body by its decoded bytes, bounded to limit
// (decoded); the compressed body keeps its own bound (MaxBytesReader on
// it). r.ContentLength becomes -1: the decoded length is not known.
func decodeBody(r *http.Request, limit int64) error {
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if enc == "" || enc == "identity" {
		return nil
	}
	var dec io.ReadCloser
	switch enc {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return errorf(http.StatusBadRequest, "cannot read the body", "Content-Encoding gzip: %v", err)
		}
		dec = zr
	case "deflate":
		// HTTP's deflate is zlib's format (RFC 9110); some clients send raw
		// deflate: tell them apart by zlib's two-byte header.
		br := bufio.NewReader(r.Body)
		if h, err := br.Peek(2); err == nil && h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return errorf(http.StatusBadRequest, "cannot read the body", "Content-Encoding deflate: %v", err)
			}
			dec = zr
		} else {
			dec = flate.NewReader(br)
		}
	default:
		return errorf(http.StatusUnsupportedMediaType, "unsupported content encoding",
			"Content-Encoding %q: this server decodes gzip and deflate", enc)
	}
	r.Body = &decodedBody{dec: dec, raw: r.Body, left: limit, limit: limit}
	r.ContentLength = -1
	r.Header.Del("Content-Encoding")
	return nil
}

// decodedBody bounds a decoded body: more than limit bytes is a
// *http.MaxBytesError (413), as for an uncompressed body.
type decodedBody struct {
	dec   io.ReadCloser
	raw   io.ReadCloser
	left  int64
	limit int64
	err   error
}

func (b *decodedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.dec.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.err = &http.MaxBytesError{Limit: b.limit}
		return n, b.err
	}
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		b.err = errorf(http.StatusBadRequest, "cannot read the body", "decoding the compressed body: %v", err)
		return n, b.err
	}
	return n, err
}

func (b *decodedBody) Close() error {
	b.dec.Close()
	return b.raw.Close()
}

// answerEncoding picks the coding of an answer from the request's
// Accept-Encoding: "gzip" or "deflate" (zlib's format, as HTTP's deflate
// coding is), the one of higher q (gzip on a tie; "*" stands for gzip), or
// "" for none.
func answerEncoding(r *http.Request) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "*" {
			name = "gzip"
		}
		if name != "gzip" && name != "deflate" {
			continue
		}
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		if q > bestQ || q == bestQ && q > 0 && name == "gzip" {
			best, bestQ = name, q
		}
	}
	if bestQ <= 0 {
		return ""
	}
	return best
}

// compressor is what both codings' writers do.
type compressor interface {
	io.Writer
	Flush() error
	Close() error
	Reset(io.Writer)
}

var compressPools = map[string]*sync.Pool{
	"gzip":    {New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }},
	"deflate": {New: func() any { w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed); return w }},
}

// compressWriter compresses an answer in enc when, at its header, it is
// JSON or text of a declared (or unknown) length of at least minCompress
// bytes.
type compressWriter struct {
	http.ResponseWriter
	enc     string
	zw      compressor
	decided bool
}

func (g *compressWriter) WriteHeader(code int) {
	if !g.decided {
		g.decided = true
		h := g.Header()
		h.Add("Vary", "Accept-Encoding")
		if compressible(h, code) {
			h.Del("Content-Length")
			h.Set("Content-Encoding", g.enc)
			g.zw = compressPools[g.enc].Get().(compressor)
			g.zw.Reset(g.ResponseWriter)
		}
	}
	g.ResponseWriter.WriteHeader(code)
}

func compressible(h http.Header, code int) bool {
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified || h.Get("Content-Encoding") != "" {
		return false
	}
	if n, err := strconv.Atoi(h.Get("Content-Length")); err == nil && n < minCompress {
		return false
	}
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/json" || strings.HasPrefix(mt, "text/") || mt == "application/octet-stream" && h.Get("Inference-Header-Content-Length") != ""
}

func (g *compressWriter) Write(b []byte) (int, error) {
	if !g.decided {
		g.WriteHeader(http.StatusOK)
	}
	if g.zw != nil {
		return g.zw.Write(b)
	}
	return g.ResponseWriter.Write(b)
}

// Flush sends what is compressed so far (the page's streamed answers).
func (g *compressWriter) Flush() {
	if g.zw != nil {
		g.zw.Flush()
	}
	if f, ok := g.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (g *compressWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// close ends the compressed stream.
func (g *compressWriter) close() {
	if g.zw != nil {
		g.zw.Close()
		g.zw.Reset(io.Discard)
		compressPools[g.enc].Put(g.zw)
		g.zw = nil
	}
}
