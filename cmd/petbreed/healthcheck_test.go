package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/health" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer ok.Close()
	loading := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"status":"loading"}`, http.StatusServiceUnavailable)
	}))
	defer loading.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	defer close(release)
	// A port nothing listens on: bound, then closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	okPort := ok.Listener.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name    string
		env     string // PETBREED_ADDR
		args    []string
		code    int
		errWant string
	}{
		{"healthy", "", []string{"--url", ok.URL + "/api/health"}, 0, ""},
		{"from PETBREED_ADDR, wildcard host", "0.0.0.0:" + strconv.Itoa(okPort), nil, 0, ""},
		{"from PETBREED_ADDR, empty host", ":" + strconv.Itoa(okPort), nil, 0, ""},
		{"not 200", "", []string{"--url", loading.URL + "/api/health"}, 1, "503"},
		{"wrong path", "", []string{"--url", ok.URL + "/nothing"}, 1, "404"},
		{"nothing listening", "", []string{"--url", "http://" + closed + "/api/health"}, 1, "refused"},
		{"timeout", "", []string{"--url", slow.URL, "--timeout", "200ms"}, 1, "deadline"},
		{"bad url", "", []string{"--url", "localhost:8000"}, 2, "want an http"},
		{"bad PETBREED_ADDR", "8080", nil, 2, "PETBREED_ADDR"},
		{"bad timeout", "", []string{"--url", ok.URL, "--timeout", "0s"}, 2, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PETBREED_ADDR", tc.env)
			start := time.Now()
			code, _, errs := cli(t, append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errs, tc.errWant) {
				t.Errorf("exit %d, want %d; stderr %q, want it to contain %q", code, tc.code, errs, tc.errWant)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
