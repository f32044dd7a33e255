// Package mlflowserver starts a real MLflow tracking server for tests: MLflow
// 2.17.2 from ../shared/mlflow-server beside the repository (override with
// $PETBREED_MLFLOW_SERVER), on a free loopback port, with its store and
// artifacts in the test's temporary folder. The Debian packages it runs on are
// installed by scripts/deps.sh; the harness never installs anything.
package mlflowserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"petbreed/internal/testassets"
)

// Server is one running MLflow server.
type Server struct {
	URL      string // http://127.0.0.1:PORT, no trailing slash
	Backend  string // "sqlite" or "file"
	StateDir string // the server's store, artifacts and log

	dir  string // the mlflow-server folder (start.sh, stop.sh)
	port int

	mu  sync.Mutex
	pid int // the `mlflow server` process, leader of its process group; 0 when stopped
}

// Dir is the mlflow-server folder: $PETBREED_MLFLOW_SERVER, else
// ../shared/mlflow-server beside the repository. Without it the test is
// skipped, saying where it looked; CI always has it.
func Dir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("PETBREED_MLFLOW_SERVER"); d != "" {
		return d
	}
	d := filepath.Join(filepath.Dir(testassets.Root(tb)), "shared", "mlflow-server")
	if _, err := os.Stat(filepath.Join(d, "start.sh")); err != nil {
		tb.Skipf("MLflow server not found at %s", d)
	}
	return d
}

// Start starts a server with the given backend store ("sqlite" or "file")
// in a new temporary folder and stops it when the test ends.
func Start(tb testing.TB, backend string) *Server {
	tb.Helper()
	if backend != "sqlite" && backend != "file" {
		tb.Fatalf("mlflowserver: backend %q: want sqlite or file", backend)
	}
	s := &Server{Backend: backend, StateDir: tb.TempDir(), dir: Dir(tb)}
	port, err := freePort()
	if err != nil {
		tb.Fatalf("mlflowserver: %v", err)
	}
	s.port = port
	s.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	tb.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		tb.Fatalf("mlflowserver: %v", err)
	}
	return s
}

// Restart starts the server again on the same port and store, after Stop or
// Kill: what a client sees when a server comes back.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		tb.Fatalf("mlflowserver: restart: %v", err)
	}
}

// Stop stops the server gracefully (SIGTERM to its process group, SIGKILL
// after 10 s) and waits until its port is free. Stopping a stopped server
// does nothing.
func (s *Server) Stop() { s.signal(syscall.SIGTERM, 10*time.Second) }

// Kill kills the server at once (SIGKILL to its process group): a crash.
func (s *Server) Kill() { s.signal(syscall.SIGKILL, 0) }

// Log is the server's log so far (for a failing test's message).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.StateDir, "server-"+strconv.Itoa(s.port)+".log"))
	return string(b)
}

func (s *Server) start() error {
	cmd := exec.Command("bash", filepath.Join(s.dir, "start.sh"), strconv.Itoa(s.port), s.Backend)
	cmd.Env = append(os.Environ(), "STATE_DIR="+s.StateDir, "NO_INSTALL=1", "WAIT_S=120")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	pid := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PID "); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	s.mu.Lock()
	s.pid = pid
	s.mu.Unlock()
	if err != nil {
		s.Stop() // start.sh may leave a server that did not answer in time
		return fmt.Errorf("start.sh %d %s: %v\n%s%s\n(the Debian packages it needs are installed by scripts/deps.sh)",
			s.port, s.Backend, err, out, stderr.Bytes())
	}
	if pid == 0 {
		return fmt.Errorf("start.sh printed no PID:\n%s", out)
	}
	return nil
}

func (s *Server) signal(sig syscall.Signal, grace time.Duration) {
	s.mu.Lock()
	pid := s.pid
	s.pid = 0
	s.mu.Unlock()
	if pid == 0 {
		return
	}
	_ = syscall.Kill(-pid, sig) // start.sh runs the server under setsid: its pid is the group's
	deadline := time.Now().Add(grace)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	// The process is not our child (start.sh's), so it cannot be waited
	// for; wait until nothing in its group is left and the port is free.
	for i := 0; i < 200 && (groupAlive(pid) || listening(s.port)); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func groupAlive(pgid int) bool { return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) }

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Healthy reports whether the server answers its /health route.
func (s *Server) Healthy() bool {
	c := http.Client{Timeout: 2 * time.Second}
	r, err := c.Get(s.URL + "/health")
	if err != nil {
		return false
	}
	r.Body.Close()
	return r.StatusCode == http.StatusOK
}
