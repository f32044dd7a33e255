// Package loadgen is the HTTP load generator that benchmarks `petbreed serve`:
// a closed loop of Concurrency workers, each sending one request at a time
// over its own keep-alive connection, with every latency kept so that the
// percentiles are exact. It only ever talks to loopback addresses (see
// CheckLoopback): this workplace forbids traffic elsewhere.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout is the per-request timeout when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config describes one load run.
type Config struct {
	URL         string // e.g. http://127.0.0.1:8080/api/predict; a loopback host only
	Body        []byte // the image
	ContentType string // of Body; sniffed from it when empty
	Multipart   bool   // send as multipart field "file" instead of a raw body
	Filename    string // the multipart file name (default "image" plus an extension for ContentType)
	Concurrency int    // workers, each with at most one request in flight (at least 1)
	// Requests is the total number of measured requests, or Duration how
	// long to keep sending them; at least one must be set, and with both the
	// run stops at whichever is reached first. Requests in flight when the
	// duration is up are completed and counted.
	Requests int
	Duration time.Duration
	Warmup   int           // requests sent (at Concurrency) and discarded first
	Timeout  time.Duration // per request, from sending to the end of the response body (default DefaultTimeout)
}

// Result is what a run measured. A request succeeds when it gets a 2xx
// status and its whole body is read; the latency figures are over the
// successful requests only (fast 503s would otherwise flatter them).
type Result struct {
	Requests int // measured requests completed, successful or not (warm-up excluded)
	Errors   int
	// ErrorsByStatus counts failed requests by HTTP status; status 0 counts
	// those that got no complete response (connection refused or reset,
	// timeout, truncated body).
	ErrorsByStatus map[int]int
	FirstError     string // the first failure, with the start of its response body

	Elapsed    time.Duration // from the first measured request to the end of the last
	Throughput float64       // successful requests per second of Elapsed

	P50, P90, P99, Max, Mean time.Duration
}

// Successes is the number of successful requests.
func (r Result) Successes() int { return r.Requests - r.Errors }

// Run sends cfg's load and returns what it measured. It stops by itself
// (after cfg.Requests, or once cfg.Duration is up and the requests in
// flight are done), or when ctx is cancelled: then it returns what it had
// measured so far together with ctx's error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	g, err := newGenerator(cfg)
	if err != nil {
		return Result{}, err
	}
	defer g.client.CloseIdleConnections()

	if cfg.Warmup > 0 {
		g.phase(ctx, cfg.Warmup, time.Time{}, false)
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
	}
	var deadline time.Time
	start := time.Now()
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	p := g.phase(ctx, cfg.Requests, deadline, true)
	res := summarize(p.latencies, time.Since(start))
	res.Requests = len(p.latencies) + p.errors
	res.Errors = p.errors
	res.ErrorsByStatus = p.byStatus
	res.FirstError = p.firstError
	return res, ctx.Err()
}

// generator holds what every request of a run shares.
type generator struct {
	cfg         Config
	client      *http.Client
	body        []byte
	contentType string
}

func newGenerator(cfg Config) (*generator, error) {
	if err := CheckLoopback(cfg.URL); err != nil {
		return nil, err
	}
	switch {
	case cfg.Concurrency < 1:
		return nil, fmt.Errorf("loadgen: concurrency must be at least 1 (got %d)", cfg.Concurrency)
	case cfg.Requests < 0 || cfg.Duration < 0 || cfg.Warmup < 0 || cfg.Timeout < 0:
		return nil, errors.New("loadgen: requests, duration, warm-up and timeout must not be negative")
	case cfg.Requests == 0 && cfg.Duration == 0:
		return nil, errors.New("loadgen: set a number of requests or a duration (the run must be bounded)")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	ct := cfg.ContentType
	if ct == "" {
		ct = http.DetectContentType(cfg.Body)
	}
	g := &generator{cfg: cfg, client: NewClient(cfg.Concurrency, cfg.Timeout), body: cfg.Body, contentType: ct}
	if cfg.Multipart {
		name := cfg.Filename
		if name == "" {
			name = "image" + extension(ct)
		}
		body, mct, err := MultipartBody("file", name, ct, cfg.Body)
		if err != nil {
			return nil, err
		}
		g.body, g.contentType = body, mct
	}
	return g, nil
}

// NewClient returns the HTTP client of a run: HTTP/1.1 keep-alive with at
// most one connection per worker, no proxy, no compression, no
// redirects followed (a 3xx counts as an error), and a dialer that refuses
// any address that is not loopback, whatever a host name resolves to.
func NewClient(concurrency int, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackControl}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          max(concurrency, 100),
		MaxIdleConnsPerHost:   concurrency,
		MaxConnsPerHost:       concurrency, // one per worker: a worker never dials while its connection is being put back
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		WriteBufferSize:       64 << 10, // an image in a few writes
		ReadBufferSize:        16 << 10,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// phaseResult is what the workers of one phase measured.
type phaseResult struct {
	latencies  []time.Duration // of the successful requests
	errors     int
	byStatus   map[int]int
	firstError string
}

// phase runs cfg.Concurrency workers until n requests were started (n > 0)
// or deadline passed (when not zero), or ctx is done. Requests cut short by
// ctx are not counted.
func (g *generator) phase(ctx context.Context, n int, deadline time.Time, record bool) phaseResult {
	workers := g.cfg.Concurrency
	if n > 0 && n < workers {
		workers = n
	}
	var (
		issued atomic.Int64
		mu     sync.Mutex
		wg     sync.WaitGroup
		out    = phaseResult{byStatus: map[int]int{}}
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lats []time.Duration
			if record && n > 0 {
				lats = make([]time.Duration, 0, min(n/workers+1, 1<<16))
			}
			errs := map[int]int{}
			nerr := 0
			first := ""
			for ctx.Err() == nil {
				if n > 0 && issued.Add(1) > int64(n) {
					break
				}
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					break
				}
				lat, status, err := g.do(ctx)
				if ctx.Err() != nil {
					break // cancelled: neither a success nor the server's fault
				}
				if err != nil {
					nerr++
					errs[status]++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				if record {
					lats = append(lats, lat)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			out.latencies = append(out.latencies, lats...)
			out.errors += nerr
			for s, c := range errs {
				out.byStatus[s] += c
			}
			if out.firstError == "" {
				out.firstError = first
			}
		}()
	}
	wg.Wait()
	return out
}

// statusError is a response with a status other than 2xx.
type statusError struct {
	status string
	body   string
}

func (e *statusError) Error() string {
	if e.body == "" {
		return e.status
	}
	return e.status + ": " + e.body
}

// do sends one request and reads its whole response. The latency runs from
// sending the request to the last byte of the response body.
func (g *generator) do(ctx context.Context) (time.Duration, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.URL, bytes.NewReader(g.body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", g.contentType)
	start := time.Now()
	resp, err := g.client.Do(req)
	if err != nil {
		return time.Since(start), 0, err
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	var snippet []byte
	if !ok {
		snippet, _ = io.ReadAll(io.LimitReader(resp.Body, 300))
	}
	_, rerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	switch {
	case rerr != nil:
		return lat, 0, fmt.Errorf("%s: reading the body: %w", resp.Status, rerr)
	case !ok:
		return lat, resp.StatusCode, &statusError{status: resp.Status, body: strings.TrimSpace(string(snippet))}
	}
	return lat, resp.StatusCode, nil
}

// summarize computes the latency figures and the throughput from the
// latencies of the successful requests. Percentiles are exact, by the
// nearest-rank method on all samples.
func summarize(lats []time.Duration, elapsed time.Duration) Result {
	r := Result{Elapsed: elapsed}
	if len(lats) == 0 {
		return r
	}
	sorted := slices.Clone(lats)
	slices.Sort(sorted)
	var sum time.Duration
	for _, l := range sorted {
		sum += l
	}
	r.P50 = Percentile(sorted, 50)
	r.P90 = Percentile(sorted, 90)
	r.P99 = Percentile(sorted, 99)
	r.Max = sorted[len(sorted)-1]
	r.Mean = sum / time.Duration(len(sorted))
	if elapsed > 0 {
		r.Throughput = float64(len(sorted)) / elapsed.Seconds()
	}
	return r
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted ascending
// samples by the nearest-rank method: the smallest sample with at least p%
// of the samples at or below it. It is 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// rank = ceil(p/100*n), with a tolerance for p that floats cannot hold
	// exactly (99.9% of 1000 is rank 999, not 1000).
	rank := int(math.Ceil(p*float64(n)/100 - 1e-9))
	return sorted[min(max(rank, 1), n)-1]
}

// MultipartBody returns a multipart/form-data body with data as the file
// field named field, and the request's Content-Type (with the boundary).
func MultipartBody(field, filename, contentType string, data []byte) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", multipart.FileContentDisposition(field, filename))
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	h.Set("Content-Type", contentType)
	part, err := w.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(data); err != nil {
		return nil, "", err
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// extension is the usual file extension for an image content type.
func extension(contentType string) string {
	switch strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]) {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/webp":
		return ".webp"
	case "image/gif":
		return ".gif"
	case "image/bmp":
		return ".bmp"
	}
	return ""
}
