// Package pull fetches the project's third-party inputs (the Oxford-IIIT Pet
// archives, the pretrained backbone): downloads that resume after a cut
// connection, are verified against pinned checksums before they are renamed
// into place, and archives that are extracted without letting an entry
// escape the target directory.
package pull

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Artifact is one file to fetch.
type Artifact struct {
	Name   string // file name to save as
	URL    string
	MD5    string // hex, optional
	SHA256 string // hex, optional (at least one checksum is required)
	Size   int64  // expected size when known (0: unknown)
}

// The pinned artifacts, as functions so that nothing can change them; a
// caller with its own mirror sets Options.BaseURL, and one with other files
// (a test) Options.Artifacts.

// PetsImages is the Oxford-IIIT Pet images archive (791,918,971 bytes,
// images/*.jpg). The MD5 is the one torchvision's OxfordIIITPet pins; the
// size is the Content-Length the dataset's servers announce. The file is
// now served from thor.robots.ox.ac.uk (torchvision still names the old
// www.robots.ox.ac.uk/~vgg/data/pets/data/ location).
func PetsImages() Artifact {
	return Artifact{
		Name: "images.tar.gz",
		URL:  "https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz",
		MD5:  "5c4f3ee8e5d25df40f4fd59a7f44e54c",
		Size: 791_918_971,
	}
}

// PetsAnnotations is the Oxford-IIIT Pet annotations archive (19,173,078
// bytes: annotations/trainval.txt, test.txt, list.txt, trimaps/, xmls/).
func PetsAnnotations() Artifact {
	return Artifact{
		Name: "annotations.tar.gz",
		URL:  "https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz",
		MD5:  "95a8c909bbe2e81eed6a22bccdf3f68f",
		Size: 19_173_078,
	}
}

// BackboneFP32 is the ONNX Model Zoo's float32 MobileNetV2 (opset 12).
// SHA256 and Size are those of the Git LFS pointer at
// validated/vision/classification/mobilenet/model/mobilenetv2-12.onnx in
// github.com/onnx/models (unchanged since March 2022).
func BackboneFP32() Artifact {
	return Artifact{
		Name:   "mobilenetv2-12.onnx",
		URL:    "https://github.com/onnx/models/raw/main/validated/vision/classification/mobilenet/model/mobilenetv2-12.onnx",
		SHA256: "c0c3f76d93fa3fd6580652a45618618a220fced18babf65774ed169de0432ad5",
		Size:   13_964_571,
	}
}

// Options tune Download, Pets and Backbone.
type Options struct {
	// Client makes the requests. Nil: a client with connect, TLS handshake
	// and response header timeouts but no overall timeout (a body that stops
	// arriving for a minute counts as a cut connection instead).
	Client *http.Client
	// BaseURL, when set, replaces the scheme, host and directory of an
	// artifact's URL: the file is fetched from BaseURL + "/" + Name.
	BaseURL string
	// Progress, when non-nil, receives progress: a bar when it is a terminal,
	// otherwise a line every few seconds and one at the end, plus notes such
	// as "already downloaded" or "resuming". Nil is silent.
	Progress io.Writer
	// Retries is how many times a cut connection is retried, each retry
	// resuming where the last one stopped. 0 means 3; negative means none.
	// The count restarts whenever an attempt made progress, so a long
	// download over a flaky link is not abandoned while it advances.
	Retries int
	// MaxSize bounds a download whose artifact pins no Size: the transfer
	// stops at the first byte beyond it (0: DefaultMaxSize). An artifact
	// with a Size is held to exactly that.
	MaxSize int64
	// Extract bounds archive extraction in Pets (zero fields: the defaults).
	Extract Limits
	// Artifacts replace the pinned artifacts of the same Name (other files
	// or checksums, for a mirror of one's own, or a test).
	Artifacts []Artifact

	// Timings; zero takes the default.
	RetryBackoff     time.Duration // first pause before a retry, doubling each time (1 s)
	MaxBackoff       time.Duration // longest pause (30 s)
	StallTimeout     time.Duration // a body with no bytes for this long is treated as cut (1 min)
	ProgressInterval time.Duration // between progress lines on a non-terminal (5 s)
}

// Defaults of Options.
const (
	defaultRetries          = 3
	DefaultMaxSize          = 4 << 30 // bytes, for an artifact of unknown size
	defaultRetryBackoff     = time.Second
	defaultMaxBackoff       = 30 * time.Second
	defaultStallTimeout     = time.Minute
	defaultProgressInterval = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Retries == 0 {
		o.Retries = defaultRetries
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&o.RetryBackoff, defaultRetryBackoff}, {&o.MaxBackoff, defaultMaxBackoff},
		{&o.StallTimeout, defaultStallTimeout}, {&o.ProgressInterval, defaultProgressInterval}} {
		if *d.p <= 0 {
			*d.p = d.def
		}
	}
	return o
}

// artifact is a, or the artifact of Options.Artifacts with its name.
func (o Options) artifact(a Artifact) Artifact {
	for _, b := range o.Artifacts {
		if b.Name == a.Name {
			return b
		}
	}
	return a
}

// ErrChecksumMismatch is what errors.Is matches for a file whose checksum (or
// size) is not the pinned one.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// ErrTooLarge is what errors.Is matches for a download refused because it
// is larger than its artifact's Size (or than Options.MaxSize).
var ErrTooLarge = errors.New("download larger than expected")

// SizeError reports a download stopped for its size: announced by the
// server (Content-Length or Content-Range) before anything was written, or
// received beyond the expected size, in which case the transfer stopped at
// the first byte too many and the partial file was deleted.
type SizeError struct {
	Name      string // artifact name
	Want      int64  // the pinned size, or the cap
	Got       int64  // bytes announced, or received when the transfer stopped
	Announced bool   // Got is what the server announced (nothing was written)
	Cap       bool   // Want is Options.MaxSize, not a pinned size
}

func (e *SizeError) Error() string {
	want := fmt.Sprintf("the expected %d bytes", e.Want)
	if e.Cap {
		want = fmt.Sprintf("the limit of %d bytes for a file of unknown size", e.Want)
	}
	if e.Announced {
		if !e.Cap && e.Got < e.Want {
			return fmt.Sprintf("%s: the server's file is %d bytes, not %s; nothing was downloaded", e.Name, e.Got, want)
		}
		return fmt.Sprintf("%s: the server's file is %d bytes, more than %s; nothing was downloaded", e.Name, e.Got, want)
	}
	return fmt.Sprintf("%s: the server sent more than %s (stopped at %d bytes received); the partial download was deleted", e.Name, want, e.Got)
}

// Is makes errors.Is(err, ErrTooLarge) true for a file larger than wanted.
func (e *SizeError) Is(target error) bool { return target == ErrTooLarge && e.Got > e.Want }

// ChecksumError reports a file that does not match its artifact.
type ChecksumError struct {
	Name string // artifact name
	Algo string // "md5", "sha256" or "size"
	Got  string
	Want string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: checksum mismatch: %s is %s, want %s", e.Name, e.Algo, e.Got, e.Want)
}

// Is makes errors.Is(err, ErrChecksumMismatch) true.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksumMismatch }

// HTTPError is a response with a status other than the ones a download
// expects (200, 206, or 416 for a complete partial file).
type HTTPError struct {
	URL        string
	StatusCode int
	Status     string // e.g. "404 Not Found"
}

func (e *HTTPError) Error() string { return fmt.Sprintf("GET %s: HTTP %s", e.URL, e.Status) }

// SourceURL is where a is fetched from: a.URL, or baseURL + "/" + a.Name when
// baseURL is set.
func SourceURL(a Artifact, baseURL string) (string, error) {
	if baseURL == "" {
		if a.URL == "" {
			return "", fmt.Errorf("%s: no URL", a.Name)
		}
		return a.URL, nil
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("base URL %q: want http(s)://host[/dir]", baseURL)
	}
	return strings.TrimRight(baseURL, "/") + "/" + url.PathEscape(a.Name), nil
}

// Validate checks that a can be downloaded safely: a plain file name and at
// least one well-formed checksum.
func (a Artifact) Validate() error {
	if a.Name == "" || a.Name == "." || a.Name == ".." || strings.ContainsAny(a.Name, `/\`+"\x00") {
		return fmt.Errorf("artifact name %q: want a plain file name", a.Name)
	}
	if a.MD5 == "" && a.SHA256 == "" {
		return fmt.Errorf("%s: no checksum pinned (need MD5 or SHA256)", a.Name)
	}
	if a.MD5 != "" && !isHex(a.MD5, md5.Size) {
		return fmt.Errorf("%s: MD5 %q is not 32 hex digits", a.Name, a.MD5)
	}
	if a.SHA256 != "" && !isHex(a.SHA256, sha256.Size) {
		return fmt.Errorf("%s: SHA256 %q is not 64 hex digits", a.Name, a.SHA256)
	}
	if a.Size < 0 {
		return fmt.Errorf("%s: negative size", a.Name)
	}
	return nil
}

func isHex(s string, n int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == n
}

// Verify checks the file at path against a's size and checksums.
func Verify(ctx context.Context, path string, a Artifact) error {
	if err := a.Validate(); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if a.Size > 0 && st.Size() != a.Size {
		return &ChecksumError{Name: a.Name, Algo: "size", Got: fmt.Sprintf("%d bytes", st.Size()), Want: fmt.Sprintf("%d bytes", a.Size)}
	}
	hs := newHashSet(a)
	if err := hashFrom(ctx, hs, f); err != nil {
		return err
	}
	return hs.check(a)
}

// hashSet hashes the bytes of a file with the algorithms a pins, and counts
// them.
type hashSet struct {
	md5, sha hash.Hash
	n        int64
}

func newHashSet(a Artifact) *hashSet {
	hs := &hashSet{}
	if a.MD5 != "" {
		hs.md5 = md5.New()
	}
	if a.SHA256 != "" {
		hs.sha = sha256.New()
	}
	return hs
}

func (h *hashSet) Write(p []byte) (int, error) {
	if h.md5 != nil {
		h.md5.Write(p)
	}
	if h.sha != nil {
		h.sha.Write(p)
	}
	h.n += int64(len(p))
	return len(p), nil
}

func (h *hashSet) reset() {
	if h.md5 != nil {
		h.md5.Reset()
	}
	if h.sha != nil {
		h.sha.Reset()
	}
	h.n = 0
}

func (h *hashSet) check(a Artifact) error {
	if h.md5 != nil {
		if got := hex.EncodeToString(h.md5.Sum(nil)); !strings.EqualFold(got, a.MD5) {
			return &ChecksumError{Name: a.Name, Algo: "md5", Got: got, Want: strings.ToLower(a.MD5)}
		}
	}
	if h.sha != nil {
		if got := hex.EncodeToString(h.sha.Sum(nil)); !strings.EqualFold(got, a.SHA256) {
			return &ChecksumError{Name: a.Name, Algo: "sha256", Got: got, Want: strings.ToLower(a.SHA256)}
		}
	}
	return nil
}

// hashFrom feeds r to hs, stopping early when ctx is cancelled.
func hashFrom(ctx context.Context, hs *hashSet, r io.Reader) error {
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		hs.Write(buf[:n])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// newClient is the default client: bounded connection set-up, unbounded
// body (big files on slow links), proxies from the environment.
func newClient() *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   20 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          4,
	}}
}

// Download fetches a into dir/a.Name and returns that path.
//
// A file already there with the right checksum is kept ("already
// downloaded"). Otherwise the body goes to dir/a.Name+".part", resuming an
// existing part with a Range request, and retrying a cut connection
// (Options.Retries) from where it stopped. The part is verified against the
// pinned checksums, synced and only then renamed into place; a part that
// does not match is deleted and the error wraps ErrChecksumMismatch. When ctx
// is cancelled the part is kept for a later call to resume.
func Download(ctx context.Context, a Artifact, dir string, opt Options) (path string, err error) {
	if err := a.Validate(); err != nil {
		return "", err
	}
	src, err := SourceURL(a, opt.BaseURL)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	opt = opt.withDefaults()
	final := filepath.Join(dir, a.Name)
	prog := newProgress(opt.Progress, a.Name, opt.ProgressInterval)

	if st, err := os.Stat(final); err == nil {
		if !st.Mode().IsRegular() {
			return "", fmt.Errorf("%s exists and is not a regular file", final)
		}
		err := Verify(ctx, final, a)
		if err == nil {
			prog.logf("already downloaded (%s, checksum ok)", final)
			return final, nil
		}
		if !errors.Is(err, ErrChecksumMismatch) {
			return "", err
		}
		prog.logf("%s does not match (%v); downloading it again", final, err)
	}

	d := &downloader{
		ctx:    ctx,
		a:      a,
		url:    src,
		part:   final + ".part",
		final:  final,
		client: opt.Client,
		prog:   prog,
		hs:     newHashSet(a),
		opt:    opt,
	}
	if d.client == nil {
		d.client = newClient()
		defer d.client.CloseIdleConnections()
	}
	if err := d.run(opt.Retries); err != nil {
		return "", err
	}
	return final, nil
}

type downloader struct {
	ctx         context.Context
	a           Artifact
	url         string
	part, final string
	client      *http.Client
	prog        *progress
	hs          *hashSet // hashes of the part's bytes [0, hs.n)
	opt         Options  // with defaults
}

// retryableError marks a failure worth another attempt (a cut or stalled
// connection, a transient server state).
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

var errStalled = errors.New("no data received for too long")

func (d *downloader) run(retries int) error {
	failures := 0
	for {
		progressed, err := d.attempt()
		if err == nil {
			return d.finish()
		}
		if cerr := d.ctx.Err(); cerr != nil {
			return fmt.Errorf("%s: %w%s", d.a.Name, cerr, d.keptNote())
		}
		var re *retryableError
		var se *SizeError
		if errors.As(err, &se) {
			return err
		}
		if !errors.As(err, &re) {
			return fmt.Errorf("%s: %w", d.a.Name, err)
		}
		if progressed {
			failures = 0
		}
		failures++
		if failures > retries {
			return fmt.Errorf("%s: %w (gave up after %d retries)%s", d.a.Name, re.err, retries, d.keptNote())
		}
		wait := d.opt.RetryBackoff << (failures - 1)
		if wait > d.opt.MaxBackoff || wait <= 0 {
			wait = d.opt.MaxBackoff
		}
		d.prog.logf("%v; retrying in %v (%d/%d)", re.err, wait.Round(time.Millisecond), failures, retries)
		t := time.NewTimer(wait)
		select {
		case <-d.ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w%s", d.a.Name, d.ctx.Err(), d.keptNote())
		case <-t.C:
		}
	}
}

// keptNote tells where the partial download is, when there is one.
func (d *downloader) keptNote() string {
	if st, err := os.Stat(d.part); err == nil && st.Size() > 0 {
		return fmt.Sprintf(" (%s of it kept in %s; run again to resume)", formatBytes(st.Size()), d.part)
	}
	return ""
}

// syncHashes makes d.hs describe the part's current content and returns its
// size (0 when there is no part).
func (d *downloader) syncHashes() (int64, error) {
	f, err := os.Open(d.part)
	if errors.Is(err, os.ErrNotExist) {
		d.hs.reset()
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", d.part)
	}
	if st.Size() == d.hs.n && d.hs.n > 0 {
		return d.hs.n, nil
	}
	d.hs.reset()
	if err := hashFrom(d.ctx, d.hs, f); err != nil {
		return 0, err
	}
	return d.hs.n, nil
}

// restart discards the part.
func (d *downloader) restart() error {
	d.hs.reset()
	if err := os.Remove(d.part); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// attempt makes one request and appends its body to the part. progressed
// says whether any byte was added. A nil error means the part holds the
// whole file (not yet verified).
func (d *downloader) attempt() (progressed bool, err error) {
	off, err := d.syncHashes()
	if err != nil {
		return false, err
	}
	size := d.a.Size
	if size > 0 && off > size {
		d.prog.logf("partial download is larger than the file; starting over")
		if err := d.restart(); err != nil {
			return false, err
		}
		off = 0
	}
	if size > 0 && off == size {
		return false, nil // complete: verified by finish
	}

	actx, cancel := context.WithCancelCause(d.ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(actx, http.MethodGet, d.url, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("User-Agent", "petbreed-pull/1")
	// Byte offsets must mean the same thing across requests: no transparent
	// decompression.
	req.Header.Set("Accept-Encoding", "identity")
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		if isTransient(err) {
			return false, &retryableError{err}
		}
		return false, err
	}
	defer resp.Body.Close()

	total := int64(-1) // size of the whole file, when the server says
	switch {
	case resp.StatusCode == http.StatusOK:
		if off > 0 {
			d.prog.logf("server does not resume (HTTP 200 to a Range request); starting over")
			d.hs.reset()
			off = 0
		}
		total = resp.ContentLength
	case resp.StatusCode == http.StatusPartialContent && off > 0:
		start, tot, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			if err := d.restart(); err != nil {
				return false, err
			}
			return false, &retryableError{fmt.Errorf("GET %s: asked for bytes from %d, got Content-Range %q; starting over",
				d.url, off, resp.Header.Get("Content-Range"))}
		}
		total = tot
		d.prog.logf("resuming at %s", formatBytes(off))
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && off > 0:
		// The part is complete, or longer than the file: check it.
		if err := d.hs.check(d.a); err == nil {
			return false, nil
		}
		d.prog.logf("partial download is not a prefix of the file (HTTP 416); starting over")
		if err := d.restart(); err != nil {
			return false, err
		}
		return false, &retryableError{fmt.Errorf("GET %s: HTTP %s for a partial download that does not match", d.url, resp.Status)}
	default:
		herr := &HTTPError{URL: d.url, StatusCode: resp.StatusCode, Status: resp.Status}
		switch resp.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return false, &retryableError{herr}
		}
		return false, herr
	}
	// The size is checked before a byte is written: a pinned size exactly,
	// otherwise against the cap.
	limit, capped := size, size <= 0
	if capped {
		limit = d.opt.MaxSize
	}
	if total >= 0 && (total > limit || (!capped && total != size)) {
		if err := d.restart(); err != nil {
			return false, err
		}
		return false, &SizeError{Name: d.a.Name, Want: limit, Got: total, Announced: true, Cap: capped}
	}

	flag := os.O_WRONLY | os.O_CREATE
	if off == 0 {
		flag |= os.O_TRUNC
	}
	f, err := os.OpenFile(d.part, flag, 0o644)
	if err != nil {
		return false, err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return false, err
	}

	if total < 0 && !capped {
		total = size
	}
	d.prog.begin(off, total)
	// A body that stops arriving is cancelled and retried like a cut one.
	stall := d.opt.StallTimeout
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()
	buf := make([]byte, 256<<10)
	start := d.hs.n
	for {
		// Never read more than one byte beyond the limit: a body without
		// Content-Length that does not end stops there.
		n, rerr := resp.Body.Read(buf[:min(int64(len(buf)), limit-d.hs.n+1)])
		if n > 0 {
			watchdog.Reset(stall)
			if got := d.hs.n + int64(n); got > limit {
				f.Close()
				if err := d.restart(); err != nil {
					return false, err
				}
				return false, &SizeError{Name: d.a.Name, Want: limit, Got: got, Cap: capped}
			}
			w, werr := f.Write(buf[:n])
			d.hs.Write(buf[:w])
			d.prog.add(w)
			if werr != nil {
				return d.hs.n > start, werr
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if d.ctx.Err() != nil {
				return d.hs.n > start, d.ctx.Err()
			}
			if context.Cause(actx) == errStalled {
				rerr = fmt.Errorf("%w (%v)", errStalled, stall)
			}
			return d.hs.n > start, &retryableError{fmt.Errorf("connection lost after %s: %w", formatBytes(d.hs.n), rerr)}
		}
	}
	if total >= 0 && d.hs.n < total {
		return d.hs.n > start, &retryableError{fmt.Errorf("connection closed after %s of %s: %w",
			formatBytes(d.hs.n), formatBytes(total), io.ErrUnexpectedEOF)}
	}
	return d.hs.n > start, nil
}

// finish verifies the complete part and renames it into place.
func (d *downloader) finish() error {
	if _, err := d.syncHashes(); err != nil {
		return fmt.Errorf("%s: %w", d.a.Name, err)
	}
	if err := d.hs.check(d.a); err != nil {
		os.Remove(d.part)
		d.prog.logf("%v (deleted the download)", err)
		return err
	}
	f, err := os.OpenFile(d.part, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(d.part, d.final); err != nil {
		return err
	}
	syncDir(filepath.Dir(d.final))
	d.prog.done()
	return nil
}

// syncDir makes a rename in dir durable (best effort).
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*", -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	var end int64
	if _, err := fmt.Sscan(a, &start); err != nil || start < 0 {
		return 0, 0, false
	}
	if _, err := fmt.Sscan(b, &end); err != nil || end < start {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if _, err := fmt.Sscan(tot, &total); err != nil || total <= end {
			return 0, 0, false
		}
	}
	return start, total, true
}

// isTransient says whether a failed request (no response) is worth
// retrying: timeouts, refused or reset connections, a server closing the
// connection before answering.
func isTransient(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false // no such host: waiting will not help
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
