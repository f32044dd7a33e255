package mlflowserver

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
)

// StartAll starts one server per backend at the same time (a start waits
// seconds on Python's imports, so starting them side by side saves most of
// the second one's) and stops them when the test ends.
func StartAll(tb testing.TB, backends ...string) []*Server {
	tb.Helper()
	return StartAsync(tb, backends...)()
}

// StartAsync is StartAll in the background, for a test that has other work
// to do meanwhile: wait, called from the test's goroutine, returns the
// servers once they answer (or fails the test).
func StartAsync(tb testing.TB, backends ...string) (wait func() []*Server) {
	tb.Helper()
	out := make([]*Server, len(backends))
	for i, b := range backends {
		if b != "sqlite" && b != "file" {
			tb.Fatalf("mlflowserver: backend %q: want sqlite or file", b)
		}
		port, err := freePort()
		if err != nil {
			tb.Fatalf("mlflowserver: %v", err)
		}
		out[i] = &Server{Backend: b, StateDir: tb.TempDir(), dir: Dir(tb), port: port, URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	}
	errs := make([]error, len(out))
	var wg sync.WaitGroup
	// A test that ends while the servers start (a Fatal elsewhere) stops
	// them once they are up, before their folders are removed.
	tb.Cleanup(func() {
		wg.Wait()
		for _, s := range out {
			s.Stop()
		}
	})
	for i, s := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.start(); err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.Backend, err)
			}
		}()
	}
	return func() []*Server {
		tb.Helper()
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				tb.Fatalf("mlflowserver: %v", err)
			}
		}
		return out
	}
}
