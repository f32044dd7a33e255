// Package testutil holds the helpers several packages' tests share: a
// buffer safe to write from a child process's or a goroutine's output while
// the test reads it, the petbreed binary built once per test process, and
// a real `petbreed serve` started on a free loopback port.
package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"petbreed/internal/testassets"
)

// Buffer is a bytes.Buffer safe for concurrent Write and String: the
// stderr of a process or of an in-process command that a test polls.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// Petbreed builds ./cmd/petbreed of the repository once per test process and
// returns the binary's path. Call Cleanup from TestMain to remove it.
func Petbreed(tb testing.TB) string {
	tb.Helper()
	root := testassets.Root(tb)
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "petbreed-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "petbreed")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/petbreed")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build petbreed: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		tb.Fatal(binErr)
	}
	return binPath
}

// Cleanup removes what Petbreed built; call it from TestMain after m.Run.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

var listeningRe = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// WaitReady polls the JSON log of a `petbreed serve --log-format json`
// (logs returns it so far) until it says where it listens and that it is
// ready, and returns its http:// URL. It fails the test if exited is closed
// first or after timeout.
func WaitReady(tb testing.TB, logs func() string, exited <-chan struct{}, timeout time.Duration) string {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		log := logs()
		if m := listeningRe.FindStringSubmatch(log); m != nil && strings.Contains(log, `"msg":"ready"`) {
			return "http://" + m[1]
		}
		select {
		case <-exited:
			tb.Fatalf("serve exited: %s", log)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("serve not ready after %v: %s", timeout, log)
		}
	}
}

// StartServe runs `petbreed serve --addr 127.0.0.1:0 --log-format json` with
// args after those, in dir, with env added to the environment, and returns
// its URL once it is ready. It is stopped with SIGTERM when the test ends
// (an error if it takes over 20 s).
func StartServe(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	bin := Petbreed(t)
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stderr := &Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("serve did not stop on SIGTERM")
		}
	})
	return WaitReady(t, stderr.String, exited, 30*time.Second)
}
