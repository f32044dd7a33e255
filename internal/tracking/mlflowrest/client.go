// Package mlflowrest is a tracking backend over a real MLflow tracking
// server's REST API (MLflow 2.x: /api/2.0/mlflow/... and the artifact proxy
// /api/2.0/mlflow-artifacts/...). *Client implements tracking.Backend: the
// pipeline's writes (experiments, runs, batched params, metrics and tags,
// artifacts streamed through the proxy, the registry), the page's and the
// CLI's reads, and the resolution of models:/ and runs:/ URIs, which
// downloads the model into a local cache keyed by version and checked by
// checksum.
//
// Transport follows MLflow's own clients: MLFLOW_TRACKING_USERNAME and
// MLFLOW_TRACKING_PASSWORD (basic) or MLFLOW_TRACKING_TOKEN (bearer),
// MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH,
// MLFLOW_HTTP_REQUEST_TIMEOUT, MLFLOW_HTTP_REQUEST_MAX_RETRIES and
// MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR / _JITTER. Calls are retried with
// exponential backoff on 429, 5xx and connection errors only when a repeat
// cannot duplicate anything; see retry.go.
package mlflowrest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"petbreed/internal/tracking"
)

// Defaults, as MLflow's client has them (mlflow/environment_variables.py),
// except the cap on an answer's size, which MLflow does not have.
const (
	DefaultTimeout       = 120 * time.Second
	DefaultMaxRetries    = 5
	DefaultBackoffFactor = 2 * time.Second
	DefaultBackoffJitter = 1 * time.Second
	DefaultMaxBackoff    = 120 * time.Second
	// DefaultMaxResponse caps a JSON answer (a runs/search page, a metric
	// history page); artifact downloads are streamed and not capped.
	DefaultMaxResponse = 64 << 20
)

// Options configure a Client. The zero value of a field means its default.
type Options struct {
	// Token is sent as "Authorization: Bearer"; Username and Password as
	// basic auth, which wins when both are set (as in MLflow).
	Token, Username, Password string
	InsecureTLS               bool   // do not verify the server's certificate
	CACertFile                string // PEM bundle to verify the server with
	// Timeout bounds each JSON call, and each wait for an artifact
	// transfer's next bytes.
	Timeout time.Duration
	// MaxRetries is how many times a failed call is repeated (-1: never).
	MaxRetries int
	// BackoffFactor is the first wait before a retry; each next one
	// doubles, up to MaxBackoff, plus a random jitter up to BackoffJitter.
	BackoffFactor, BackoffJitter, MaxBackoff time.Duration
	// MaxResponse caps one JSON answer (PETBREED_MLFLOW_MAX_RESPONSE_BYTES,
	// default DefaultMaxResponse); artifact downloads are not capped.
	MaxResponse int64
	// CacheDir is where resolved models are downloaded (default
	// DefaultCacheDir()); CacheMaxBytes bounds it, the least recently used
	// models removed after a download (evict.go; 0: DefaultCacheMaxBytes,
	// PETBREED_MODEL_CACHE_MAX_BYTES; negative: no bound).
	CacheDir      string
	CacheMaxBytes int64
	// HTTPClient replaces the transport (tests); its Timeout should be 0.
	HTTPClient *http.Client
}

// OptionsFromEnv reads the environment variables MLflow's clients read.
func OptionsFromEnv() (Options, error) {
	o := Options{
		Token:      os.Getenv("MLFLOW_TRACKING_TOKEN"),
		Username:   os.Getenv("MLFLOW_TRACKING_USERNAME"),
		Password:   os.Getenv("MLFLOW_TRACKING_PASSWORD"),
		CACertFile: os.Getenv("MLFLOW_TRACKING_SERVER_CERT_PATH"),
	}
	if v := os.Getenv("MLFLOW_TRACKING_INSECURE_TLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("MLFLOW_TRACKING_INSECURE_TLS=%q: want true or false", v)
		}
		o.InsecureTLS = b
	}
	secs := func(name string, dst *time.Duration) error {
		v := os.Getenv(name)
		if v == "" {
			return nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 86400 {
			return fmt.Errorf("%s=%q: want seconds (0 to 86400)", name, v)
		}
		*dst = time.Duration(f * float64(time.Second))
		if *dst == 0 {
			*dst = -1 // explicitly none
		}
		return nil
	}
	for name, dst := range map[string]*time.Duration{
		"MLFLOW_HTTP_REQUEST_TIMEOUT":        &o.Timeout,
		"MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": &o.BackoffFactor,
		"MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": &o.BackoffJitter,
	} {
		if err := secs(name, dst); err != nil {
			return o, err
		}
	}
	if o.Timeout < 0 {
		return o, fmt.Errorf("MLFLOW_HTTP_REQUEST_TIMEOUT must be more than 0")
	}
	if v := os.Getenv("PETBREED_MLFLOW_MAX_RESPONSE_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1<<10 || n > 1<<34 {
			return o, fmt.Errorf("PETBREED_MLFLOW_MAX_RESPONSE_BYTES=%q: want bytes, 1024 to 2^34", v)
		}
		o.MaxResponse = n
	}
	if v := os.Getenv("PETBREED_MODEL_CACHE_MAX_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return o, fmt.Errorf("PETBREED_MODEL_CACHE_MAX_BYTES=%q: want bytes (0: no bound)", v)
		}
		o.CacheMaxBytes = n
		if n == 0 {
			o.CacheMaxBytes = -1
		}
	}
	if v := os.Getenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return o, fmt.Errorf("MLFLOW_HTTP_REQUEST_MAX_RETRIES=%q: want 0 to 100", v)
		}
		o.MaxRetries = n
		if n == 0 {
			o.MaxRetries = -1
		}
	}
	return o, nil
}

// Client is an MLflow tracking server's REST API as a tracking.Backend. It
// is safe for concurrent use.
type Client struct {
	uri  string   // as given, for messages and URI()
	base *url.URL // scheme, host and path prefix
	hc   *http.Client
	opt  Options

	// reached is set once any call got an HTTP answer: before that, a
	// refused connection is a server that is not there (fail at once, naming
	// it); after, a server that went away (retried with backoff).
	reached atomic.Bool
	calls   atomic.Int64 // HTTP requests sent, retries included

	artMu     sync.Mutex
	artifacts map[string]string // run id -> artifact_uri (immutable)
}

// New makes a client for the server at uri (http:// or https://, with an
// optional path prefix). It does not contact the server.
func New(uri string, opt Options) (*Client, error) {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracking URI %q: want http://host:port or https://host:port", uri)
	}
	if u.User != nil {
		return nil, fmt.Errorf("tracking URI %q: put credentials in MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN, not the URI", redact(u))
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if opt.Timeout == 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = DefaultMaxRetries
	} else if opt.MaxRetries < 0 {
		opt.MaxRetries = 0
	}
	if opt.BackoffFactor == 0 {
		opt.BackoffFactor = DefaultBackoffFactor
	} else if opt.BackoffFactor < 0 {
		opt.BackoffFactor = 0
	}
	if opt.BackoffJitter == 0 {
		opt.BackoffJitter = DefaultBackoffJitter
	} else if opt.BackoffJitter < 0 {
		opt.BackoffJitter = 0
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = DefaultMaxBackoff
	}
	if opt.MaxResponse <= 0 {
		opt.MaxResponse = DefaultMaxResponse
	}
	if opt.CacheDir == "" {
		opt.CacheDir = DefaultCacheDir()
	}
	if opt.CacheMaxBytes == 0 {
		opt.CacheMaxBytes = DefaultCacheMaxBytes
	}
	hc := opt.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = opt.Timeout
		tr.DialContext = (&net.Dialer{Timeout: min(opt.Timeout, 30*time.Second), KeepAlive: 30 * time.Second}).DialContext
		if opt.InsecureTLS || opt.CACertFile != "" {
			cfg := &tls.Config{InsecureSkipVerify: opt.InsecureTLS} //nolint:gosec // MLFLOW_TRACKING_INSECURE_TLS asks for it
			if opt.CACertFile != "" {
				pem, err := os.ReadFile(opt.CACertFile)
				if err != nil {
					return nil, fmt.Errorf("MLFLOW_TRACKING_SERVER_CERT_PATH: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("MLFLOW_TRACKING_SERVER_CERT_PATH %s: no PEM certificate in it", opt.CACertFile)
				}
				cfg.RootCAs = pool
			}
			tr.TLSClientConfig = cfg
		}
		hc = &http.Client{Transport: tr}
	}
	return &Client{uri: strings.TrimRight(uri, "/"), base: u, hc: hc, opt: opt, artifacts: map[string]string{}}, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// URI is the server's URI, as given (tracking.Tracker).
func (c *Client) URI() string { return c.uri }

// Calls is the number of HTTP requests sent so far, retries included.
func (c *Client) Calls() int64 { return c.calls.Load() }

// APIError is an answer of the server other than success: its HTTP status
// and, when the server sent them, MLflow's error_code and message.
type APIError struct {
	Server  string // the server's URI
	Method  string
	Path    string // e.g. runs/create
	Status  int
	Code    string // e.g. RESOURCE_DOES_NOT_EXIST ("" when the body was not MLflow's)
	Message string
}

func (e *APIError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("mlflow server %s: %s %s: HTTP %d %s: %s", e.Server, e.Method, e.Path, e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("mlflow server %s: %s %s: HTTP %d: %s", e.Server, e.Method, e.Path, e.Status, e.Message)
}

// Unwrap makes a missing resource match tracking.ErrNotFound.
func (e *APIError) Unwrap() error {
	if e.Code == "RESOURCE_DOES_NOT_EXIST" || (e.Code == "" && e.Status == http.StatusNotFound) {
		return tracking.ErrNotFound
	}
	return nil
}

// IsCode reports whether err is an APIError with MLflow's error code code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// request is one REST call.
type request struct {
	method string
	path   string // below the base, e.g. "/api/2.0/mlflow/runs/create"
	query  url.Values
	body   any // JSON body (POST); nil for none
	// upload, when set, gives a fresh raw body for each attempt (PUT).
	upload func() (io.ReadCloser, int64, error)
	policy policy
}

// endpoint is the URL of path (already escaped: API routes are plain,
// artifact paths go through escapePath) below the server's base.
func (c *Client) endpoint(path string, q url.Values) string {
	s := c.base.Scheme + "://" + c.base.Host + c.base.EscapedPath() + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// name is the short form of a path for messages: runs/create.
func name(path string) string {
	for _, p := range []string{"/api/2.0/mlflow/", "/api/2.0/"} {
		if s, ok := strings.CutPrefix(path, p); ok {
			return s
		}
	}
	return path
}

// send makes one attempt. It returns the answer of a 2xx status, or an
// error classified by what a retry may do (see retry.go).
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	var body io.Reader
	var size int64 = -1
	var closer io.Closer
	if r.upload != nil {
		rc, n, err := r.upload()
		if err != nil {
			return nil, err // a local file error: not retried
		}
		body, size, closer = rc, n, rc
	} else if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", name(r.path), err)
		}
		body, size = bytes.NewReader(b), int64(len(b))
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.endpoint(r.path, r.query), body)
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, err
	}
	if size >= 0 {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	} else if r.upload != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	req.Header.Set("User-Agent", "petbreed")
	switch {
	case c.opt.Username != "" && c.opt.Password != "":
		req.SetBasicAuth(c.opt.Username, c.opt.Password)
	case c.opt.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.opt.Token)
	}
	c.calls.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &transportErr{server: c.uri, op: r.method + " " + name(r.path), err: err, sent: !isDialError(err)}
	}
	c.reached.Store(true)
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	ae := &APIError{Server: c.uri, Method: r.method, Path: name(r.path), Status: resp.StatusCode}
	var mb struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &mb) == nil && mb.Code != "" {
		ae.Code, ae.Message = mb.Code, mb.Message
	} else {
		ae.Message = summarize(b, resp)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		ae.Message += " (check MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
	}
	return nil, &statusErr{api: ae, retryAfter: retryAfter(resp)}
}

// summarize describes a non-MLflow error body in one line.
func summarize(b []byte, resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	if strings.Contains(ct, "html") || len(b) == 0 {
		if resp.StatusCode == http.StatusNotFound {
			return "no such route (is this an MLflow 2.x tracking server?)"
		}
		return http.StatusText(resp.StatusCode)
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// call sends a JSON request and decodes the answer into out (nil: ignored),
// retrying as r.policy allows.
func (c *Client) call(r *request, out any) error {
	return c.retry(r, func(ctx context.Context) error {
		resp, err := c.send(ctx, r)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, c.opt.MaxResponse+1))
		if err != nil {
			return &transportErr{server: c.uri, op: r.method + " " + name(r.path), err: err, sent: true}
		}
		if int64(len(b)) > c.opt.MaxResponse {
			return fmt.Errorf("mlflow server %s: %s: answer larger than %d bytes", c.uri, name(r.path), c.opt.MaxResponse)
		}
		if out == nil || len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		if err := json.Unmarshal(b, out); err != nil {
			// A torn or foreign answer: the call may have been done.
			return &transportErr{server: c.uri, op: r.method + " " + name(r.path), err: fmt.Errorf("bad JSON answer: %w", err), sent: true}
		}
		return nil
	})
}

func (c *Client) get(path string, q url.Values, out any) error {
	return c.call(&request{method: http.MethodGet, path: path, query: q, policy: idempotent}, out)
}

func (c *Client) post(path string, body, out any, p policy) error {
	return c.call(&request{method: http.MethodPost, path: path, body: body, policy: p}, out)
}

const (
	apiPrefix      = "/api/2.0/mlflow/"
	artifactPrefix = "/api/2.0/mlflow-artifacts/artifacts/"
)
