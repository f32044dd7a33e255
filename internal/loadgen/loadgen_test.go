package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server starts an httptest server (on 127.0.0.1) with h.
func server(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	thousand := make([]int, 1000)
	for i := range thousand {
		thousand[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one p50", ms(7), 50, 7 * time.Millisecond},
		{"one p99", ms(7), 99, 7 * time.Millisecond},
		{"two p50", ms(1, 2), 50, 1 * time.Millisecond},
		{"two p51", ms(1, 2), 51, 2 * time.Millisecond},
		{"1..100 p50", ms(hundred...), 50, 50 * time.Millisecond},
		{"1..100 p90", ms(hundred...), 90, 90 * time.Millisecond},
		{"1..100 p99", ms(hundred...), 99, 99 * time.Millisecond},
		{"1..100 p100", ms(hundred...), 100, 100 * time.Millisecond},
		{"1..1000 p99.9", ms(thousand...), 99.9, 999 * time.Millisecond},
		{"1..10 p99", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p0 is the minimum", ms(3, 4, 5), 0, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	// Unsorted input; the mean of 1..10 ms is 5.5 ms.
	lats := []time.Duration{}
	for _, v := range []int{10, 3, 1, 7, 5, 9, 2, 8, 4, 6} {
		lats = append(lats, time.Duration(v)*time.Millisecond)
	}
	r := summarize(lats, 2*time.Second)
	want := Result{Elapsed: 2 * time.Second, Throughput: 5, P50: 5 * time.Millisecond, P90: 9 * time.Millisecond,
		P99: 10 * time.Millisecond, Max: 10 * time.Millisecond, Mean: 5500 * time.Microsecond}
	if fmt.Sprint(r) != fmt.Sprint(want) {
		t.Errorf("summarize = %+v\nwant        %+v", r, want)
	}
	if lats[0] != 10*time.Millisecond {
		t.Error("summarize sorted its input in place")
	}
	if r := summarize(nil, time.Second); r.Throughput != 0 || r.P50 != 0 || r.Max != 0 {
		t.Errorf("summarize(nil) = %+v", r)
	}
}

// TestRunLatencies drives a server whose delays are known: of every 10
// requests it receives, 9 take 2 ms and 1 takes 40 ms. Lower bounds are
// exact (a sleep is never shorter); upper bounds leave room for a loaded
// machine.
func TestRunLatencies(t *testing.T) {
	const fast, slow = 2 * time.Millisecond, 40 * time.Millisecond
	tests := []struct {
		name        string
		concurrency int
	}{
		{"c=1", 1},
		{"c=4", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			s := server(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if n.Add(1)%10 == 0 {
					time.Sleep(slow)
				} else {
					time.Sleep(fast)
				}
				w.Write([]byte(`{"predicted_breed":"Abyssinian"}`))
			})
			res, err := Run(context.Background(), Config{URL: s.URL, Body: []byte("img"), Concurrency: tt.concurrency, Requests: 100})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 100 || res.Errors != 0 || n.Load() != 100 {
				t.Fatalf("requests %d, errors %d, server saw %d; want 100, 0, 100 (%s)", res.Requests, res.Errors, n.Load(), res.FirstError)
			}
			slack := 25 * time.Millisecond
			check := func(name string, got, lo, hi time.Duration) {
				t.Helper()
				if got < lo || got > hi {
					t.Errorf("%s = %v, want in [%v, %v]", name, got, lo, hi)
				}
			}
			// 90 fast, 10 slow: p50 and p90 are fast requests, p99 and max slow ones.
			check("p50", res.P50, fast, fast+slack)
			check("p90", res.P90, fast, fast+slack)
			check("p99", res.P99, slow, slow+slack)
			check("max", res.Max, slow, slow+4*slack)
			check("mean", res.Mean, (90*fast+10*slow)/100, (90*fast+10*slow)/100+slack)
			if !(res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max) {
				t.Errorf("percentiles out of order: %+v", res)
			}
			if want := 100 / res.Elapsed.Seconds(); res.Throughput < want*0.999 || res.Throughput > want*1.001 {
				t.Errorf("throughput %.1f, want %.1f (100 requests in %v)", res.Throughput, want, res.Elapsed)
			}
			// A closed loop: elapsed is at least the server's total time over the workers.
			if min := (90*fast + 10*slow) / time.Duration(tt.concurrency); res.Elapsed < min {
				t.Errorf("elapsed %v < %v", res.Elapsed, min)
			}
		})
	}
}

func TestRunErrorsByStatus(t *testing.T) {
	tests := []struct {
		name       string
		handler    func(i int64, w http.ResponseWriter) // i counts from 1
		requests   int
		want       map[int]int
		firstError string
	}{
		{
			name: "every 4th overloaded",
			handler: func(i int64, w http.ResponseWriter) {
				if i%4 == 0 {
					http.Error(w, `{"error":"overloaded"}`, http.StatusServiceUnavailable)
					return
				}
				w.Write([]byte("{}"))
			},
			requests: 40, want: map[int]int{503: 10}, firstError: `503 Service Unavailable: {"error":"overloaded"}`,
		},
		{
			name: "503, 413 and 500",
			handler: func(i int64, w http.ResponseWriter) {
				switch i % 10 {
				case 1, 2, 3:
					w.WriteHeader(http.StatusServiceUnavailable)
				case 4:
					w.WriteHeader(http.StatusRequestEntityTooLarge)
				case 5:
					w.WriteHeader(http.StatusInternalServerError)
				default:
					w.Write([]byte("{}"))
				}
			},
			requests: 50, want: map[int]int{503: 15, 413: 5, 500: 5}, firstError: "",
		},
		{
			name: "redirects are not followed",
			handler: func(i int64, w http.ResponseWriter) {
				w.Header().Set("Location", "http://192.0.2.1/elsewhere")
				w.WriteHeader(http.StatusFound)
			},
			requests: 5, want: map[int]int{302: 5}, firstError: "302 Found",
		},
		{
			name: "connections dropped count as status 0",
			handler: func(i int64, w http.ResponseWriter) {
				if i%2 == 0 {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
					return
				}
				w.Write([]byte("{}"))
			},
			requests: 20, want: map[int]int{0: 10},
		},
		{
			name:     "all fine",
			handler:  func(i int64, w http.ResponseWriter) { w.Write([]byte("{}")) },
			requests: 30, want: map[int]int{},
		},
	}
	for _, tt := range tests {
		for _, c := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/c=%d", tt.name, c), func(t *testing.T) {
				var n atomic.Int64
				s := server(t, func(w http.ResponseWriter, r *http.Request) {
					io.Copy(io.Discard, r.Body)
					tt.handler(n.Add(1), w)
				})
				res, err := Run(context.Background(), Config{URL: s.URL, Body: []byte("img"), Concurrency: c, Requests: tt.requests})
				if err != nil {
					t.Fatal(err)
				}
				wantErrors := 0
				for _, v := range tt.want {
					wantErrors += v
				}
				if res.Requests != tt.requests || res.Errors != wantErrors || fmt.Sprint(res.ErrorsByStatus) != fmt.Sprint(tt.want) {
					t.Errorf("requests %d, errors %d %v; want %d, %d %v", res.Requests, res.Errors, res.ErrorsByStatus,
						tt.requests, wantErrors, tt.want)
				}
				if res.Successes() != tt.requests-wantErrors {
					t.Errorf("successes %d, want %d", res.Successes(), tt.requests-wantErrors)
				}
				if (wantErrors == 0) != (res.FirstError == "") {
					t.Errorf("first error %q with %d errors", res.FirstError, wantErrors)
				}
				if c == 1 && tt.firstError != "" && res.FirstError != tt.firstError {
					t.Errorf("first error %q, want %q", res.FirstError, tt.firstError)
				}
				if want := float64(res.Successes()) / res.Elapsed.Seconds(); res.Throughput < want*0.999 || res.Throughput > want*1.001 {
					t.Errorf("throughput %.1f, want successes/elapsed = %.1f", res.Throughput, want)
				}
			})
		}
	}
}

func TestRunLimits(t *testing.T) {
	tests := []struct {
		name        string
		requests    int
		duration    time.Duration
		warmup      int
		wantN       int           // exact measured requests, when > 0
		minElapsed  time.Duration // at least this long
		maxElapsed  time.Duration // and at most this long
		concurrency int
	}{
		{name: "requests", requests: 25, concurrency: 4, wantN: 25, maxElapsed: 2 * time.Second},
		{name: "requests below concurrency", requests: 3, concurrency: 8, wantN: 3, maxElapsed: 2 * time.Second},
		{name: "requests after warm-up", requests: 10, warmup: 7, concurrency: 2, wantN: 10, maxElapsed: 2 * time.Second},
		{name: "duration", duration: 300 * time.Millisecond, concurrency: 4, minElapsed: 300 * time.Millisecond, maxElapsed: 1500 * time.Millisecond},
		{name: "both, duration first", requests: 1 << 30, duration: 200 * time.Millisecond, concurrency: 2, minElapsed: 200 * time.Millisecond, maxElapsed: 1500 * time.Millisecond},
		{name: "both, requests first", requests: 12, duration: time.Hour, concurrency: 3, wantN: 12, maxElapsed: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			s := server(t, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				n.Add(1)
				time.Sleep(2 * time.Millisecond)
			})
			start := time.Now()
			res, err := Run(context.Background(), Config{URL: s.URL, Body: []byte("x"), Concurrency: tt.concurrency,
				Requests: tt.requests, Duration: tt.duration, Warmup: tt.warmup})
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 {
				t.Fatalf("errors: %v %s", res.ErrorsByStatus, res.FirstError)
			}
			if tt.wantN > 0 && res.Requests != tt.wantN {
				t.Errorf("measured %d requests, want %d", res.Requests, tt.wantN)
			}
			if res.Requests == 0 {
				t.Error("no request measured")
			}
			if got, want := n.Load(), int64(res.Requests+tt.warmup); got != want {
				t.Errorf("server saw %d requests, want %d (measured + warm-up)", got, want)
			}
			if res.Elapsed < tt.minElapsed || took > tt.maxElapsed {
				t.Errorf("elapsed %v (Run took %v), want in [%v, %v]", res.Elapsed, took, tt.minElapsed, tt.maxElapsed)
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(5 * time.Millisecond)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Config{URL: s.URL, Concurrency: 2, Duration: time.Hour})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v after its context ended", took)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Errorf("partial result: %d requests, %d errors (%s); want some, none cut short counted", res.Requests, res.Errors, res.FirstError)
	}
}

func TestRunTimeout(t *testing.T) {
	release := make(chan struct{})
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	res, err := Run(context.Background(), Config{URL: s.URL, Concurrency: 2, Requests: 4, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 4 || res.ErrorsByStatus[0] != 4 || !strings.Contains(res.FirstError, "Timeout") {
		t.Errorf("errors %d %v %q; want 4 timeouts under status 0", res.Errors, res.ErrorsByStatus, res.FirstError)
	}
}

func TestRunBody(t *testing.T) {
	// Not a whole JPEG, but sniffed as one; and bytes that a text mangling would change.
	img := append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\r\n--boundary\r\n"), bytes.Repeat([]byte{0, 0xff, '\n'}, 5000)...)
	tests := []struct {
		name      string
		cfg       Config
		wantCT    string // of the file: the request's, or the part's
		wantName  string // multipart file name
		multipart bool
	}{
		{name: "raw, content type given", cfg: Config{ContentType: "image/jpeg"}, wantCT: "image/jpeg"},
		{name: "raw, content type sniffed", cfg: Config{}, wantCT: "image/jpeg"},
		{name: "multipart", cfg: Config{Multipart: true, ContentType: "image/jpeg", Filename: "Abyssinian_105.jpg"},
			wantCT: "image/jpeg", wantName: "Abyssinian_105.jpg", multipart: true},
		{name: "multipart, default name", cfg: Config{Multipart: true}, wantCT: "image/jpeg", wantName: "image.jpg", multipart: true},
		{name: "multipart, quotes in name", cfg: Config{Multipart: true, Filename: `a "b".jpg`}, wantCT: "image/jpeg",
			wantName: `a "b".jpg`, multipart: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := server(t, func(w http.ResponseWriter, r *http.Request) {
				fail := func(format string, args ...any) {
					http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
				}
				if r.Method != http.MethodPost {
					fail("method %s", r.Method)
					return
				}
				var got []byte
				var ct, name string
				if tt.multipart {
					f, h, err := r.FormFile("file")
					if err != nil {
						fail("FormFile: %v (Content-Type %q)", err, r.Header.Get("Content-Type"))
						return
					}
					defer f.Close()
					got, _ = io.ReadAll(f)
					ct, name = h.Header.Get("Content-Type"), h.Filename
					if len(r.MultipartForm.File) != 1 || len(r.MultipartForm.Value) != 0 {
						fail("form has %d files and %d values", len(r.MultipartForm.File), len(r.MultipartForm.Value))
						return
					}
				} else {
					got, _ = io.ReadAll(r.Body)
					ct = r.Header.Get("Content-Type")
					if r.ContentLength != int64(len(img)) {
						fail("Content-Length %d, want %d", r.ContentLength, len(img))
						return
					}
				}
				switch {
				case !bytes.Equal(got, img):
					fail("body of %d bytes differs from the image's %d", len(got), len(img))
				case ct != tt.wantCT:
					fail("content type %q, want %q", ct, tt.wantCT)
				case name != tt.wantName:
					fail("file name %q, want %q", name, tt.wantName)
				case r.Header.Get("Accept-Encoding") != "":
					fail("Accept-Encoding %q: compression should be off", r.Header.Get("Accept-Encoding"))
				}
			})
			cfg := tt.cfg
			cfg.URL, cfg.Body, cfg.Concurrency, cfg.Requests = s.URL, img, 2, 6
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.Requests != 6 {
				t.Errorf("%d requests, %d errors: %s", res.Requests, res.Errors, res.FirstError)
			}
		})
	}
}

// TestRunKeepAlive checks that each worker keeps one connection.
func TestRunKeepAlive(t *testing.T) {
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write(bytes.Repeat([]byte("x"), 10000)) // a body that must be read before the connection is reused
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	defer s.Close()
	res, err := Run(context.Background(), Config{URL: s.URL, Body: []byte("x"), Concurrency: 8, Requests: 400, Warmup: 16})
	if err != nil || res.Errors != 0 {
		t.Fatalf("%v %s", err, res.FirstError)
	}
	if got := conns.Load(); got > 8 {
		t.Errorf("%d connections for 8 workers: keep-alive is not working", got)
	}
}

func TestRunInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"not loopback", Config{URL: "http://192.0.2.1/api/predict", Concurrency: 1, Requests: 1}, "not loopback"},
		{"no concurrency", Config{URL: "http://127.0.0.1:1/", Requests: 1}, "concurrency"},
		{"unbounded", Config{URL: "http://127.0.0.1:1/", Concurrency: 1}, "bounded"},
		{"negative", Config{URL: "http://127.0.0.1:1/", Concurrency: 1, Requests: -1}, "negative"},
		{"no scheme", Config{URL: "127.0.0.1:8080/api/predict", Concurrency: 1, Requests: 1}, "http://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/api/predict", true},
		{"http://127.0.0.1/", true},
		{"https://127.0.0.1:8443/", true},
		{"http://127.255.10.3:80/x", true},
		{"http://localhost:8080/api/health", true},
		{"http://LocalHost./", true},
		{"http://[::1]:8080/api/predict", true},
		{"http://[::ffff:127.0.0.1]:8080/", true},
		{"http://192.0.2.1:8080/api/predict", false},
		{"http://10.0.0.1/", false},
		{"http://example.com/", false},
		{"http://localhost.example.com/", false},
		{"http://127.0.0.1.nip.io/", false},
		{"http://0.0.0.0:8080/", false},
		{"http://[::]:8080/", false},
		{"http://[fe80::1%25lo]:8080/", false},
		{"http://[::1%25lo]:8080/", false},
		{"http://127.1/", false},
		{"http://2130706433/", false},
		{"http://0x7f.0.0.1/", false},
		{"http://127.0.0.1@example.com/", false},
		{"ftp://127.0.0.1/", false},
		{"127.0.0.1:8080/api/predict", false},
		{"http:///path", false},
		{"", false},
		{"http://[::1/", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckLoopback(tt.url)
			if (err == nil) != tt.ok {
				t.Errorf("CheckLoopback(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "is not loopback") && !errors.Is(err, ErrNotLoopback) {
				t.Errorf("error %v does not wrap ErrNotLoopback", err)
			}
		})
	}
}

func TestLoopbackControl(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:80", true},
		{"127.9.9.9:8080", true},
		{"[::1]:80", true},
		{"[::ffff:127.0.0.1]:80", true},
		{"192.0.2.1:80", false},
		{"[2001:db8::1]:80", false},
		{"0.0.0.0:80", false},
		{"nonsense", false},
	}
	for _, tt := range tests {
		if err := loopbackControl("tcp", tt.addr, nil); (err == nil) != tt.ok {
			t.Errorf("loopbackControl(%q) = %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
}

func TestWaitReady(t *testing.T) {
	// A listener that was closed: connection refused until the deadline.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String() + "/api/health"
	l.Close()

	tests := []struct {
		name      string
		readyIn   time.Duration // healthy after this long; < 0 never
		url       string        // instead of a test server's
		timeout   time.Duration
		wantErr   string
		wantAtLst time.Duration
	}{
		{name: "healthy at once", readyIn: 0, timeout: 5 * time.Second},
		{name: "healthy after 300ms", readyIn: 300 * time.Millisecond, timeout: 5 * time.Second, wantAtLst: 300 * time.Millisecond},
		{name: "never healthy", readyIn: -1, timeout: 300 * time.Millisecond, wantErr: "status 503"},
		{name: "nothing listening", url: closedURL, timeout: 300 * time.Millisecond, wantErr: "refused"},
		{name: "not loopback", url: "http://192.0.2.1/api/health", timeout: time.Second, wantErr: "not loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				start := time.Now()
				s := server(t, func(w http.ResponseWriter, r *http.Request) {
					if tt.readyIn < 0 || time.Since(start) < tt.readyIn {
						http.Error(w, `{"status":"loading"}`, http.StatusServiceUnavailable)
						return
					}
					w.Write([]byte(`{"status":"healthy"}`))
				})
				url = s.URL + "/api/health"
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			begin := time.Now()
			d, err := WaitReady(ctx, url, 10*time.Millisecond)
			took := time.Since(begin)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				if took > tt.timeout+time.Second {
					t.Errorf("gave up after %v, timeout %v", took, tt.timeout)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d < tt.wantAtLst || d > took || d > tt.wantAtLst+time.Second {
				t.Errorf("ready after %v (call took %v), want about %v", d, took, tt.wantAtLst)
			}
		})
	}
}

func TestWaitReadyCause(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel(errors.New("server exited"))
	}()
	_, err := WaitReady(ctx, s.URL, 5*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "server exited") {
		t.Errorf("err = %v, want the cancel cause", err)
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    ProcMem
		wantErr bool
	}{
		{"normal", "Name:\tpetbreed\nVmPeak:\t  900000 kB\nVmHWM:\t  120000 kB\nVmRSS:\t  100000 kB\nThreads:\t9\n",
			ProcMem{RSS: 100000 << 10, Peak: 120000 << 10}, false},
		{"zombie", "Name:\tpetbreed\nState:\tZ (zombie)\nThreads:\t1\n", ProcMem{}, true},
		{"garbled", "VmHWM:\t 12 MB\nVmRSS:\t 1 kB\n", ProcMem{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus(strings.NewReader(tt.status))
			if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Errorf("parseStatus = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (pet breed) (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 9 0 100 1000000 2500 0\n"
	state, cpu, err := parseStat([]byte(line))
	if err != nil || state != "S" || cpu != 3*time.Second {
		t.Errorf("parseStat = %q, %v, %v; want S, 3s", state, cpu, err)
	}
	if _, _, err := parseStat([]byte("4242 (x) S 1")); err == nil {
		t.Error("a short stat line parsed")
	}
}

func TestProcessSelf(t *testing.T) {
	pid := os.Getpid()
	m, err := ReadProcMem(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS < 1<<20 || m.Peak < m.RSS {
		t.Errorf("own memory %+v: want RSS over 1 MiB and peak >= RSS", m)
	}
	if rss, err := ProcessRSS(pid); err != nil || rss <= 0 {
		t.Errorf("ProcessRSS = %d, %v", rss, err)
	}
	if peak, err := ProcessPeakRSS(pid); err != nil || peak < m.RSS {
		t.Errorf("ProcessPeakRSS = %d, %v", peak, err)
	}
	if _, err := ProcessCPU(pid); err != nil {
		t.Error(err)
	}
	if !ProcessAlive(pid) {
		t.Error("this process is not alive")
	}
	s := StartRSSSampler(pid, 5*time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	if maxRSS, n := s.Stop(); maxRSS <= 0 || n < 2 {
		t.Errorf("sampler: max %d over %d samples", maxRSS, n)
	}
	// A pid that cannot exist (above the kernel's pid_max limit of 2^22).
	if _, err := ProcessRSS(1 << 30); err == nil {
		t.Error("ProcessRSS of a missing process succeeded")
	}
	if ProcessAlive(1 << 30) {
		t.Error("a missing process is alive")
	}
}

// BenchmarkGenerator measures the generator's own overhead against a
// handler that does nothing; the server shares the machine's cores, so the
// figure is a lower bound of what the generator can drive.
func BenchmarkGenerator(b *testing.B) {
	body := bytes.Repeat([]byte{0xAB}, 40<<10) // a typical q90 500x375 JPEG is about 40 KB
	s := server(b, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"predicted_breed":"Abyssinian","confidence":0.99}`))
	})
	for _, c := range []int{1, 32} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			b.ReportAllocs()
			res, err := Run(context.Background(), Config{URL: s.URL, Body: body, ContentType: "image/jpeg",
				Concurrency: c, Requests: b.N, Warmup: c})
			if err != nil || res.Errors != 0 {
				b.Fatalf("%v %s", err, res.FirstError)
			}
			b.ReportMetric(res.Throughput, "req/s")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
		})
	}
}
