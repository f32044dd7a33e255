package pull

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// endless answers 200 without a Content-Length and streams bytes until the
// client goes away (bounded: at most limit bytes, so a broken client cannot
// make the test run forever); sent counts what was written.
func endless(sent *atomic.Int64, limit int64) func(int, http.ResponseWriter, *http.Request, []byte) bool {
	return func(_ int, w http.ResponseWriter, r *http.Request, _ []byte) bool {
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 32<<10)
		for sent.Load() < limit && r.Context().Err() == nil {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return true
			}
			w.(http.Flusher).Flush()
		}
		return true
	}
}

// TestDownloadEndlessStream: a body without Content-Length that does not
// end is stopped at the first byte beyond the expected size (or the cap),
// with an error naming the file and both sizes, and no file left behind.
func TestDownloadEndlessStream(t *testing.T) {
	const bound = 64 << 20
	for _, c := range []struct {
		what   string
		size   int64 // pinned
		max    int64 // Options.MaxSize
		want   int64
		capped bool
	}{
		{"pinned size", 100_000, 0, 100_000, false},
		{"pinned size beats the cap", 100_000, 10, 100_000, false},
		{"unknown size, the cap", 0, 70_001, 70_001, true},
	} {
		t.Run(c.what, func(t *testing.T) {
			s, a, _ := fixture(t)
			a.Size = c.size
			var sent atomic.Int64
			s.setBehave(endless(&sent, bound))
			dir := t.TempDir()
			start := time.Now()
			_, err := Download(context.Background(), a, dir, fast(Options{MaxSize: c.max}))
			var se *SizeError
			if !errors.As(err, &se) || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want a SizeError matching ErrTooLarge", err)
			}
			if se.Got != c.want+1 || se.Want != c.want || se.Announced || se.Cap != c.capped || se.Name != "data.bin" {
				t.Errorf("SizeError %+v, want %d bytes received of %d", *se, c.want+1, c.want)
			}
			msg := err.Error()
			for _, part := range []string{"data.bin", strconv.FormatInt(c.want, 10), strconv.FormatInt(c.want+1, 10)} {
				if !strings.Contains(msg, part) {
					t.Errorf("error %q does not name %q", msg, part)
				}
			}
			assertOneTryNoFile(t, s, dir, a)
			// The server was cut off soon after: far less than the bound.
			deadline := time.Now().Add(5 * time.Second)
			for sent.Load() < bound && time.Now().Before(deadline) {
				prev := sent.Load()
				time.Sleep(50 * time.Millisecond)
				if sent.Load() == prev {
					break
				}
			}
			if n := sent.Load(); n >= bound {
				t.Errorf("the server streamed %d bytes: the client did not hang up", n)
			}
			t.Logf("stopped after %v, server wrote %d bytes", time.Since(start).Round(time.Millisecond), sent.Load())
		})
	}
}

// TestDownloadAnnouncedTooLarge: a Content-Length over the expected size
// (or the cap) is refused before a byte is written.
func TestDownloadAnnouncedTooLarge(t *testing.T) {
	for _, c := range []struct {
		what      string
		size, max int64
		announce  int64
		want      int64
		capped    bool
	}{
		{"over the pinned size", 100_000, 0, 1 << 40, 100_000, false},
		{"one byte over", 100_000, 0, 100_001, 100_000, false},
		{"over the cap", 0, 50_000, 50_001, 50_000, true},
	} {
		t.Run(c.what, func(t *testing.T) {
			s, a, _ := fixture(t)
			a.Size = c.size
			var wrote atomic.Int64
			s.setBehave(func(_ int, w http.ResponseWriter, r *http.Request, body []byte) bool {
				w.Header().Set("Content-Length", fmt.Sprint(c.announce))
				w.WriteHeader(http.StatusOK)
				n, _ := w.Write(body[:1000])
				wrote.Add(int64(n))
				return true // the connection is cut short of the announced length
			})
			dir := t.TempDir()
			_, err := Download(context.Background(), a, dir, fast(Options{MaxSize: c.max}))
			var se *SizeError
			if !errors.As(err, &se) || !se.Announced || se.Got != c.announce || se.Want != c.want || se.Cap != c.capped {
				t.Fatalf("err = %v (%+v), want an announced SizeError of %d for %d", err, se, c.announce, c.want)
			}
			if !strings.Contains(err.Error(), "nothing was downloaded") || !strings.Contains(err.Error(), "data.bin") {
				t.Errorf("error %q", err)
			}
			assertOneTryNoFile(t, s, dir, a)
		})
	}
}

// TestDownloadUnderTheCap: a file of unknown size within the cap is fetched.
func TestDownloadUnderTheCap(t *testing.T) {
	_, a, body := fixture(t)
	path, err := Download(context.Background(), a, t.TempDir(), fast(Options{MaxSize: payloadSize}))
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, body)
}
