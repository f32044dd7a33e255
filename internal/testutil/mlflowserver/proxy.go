package mlflowserver

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy is a loopback reverse proxy in front of a server, for what the real
// server does not do in a test: it counts the requests a client makes (by
// method and route), can require a bearer token (401 without one, 403 with
// a wrong one, as an authenticating gateway in front of MLflow answers),
// and can delay its answers (a slow server). It is closed when the test ends.
type Proxy struct {
	URL string

	mu     sync.Mutex
	token  string
	delay  time.Duration
	counts map[string]int // "METHOD route" -> requests
	total  int
}

// NewProxy starts a proxy to target (a server's URL).
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // stream artifact downloads as they come
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.Method+" "+route(r.URL.Path)]++
		p.total++
		token, delay := p.token, p.delay
		p.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			switch {
			case !ok:
				w.Header().Set("WWW-Authenticate", `Bearer realm="mlflow"`)
				http.Error(w, "You are not authenticated.", http.StatusUnauthorized)
				return
			case got != token:
				http.Error(w, "Permission denied.", http.StatusForbidden)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = srv.URL
	tb.Cleanup(srv.Close)
	return p
}

// route is a request path with the variable parts (artifact paths) cut:
// "/api/2.0/mlflow/runs/log-batch", "/api/2.0/mlflow-artifacts/artifacts/...".
func route(path string) string {
	const art = "/api/2.0/mlflow-artifacts/artifacts/"
	if strings.HasPrefix(path, art) {
		return art + "..."
	}
	return path
}

// RequireToken makes the proxy answer 401/403 unless the request carries
// "Authorization: Bearer token"; "" lets every request through.
func (p *Proxy) RequireToken(token string) {
	p.mu.Lock()
	p.token = token
	p.mu.Unlock()
}

// SetDelay delays every answer by d (0: none).
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Reset zeroes the counts.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.counts = map[string]int{}
	p.total = 0
	p.mu.Unlock()
}

// Total is the number of requests since the start or the last Reset.
func (p *Proxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Counts are the requests by "METHOD route", and a line per route sorted by
// count (for a benchmark's report).
func (p *Proxy) Counts() (map[string]int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.counts))
	keys := make([]string, 0, len(p.counts))
	for k, v := range p.counts {
		m[k] = v
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + " " + strconv.Itoa(m[k]) + "\n")
	}
	return m, b.String()
}
