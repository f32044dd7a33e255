// Command hostile measures a `petbreed serve` process's peak RSS under the
// hostile inputs of issue 8, on loopback: for each attack it starts the
// binary afresh, sends a bounded number of requests at once, reads VmHWM
// and stops the server with SIGTERM. It prints a Markdown table.
//
//	go run ./internal/serve/testdata/hostile -bin bin/petbreed -model M.onnx -labels L.txt
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"petbreed/internal/serve/hostile"
)

func main() {
	bin := flag.String("bin", "bin/petbreed", "the petbreed binary")
	model := flag.String("model", "", "model file")
	labels := flag.String("labels", "", "labels file")
	extra := flag.String("args", "", "more serve arguments")
	flag.Parse()
	if err := run(*bin, *model, *labels, strings.Fields(*extra)); err != nil {
		fmt.Fprintln(os.Stderr, "hostile:", err)
		os.Exit(1)
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

type attack struct {
	name string
	n    int // concurrent requests
	req  func() (*http.Request, error)
}

// server is a running petbreed serve.
type server struct {
	cmd    *exec.Cmd
	base   string
	client *http.Client
}

func startServer(bin, model, labels string, extra []string) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--model", model, "--addr", addr, "--log-format", "text"}, extra...)
	if labels != "" {
		args = append(args, "--labels", labels)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, base: "http://" + addr,
		client: &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := s.client.Get(s.base + "/api/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("the server was not ready after 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func run(bin, model, labels string, extra []string) error {
	srv, err := startServer(bin, model, labels, extra)
	if err != nil {
		return err
	}
	idle := vmHWM(srv.cmd.Process.Pid)
	modelName := "unknown"
	if resp, err := srv.client.Get(srv.base + "/v2/models/x"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if i := strings.Index(string(b), `serves \"`); i >= 0 {
			rest := string(b)[i+len(`serves \"`):]
			modelName = rest[:strings.Index(rest, `\"`)]
		}
	}
	srv.stop()

	fmt.Fprintln(os.Stderr, "hostile: making the inputs")
	under25 := hostile.GreyPNG(5000, 5000, 100, png.BestCompression) // at the server's new pixel limit
	under89 := hostile.GreyPNG(9400, 9400, 100, png.BestCompression) // under Pillow's limit, the old server's
	garbage := bytes.Repeat([]byte("garbage!"), 10<<20/8-1)
	v2 := hostile.V2Numbers(5_000_000)
	v2ok := fmt.Sprintf(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["%s"]}]}`,
		base64.StdEncoding.EncodeToString(under25))
	post := func(path string, body []byte, chunked bool) func() (*http.Request, error) {
		return func() (*http.Request, error) {
			var r io.Reader = bytes.NewReader(body)
			if chunked {
				r = io.MultiReader(r) // hides the length
			}
			return http.NewRequest("POST", path, r)
		}
	}
	attacks := []attack{
		{fmt.Sprintf("PNG 5000x5000 (%d KB), 1", len(under25)>>10), 1, post("/api/predict", under25, false)},
		{"the same, 4 at once", 4, post("/api/predict", under25, false)},
		{fmt.Sprintf("PNG 9400x9400 (%d KB, under Pillow's limit), 1", len(under89)>>10), 1, post("/api/predict", under89, false)},
		{"the same, 4 at once", 4, post("/api/predict", under89, false)},
		{"10 MiB garbage bodies, 64 at once", 64, post("/api/predict", garbage, false)},
		{"10 MiB garbage bodies, chunked, 64 at once", 64, post("/api/predict", garbage, true)},
		{fmt.Sprintf("V2 BYTES of 5 M numbers (%d MB), 1", len(v2)>>20), 1, post("/v2/models/"+modelName+"/infer", v2, false)},
		{"the same, 8 at once", 8, post("/v2/models/"+modelName+"/infer", v2, false)},
		{"V2 BYTES, the 5000x5000 PNG, 4 at once", 4, post("/v2/models/"+modelName+"/infer", []byte(v2ok), false)},
	}
	fmt.Printf("| attack | statuses | peak RSS (VmHWM) | time |\n|---|---|---|---|\n")
	fmt.Printf("| none (idle, after start) | | %.0f MB | |\n", idle)
	for _, a := range attacks {
		fmt.Fprintln(os.Stderr, "hostile:", a.name)
		srv, err := startServer(bin, model, labels, extra)
		if err != nil {
			return err
		}
		t0 := time.Now()
		statuses := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		for range a.n {
			wg.Go(func() {
				st := "error"
				req, err := a.req()
				if err == nil {
					req.URL, err = req.URL.Parse(srv.base + req.URL.Path)
				}
				if err == nil {
					var resp *http.Response
					if resp, err = srv.client.Do(req.WithContext(ctx)); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						st = fmt.Sprint(resp.StatusCode)
					}
				}
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			})
		}
		wg.Wait()
		cancel()
		var sts []string
		for k, v := range statuses {
			sts = append(sts, fmt.Sprintf("%s×%d", k, v))
		}
		took := time.Since(t0)
		fmt.Printf("| %s | %s | %.0f MB | %.2f s |\n", a.name, strings.Join(sts, " "), vmHWM(srv.cmd.Process.Pid), took.Seconds())
		srv.stop()
	}
	return nil
}

// vmHWM reads a process's peak resident set, in MB.
func vmHWM(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb)
			return kb / 1000
		}
	}
	return -1
}
