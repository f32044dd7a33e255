package pull

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const payloadSize = 300_000

// fixture is a server with one file and an artifact describing it.
func fixture(t *testing.T) (*testServer, Artifact, []byte) {
	t.Helper()
	body := randomBytes(payloadSize, 7)
	s := newTestServer(t, map[string][]byte{"/files/data.bin": body})
	a := Artifact{Name: "data.bin", URL: s.URL + "/files/data.bin", MD5: md5Hex(body), SHA256: sha256Hex(body)}
	return s, a, body
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, differs from the %d served", path, len(got), len(want))
	}
}

func assertAbsent(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists (err %v), want it absent", p, err)
		}
	}
}

// assertOneTryNoFile: the download was refused after one request (not
// retried) and left neither the file nor its partial download in dir.
func assertOneTryNoFile(t *testing.T, s *testServer, dir string, a Artifact) {
	t.Helper()
	if s.count() != 1 {
		t.Errorf("%d requests, want 1 (not retried)", s.count())
	}
	assertAbsent(t, filepath.Join(dir, a.Name), filepath.Join(dir, a.Name+".part"))
}

func TestDownload(t *testing.T) {
	body := randomBytes(payloadSize, 1)
	s := newTestServer(t, map[string][]byte{"/files/data.bin": body, "/mirror/sub/data.bin": body})
	good := Artifact{Name: "data.bin", URL: s.URL + "/files/data.bin"}
	tests := []struct {
		name string
		a    func(Artifact) Artifact
		base string
	}{
		{"md5", func(a Artifact) Artifact { a.MD5 = md5Hex(body); return a }, ""},
		{"sha256", func(a Artifact) Artifact { a.SHA256 = sha256Hex(body); return a }, ""},
		{"both and size", func(a Artifact) Artifact {
			a.MD5, a.SHA256, a.Size = md5Hex(body), strings.ToUpper(sha256Hex(body)), int64(len(body))
			return a
		}, ""},
		{"base URL", func(a Artifact) Artifact { a.URL, a.MD5 = deadURL+"data.bin", md5Hex(body); return a }, s.URL + "/mirror/sub/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "new", "dir")
			before := s.count()
			var prog bytes.Buffer
			path, err := Download(context.Background(), tt.a(good), dir, fast(Options{BaseURL: tt.base, Progress: &prog}))
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, "data.bin"); path != want {
				t.Errorf("path = %s, want %s", path, want)
			}
			assertFile(t, path, body)
			assertAbsent(t, path+".part")
			if n := s.count() - before; n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
			if !strings.Contains(prog.String(), "data.bin: downloaded 300.0 kB") || !strings.Contains(prog.String(), "checksum ok") {
				t.Errorf("progress output = %q", prog.String())
			}
			st, _ := os.Stat(path)
			if st.Mode().Perm() != 0o644 {
				t.Errorf("mode %v", st.Mode())
			}
		})
	}
}

func TestDownloadAlreadyDownloaded(t *testing.T) {
	s, a, body := fixture(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, a.Name), body, 0o644)
	var prog bytes.Buffer
	path, err := Download(context.Background(), a, dir, fast(Options{Progress: &prog}))
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, body)
	if s.count() != 0 {
		t.Errorf("%d requests for a file already there", s.count())
	}
	if !strings.Contains(prog.String(), "already downloaded") {
		t.Errorf("progress output = %q", prog.String())
	}
}

func TestDownloadReplacesWrongExistingFile(t *testing.T) {
	s, a, body := fixture(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, a.Name), []byte("stale"), 0o644)
	path, err := Download(context.Background(), a, dir, fast(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, body)
	if s.count() != 1 {
		t.Errorf("%d requests, want 1", s.count())
	}
}

func TestDownloadChecksumMismatch(t *testing.T) {
	s, a, body := fixture(t)
	wrong := strings.Repeat("0", 64)
	tests := []struct {
		name      string
		a         Artifact
		got, want string
	}{
		{"md5", Artifact{Name: a.Name, URL: a.URL, MD5: wrong[:32]}, md5Hex(body), wrong[:32]},
		{"sha256", Artifact{Name: a.Name, URL: a.URL, MD5: a.MD5, SHA256: wrong}, sha256Hex(body), wrong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Download(context.Background(), tt.a, dir, fast(Options{}))
			if !errors.Is(err, ErrChecksumMismatch) {
				t.Fatalf("err = %v, want a checksum mismatch", err)
			}
			for _, s := range []string{"checksum mismatch", tt.got, tt.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			assertAbsent(t, filepath.Join(dir, a.Name), filepath.Join(dir, a.Name+".part"))
		})
	}
	_ = s
}

func TestDownloadResumesAfterCutConnection(t *testing.T) {
	for _, cut := range []int{1, payloadSize / 2, payloadSize - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			s, a, body := fixture(t)
			s.setBehave(func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool {
				if i == 0 {
					cutAfter(w, body, cut)
					return true
				}
				return false
			})
			var prog bytes.Buffer
			path, err := Download(context.Background(), a, t.TempDir(), fast(Options{Progress: &prog}))
			if err != nil {
				t.Fatal(err)
			}
			assertFile(t, path, body)
			want := []string{"", fmt.Sprintf("bytes=%d-", cut)}
			if got := s.rangesSeen(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Range headers %q, want %q", got, want)
			}
			if out := prog.String(); !strings.Contains(out, "retrying") || !strings.Contains(out, "resuming at") {
				t.Errorf("progress output = %q", out)
			}
		})
	}
}

func TestDownloadGivesUp(t *testing.T) {
	tests := []struct {
		name     string
		retries  int
		requests int
		behave   func(w http.ResponseWriter, body []byte)
		wantErr  string
	}{
		{"cut before any byte", 2, 3, func(w http.ResponseWriter, body []byte) { cutAfter(w, body, 0) }, "gave up after 2 retries"},
		{"no retries", -1, 1, func(w http.ResponseWriter, body []byte) { cutAfter(w, body, 0) }, "gave up after 0 retries"},
		{"default retries", 0, 4, func(w http.ResponseWriter, body []byte) { cutAfter(w, body, 0) }, "gave up after 3 retries"},
		{"503 is retried", 1, 2, func(w http.ResponseWriter, body []byte) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}, "HTTP 503 Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, a, _ := fixture(t)
			s.setBehave(func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool {
				tt.behave(w, body)
				return true
			})
			dir := t.TempDir()
			_, err := Download(context.Background(), a, dir, fast(Options{Retries: tt.retries}))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if s.count() != tt.requests {
				t.Errorf("%d requests, want %d", s.count(), tt.requests)
			}
			assertAbsent(t, filepath.Join(dir, a.Name))
		})
	}
}

func TestDownloadKeepsRetryingWhileProgressing(t *testing.T) {
	// Five cuts, each after some progress, with one retry allowed: the count
	// restarts after every attempt that advanced.
	s, a, body := fixture(t)
	s.setBehave(func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if i >= 5 {
			return false
		}
		start := i * 1000
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(body)-1, len(body)))
		status := http.StatusPartialContent
		if i == 0 {
			w.Header().Del("Content-Range")
			status = http.StatusOK
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)-start))
		w.WriteHeader(status)
		w.Write(body[start : start+1000])
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return true
	})
	path, err := Download(context.Background(), a, t.TempDir(), fast(Options{Retries: 1}))
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, body)
	if got := s.rangesSeen(); len(got) != 6 || got[5] != "bytes=5000-" {
		t.Errorf("Range headers %q", got)
	}
}

func TestDownloadPartialFile(t *testing.T) {
	body := randomBytes(payloadSize, 7)
	garbage := randomBytes(1000, 99)
	tests := []struct {
		name        string
		part        []byte
		size        bool // pin the size in the artifact
		ignoreRange bool
		ranges      []string
	}{
		{"resume a good part", body[:1234], false, false, []string{"bytes=1234-"}},
		{"server ignores Range, good part", body[:1234], false, true, []string{"bytes=1234-"}},
		{"server ignores Range, garbage part", garbage, false, true, []string{"bytes=1000-"}},
		{"garbage part, Range honoured", garbage, false, false, []string{"bytes=1000-"}}, // caught by the checksum
		{"complete part, 416", body, false, false, []string{"bytes=300000-"}},
		{"complete part of the pinned size", body, true, false, nil},
		{"corrupt complete part, 416", append(append([]byte{}, body[:payloadSize-1]...), body[payloadSize-1]+1), false, false, []string{"bytes=300000-", ""}},
		{"part longer than the file, 416", append(append([]byte{}, body...), 1, 2, 3), false, false, []string{"bytes=300003-", ""}},
		{"part longer than the pinned size", append(append([]byte{}, body...), 1, 2, 3), true, false, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, map[string][]byte{"/data.bin": body})
			if tt.ignoreRange {
				s.setBehave(func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool {
					r.Header.Del("Range")
					return false
				})
			}
			a := Artifact{Name: "data.bin", URL: s.URL + "/data.bin", MD5: md5Hex(body)}
			if tt.size {
				a.Size = payloadSize
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "data.bin.part"), tt.part, 0o644)
			path, err := Download(context.Background(), a, dir, fast(Options{}))
			if tt.name == "garbage part, Range honoured" {
				// A part that is not a prefix cannot be detected before the end:
				// the checksum fails, and the part is deleted for a clean retry.
				if !errors.Is(err, ErrChecksumMismatch) {
					t.Fatalf("err = %v, want a checksum mismatch", err)
				}
				assertAbsent(t, filepath.Join(dir, "data.bin.part"), filepath.Join(dir, "data.bin"))
				path, err = Download(context.Background(), a, dir, fast(Options{}))
				tt.ranges = append(tt.ranges, "")
			}
			if err != nil {
				t.Fatal(err)
			}
			assertFile(t, path, body)
			assertAbsent(t, path+".part")
			if got := s.rangesSeen(); fmt.Sprint(got) != fmt.Sprint(tt.ranges) {
				t.Errorf("Range headers %q, want %q", got, tt.ranges)
			}
		})
	}
}

func TestDownloadHTTPErrors(t *testing.T) {
	tests := []struct {
		missing bool // ask for a file the server does not have
		status  int
		text    string
	}{
		{true, 404, "404 Not Found"},
		{false, 500, "500 Internal Server Error"},
		{false, 403, "403 Forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			s, a, _ := fixture(t)
			s.setBehave(func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool {
				http.Error(w, "no", tt.status)
				return true
			})
			if tt.missing {
				a.URL = s.URL + "/files/missing.bin"
			}
			dir := t.TempDir()
			_, err := Download(context.Background(), a, dir, fast(Options{}))
			var he *HTTPError
			if !errors.As(err, &he) || he.StatusCode != tt.status {
				t.Fatalf("err = %v, want an HTTPError %d", err, tt.status)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), a.URL) {
				t.Errorf("error %q should name the status and the URL", err)
			}
			assertOneTryNoFile(t, s, dir, a)
		})
	}
}

func TestDownloadSizeMismatch(t *testing.T) {
	s, a, _ := fixture(t)
	a.Size = payloadSize - 10
	dir := t.TempDir()
	_, err := Download(context.Background(), a, dir, fast(Options{}))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("file is %d bytes, more than the expected %d bytes", payloadSize, payloadSize-10)) {
		t.Fatalf("err = %v", err)
	}
	assertAbsent(t, filepath.Join(dir, a.Name), filepath.Join(dir, a.Name+".part"))

	// A server that does not announce the length but sends too much.
	s.setBehave(func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool {
		w.(http.Flusher).Flush() // chunked: no Content-Length
		w.Write(body)
		return true
	})
	_, err = Download(context.Background(), a, dir, fast(Options{}))
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("err = %v", err)
	}
	assertAbsent(t, filepath.Join(dir, a.Name), filepath.Join(dir, a.Name+".part"))
}

func TestDownloadCancelKeepsPartForResume(t *testing.T) {
	s, a, body := fixture(t)
	half := payloadSize / 2
	s.setBehave(func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if i > 0 {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:half])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // hang until the client goes away
		return true
	})
	dir := t.TempDir()
	part := filepath.Join(dir, a.Name+".part")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if st, err := os.Stat(part); err == nil && st.Size() == int64(half) {
				break
			}
		}
		cancel()
	}()
	_, err := Download(ctx, a, dir, fast(Options{}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "run again to resume") {
		t.Errorf("error %q should say the part is kept", err)
	}
	st, err := os.Stat(part)
	if err != nil || st.Size() != int64(half) {
		t.Fatalf("part after cancel: %v %v, want %d bytes", st, err, half)
	}
	assertAbsent(t, filepath.Join(dir, a.Name))

	path, err := Download(context.Background(), a, dir, fast(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, body)
	if got, want := s.rangesSeen(), []string{"", fmt.Sprintf("bytes=%d-", half)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Range headers %q, want %q", got, want)
	}
}

func TestDownloadStalledBodyIsRetried(t *testing.T) {
	s, a, body := fixture(t)
	release := make(chan struct{})
	defer close(release)
	s.setBehave(func(i int, w http.ResponseWriter, r *http.Request, body []byte) bool {
		if i > 0 {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:1000])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	})
	var prog bytes.Buffer
	path, err := Download(context.Background(), a, t.TempDir(), fast(Options{Progress: &prog, StallTimeout: 200 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, body)
	if got := s.rangesSeen(); len(got) != 2 || got[1] != "bytes=1000-" {
		t.Errorf("Range headers %q", got)
	}
	if !strings.Contains(prog.String(), "no data received") {
		t.Errorf("progress output = %q", prog.String())
	}
}

func TestDownloadInvalid(t *testing.T) {
	tests := []struct {
		name string
		a    Artifact
		opt  Options
		want string
	}{
		{"no checksum", Artifact{Name: "x", URL: deadURL + "x"}, fast(Options{}), "no checksum"},
		{"bad md5", Artifact{Name: "x", URL: deadURL + "x", MD5: "abc"}, fast(Options{}), "not 32 hex"},
		{"bad sha256", Artifact{Name: "x", URL: deadURL + "x", SHA256: strings.Repeat("g", 64)}, fast(Options{}), "not 64 hex"},
		{"name with a slash", Artifact{Name: "../x", URL: deadURL + "x", MD5: strings.Repeat("0", 32)}, fast(Options{}), "plain file name"},
		{"dot dot", Artifact{Name: "..", URL: deadURL + "x", MD5: strings.Repeat("0", 32)}, fast(Options{}), "plain file name"},
		{"no URL", Artifact{Name: "x", MD5: strings.Repeat("0", 32)}, fast(Options{}), "no URL"},
		{"bad base URL", Artifact{Name: "x", MD5: strings.Repeat("0", 32)}, fast(Options{BaseURL: "ftp://mirror"}), "base URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Download(context.Background(), tt.a, t.TempDir(), tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPinnedArtifacts(t *testing.T) {
	for _, a := range []Artifact{PetsImages(), PetsAnnotations(), BackboneFP32()} {
		if err := a.Validate(); err != nil {
			t.Error(err)
		}
		if !strings.HasPrefix(a.URL, "https://") || !strings.HasSuffix(a.URL, "/"+a.Name) {
			t.Errorf("%s: URL %s", a.Name, a.URL)
		}
	}
	if PetsImages().MD5 != "5c4f3ee8e5d25df40f4fd59a7f44e54c" || PetsAnnotations().MD5 != "95a8c909bbe2e81eed6a22bccdf3f68f" {
		t.Error("pets checksums differ from torchvision's")
	}
	// The sizes the dataset's servers announce (Content-Length), so that a
	// mirror streaming more is stopped at the first byte too many.
	if PetsImages().Size != 791_918_971 || PetsAnnotations().Size != 19_173_078 {
		t.Errorf("pets sizes %d and %d, want 791918971 and 19173078", PetsImages().Size, PetsAnnotations().Size)
	}
	if b := BackboneFP32(); b.SHA256 != "c0c3f76d93fa3fd6580652a45618618a220fced18babf65774ed169de0432ad5" || b.Size != 13964571 {
		t.Error("backbone checksum differs from the ONNX model zoo's LFS pointer")
	}
}

func TestSourceURL(t *testing.T) {
	a := Artifact{Name: "images.tar.gz", URL: "https://example.org/pets/images.tar.gz"}
	tests := []struct{ base, want string }{
		{"", "https://example.org/pets/images.tar.gz"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/images.tar.gz"},
		{"http://127.0.0.1:8080/mirror/pets/", "http://127.0.0.1:8080/mirror/pets/images.tar.gz"},
	}
	for _, tt := range tests {
		got, err := SourceURL(a, tt.base)
		if err != nil || got != tt.want {
			t.Errorf("SourceURL(%q) = %q, %v; want %q", tt.base, got, err, tt.want)
		}
	}
	if _, err := SourceURL(a, "not a url"); err == nil {
		t.Error("want an error for a base URL without scheme")
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/1", 0, 1, true},
		{"bytes 5-9/*", 5, -1, true},
		{"bytes 100-199/150", 0, 0, false},
		{"bytes */200", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes 9-5/10", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		start, total, ok := parseContentRange(tt.in)
		if ok != tt.ok || (ok && (start != tt.start || total != tt.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", tt.in, start, total, ok)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 791_918_971: "791.9 MB", 13_964_571: "14.0 MB", 5e12: "5.0 TB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
