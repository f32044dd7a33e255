package pull

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fast shortens the pauses between retries for a test.
func fast(o Options) Options {
	if o.RetryBackoff == 0 {
		o.RetryBackoff = time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 10 * time.Millisecond
	}
	return o
}

// testServer serves files from memory on loopback and records every request.
type testServer struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte // URL path -> content
	paths  []string
	ranges []string // each request's Range header ("" for none)
	// behave, when set, may handle request number i (0-based, over all
	// paths) itself; it returns false to let the file be served normally
	// (http.ServeContent: Range, 206, 416).
	behave func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool
}

func newTestServer(t *testing.T, files map[string][]byte) *testServer {
	t.Helper()
	s := &testServer{files: files}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := len(s.paths)
	s.paths = append(s.paths, r.URL.Path)
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	body, ok := s.files[r.URL.Path]
	behave := s.behave
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if behave != nil && behave(i, w, r, body) {
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// setBehave installs f (see behave) for the requests to come.
func (s *testServer) setBehave(f func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behave = f
}

func (s *testServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.paths)
}

func (s *testServer) rangesSeen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// cutAfter answers 200 with the whole length announced, sends n bytes of
// body and drops the connection.
func cutAfter(w http.ResponseWriter, body []byte, n int) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body[:n])
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// randomBytes is deterministic test content.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// deadURL is where artifacts point in tests that use BaseURL: a closed port
// on loopback, so a bug that ignores BaseURL fails without touching the
// network.
const deadURL = "http://127.0.0.1:1/nowhere/"

// tarEntry is one entry of a test archive.
type tarEntry struct {
	name string
	typ  byte // 0: regular file
	body string
	link string
	mode int64
	size int64  // header size when non-zero (instead of len(body))
	raw  []byte // written after the header instead of body, bypassing tar (must be last)
}

func file(name, body string) tarEntry { return tarEntry{name: name, body: body} }
func dirEntry(name string) tarEntry   { return tarEntry{name: name, typ: tar.TypeDir} }

// tarGz builds a gzip-compressed tar archive.
func tarGz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: time.Unix(1_700_000_000, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.size != 0 {
			h.Size = e.size
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "test"}}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if e.raw != nil || e.size > int64(len(e.body)) {
			// Raw or truncated data: tar.Writer would refuse, so finish by hand.
			gz.Write(e.raw)
			gz.Close()
			return buf.Bytes()
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("tar body %q: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
