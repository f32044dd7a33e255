package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"petbreed/internal/imaging/jpegtest"
	"petbreed/internal/serve/hostile"
	"petbreed/internal/testassets"
)

// Issue 8: what a hostile client can make the server do.

// budgetInUse reads petbreed_memory_budget_bytes_in_use, waiting briefly
// for it to reach want (requests release their charge as they return).
func budgetInUse(t *testing.T, url string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		v, ok := metric(t, url, "petbreed_memory_budget_bytes_in_use")
		if !ok {
			t.Fatal("no petbreed_memory_budget_bytes_in_use metric")
		}
		if v == want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func errorOf(t *testing.T, r response) string {
	t.Helper()
	var e struct{ Error, Detail string }
	r.json(t, &e)
	return e.Error
}

// TestHealthHidesPaths: /api/health names the model without the server's
// paths, unless the request bears the admin token.
func TestHealthHidesPaths(t *testing.T) {
	dir, _ := newStore(t)
	ts := start(t, Config{Model: "models:/pet-breed@champion", TrackingURI: dir, AdminToken: "secret"})
	path := ts.current().path
	for _, tt := range []struct {
		name   string
		header map[string]string
		paths  bool
	}{
		{"anonymous", nil, false},
		{"wrong token", map[string]string{"Authorization": "Bearer nope"}, false},
		{"admin", map[string]string{"Authorization": "Bearer secret"}, true},
	} {
		r := do(t, "GET", ts.URL+"/api/health", nil, tt.header)
		var h healthAnswer
		r.json(t, &h)
		if r.status != 200 || h.Model == nil || h.Model.Name != "pet-breed" || h.Model.Version != "1" || h.Model.File != "model.onnx" {
			t.Errorf("%s: %s", tt.name, r)
			continue
		}
		leaks := strings.Contains(string(r.body), path) || strings.Contains(string(r.body), dir)
		if leaks != tt.paths {
			t.Errorf("%s: paths shown %v, want %v: %s", tt.name, leaks, tt.paths, r)
		}
	}
	if got := redactPaths(`open /srv/models/x/model.onnx: no such file ("/tmp/a b")`); strings.Contains(got, "/srv") || !strings.Contains(got, "model.onnx") {
		t.Errorf("redactPaths: %s", got)
	}
}

// pngOf encodes a w x h PNG of one colour (small: it compresses).
func pngOf(t testing.TB, w, h int) []byte {
	t.Helper()
	return hostile.GreyPNG(w, h, 128, png.BestSpeed)
}

// TestMemoryBudget sends what made the server allocate in proportion to
// what a client declares rather than sends: each attack gets its status
// and the budget is back to 0 afterwards.
func TestMemoryBudget(t *testing.T) {
	const budget = 64 << 20
	ts := start(t, Config{MemoryBudget: budget, MaxBody: 10 << 20, BudgetWait: 50 * time.Millisecond})
	if v, _ := metric(t, ts.URL, "petbreed_memory_budget_bytes"); v != budget {
		t.Errorf("petbreed_memory_budget_bytes %v", v)
	}
	jpegHead := []byte("\xff\xd8\xff\xe0")

	t.Run("pixel limit", func(t *testing.T) {
		// 25.2 M pixels declared in 50 bytes: over the server's default.
		r := post(t, ts.URL+"/api/predict", testassets.BombPNG(6000, 4200), nil)
		if r.status != 422 || errorOf(t, r) != "image over the pixel limit" {
			t.Errorf("%s", r)
		}
	})
	t.Run("tiny file decoding over the budget", func(t *testing.T) {
		// 5000 x 5000 is at the pixel limit, and its decoding takes 100 MB
		// (Go's PNG decoder makes RGBA): more than the whole budget.
		bomb := testassets.BombPNG(5000, 5000)
		for _, ep := range []string{"/api/predict", "/api/preprocess", "/api/resize?width=10&height=10"} {
			r := post(t, ts.URL+ep, bomb, nil)
			if r.status != 422 || errorOf(t, r) != "image over the memory budget" {
				t.Errorf("%s: %s", ep, r)
			}
		}
		body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(bomb)}}}})
		if r := post(t, ts.URL+"/v2/models/pet-breed/infer", body, nil); r.status != 400 || !strings.Contains(string(r.body), "memory budget") {
			t.Errorf("v2: %s", r)
		}
	})
	t.Run("garbage refused before it is read", func(t *testing.T) {
		// The client declares 10 MiB, sends 64 KiB and waits: the answer
		// must come from those first bytes.
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 10<<20)
		conn.Write(bytes.Repeat([]byte("GARBAGE "), 8<<10))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no early answer: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 415 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("many concurrent big bodies", func(t *testing.T) {
		garbage := bytes.Repeat([]byte("x"), 10<<20)
		fake := append(append([]byte{}, jpegHead...), garbage[:10<<20-len(jpegHead)]...)
		var wg sync.WaitGroup
		statuses := make([]int, 24)
		for i := range statuses {
			wg.Go(func() {
				body := garbage
				if i%2 == 1 {
					body = fake // sniffed as a JPEG: read whole, within the budget
				}
				resp, err := client.Post(ts.URL+"/api/predict", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					statuses[i] = -1
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			})
		}
		wg.Wait()
		for i, st := range statuses {
			ok := st == 415
			if i%2 == 1 {
				ok = st == 422 || st == 503 // a corrupt JPEG, or no room in the budget
			}
			if !ok {
				t.Errorf("request %d: status %d", i, st)
			}
		}
		t.Logf("statuses %v", statuses)
	})
	t.Run("chunked bodies", func(t *testing.T) {
		r := do(t, "POST", ts.URL+"/api/predict", chunked{strings.NewReader("not an image at all, sent chunked")}, nil)
		if r.status != 415 {
			t.Errorf("garbage: %s", r)
		}
		r = do(t, "POST", ts.URL+"/api/predict", chunked{bytes.NewReader(testassets.Read(t, "photos", "chelsea.png"))}, nil)
		if r.status != 200 {
			t.Errorf("an image: %s", r)
		}
		// Over --max-body, chunked: 413 once the limit is read.
		big := append(append([]byte{}, jpegHead...), bytes.Repeat([]byte("x"), 11<<20)...)
		r = do(t, "POST", ts.URL+"/api/predict", chunked{bytes.NewReader(big)}, nil)
		if r.status != 413 {
			t.Errorf("over max body: %s", r)
		}
	})
	t.Run("v2 BYTES of 5 million numbers", func(t *testing.T) {
		body := hostile.V2Numbers(5_000_000)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := post(t, ts.URL+"/v2/models/pet-breed/infer", body, nil)
		runtime.ReadMemStats(&after)
		if r.status != 400 || !strings.Contains(string(r.body), "element 0 is a number") {
			t.Errorf("%s", r)
		}
		// The body once, the JSON's copy of the data once, the client's
		// side: not the 250 MB of a decoded []any.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 6*uint64(len(body)) {
			t.Errorf("the request allocated %d MB for a %d MB body", alloc>>20, len(body)>>20)
		}
	})
	t.Run("v2 shapes against data", func(t *testing.T) {
		img := b64(testassets.Read(t, "photos", "chelsea.png"))
		for _, tt := range []struct {
			body, want string
		}{
			{`{"inputs":[{"name":"image","datatype":"BYTES","shape":[2],"data":["` + img + `","` + img + `","` + img + `"]}]}`, "more elements than the 2"},
			{`{"inputs":[{"name":"image","datatype":"BYTES","shape":[2],"data":["` + img + `"]}]}`, "1 elements for shape [2]"},
			{`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1000000000000],"data":["` + img + `"]}]}`, "over the server's limit"},
			{`{"inputs":[{"name":"image","datatype":"BYTES","shape":[` + strings.Repeat("1,", 5000) + `1],"data":["` + img + `"]}]}`, "more than 4096 JSON values"},
			{`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,224,224],"data":[` + strings.Repeat("0,", 3*224*224) + `0]}]}`, "more than the 150528 values"},
		} {
			r := post(t, ts.URL+"/v2/models/pet-breed/infer", []byte(tt.body), nil)
			if r.status != 400 || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("want %q: %s", tt.want, r)
			}
		}
	})
	if v := budgetInUse(t, ts.URL, 0); v != 0 {
		t.Errorf("%v bytes of the budget still in use after the requests", v)
	}
}

// TestBudgetWaitsThen503: a request that does not fit waits for room, and
// gets 503 with Retry-After when none comes.
func TestBudgetWaitsThen503(t *testing.T) {
	b := newBudget(100, 30*time.Millisecond)
	ctx := context.Background()
	c1 := b.newCharge(ctx)
	if err := c1.grow(80); err != nil {
		t.Fatal(err)
	}
	c2 := b.newCharge(ctx)
	if err := c2.grow(101); err == nil || !strings.Contains(err.Error(), "over the server's memory budget") {
		t.Errorf("over the whole budget: %v", err)
	}
	if err := c2.grow(30); err != errBudgetBusy {
		t.Errorf("no room: %v", err)
	}
	c1.release()
	c2.release()
	if b.inUse() != 0 {
		t.Errorf("in use %d", b.inUse())
	}

	// Room made while a charge waits: a wait long enough that a loaded
	// machine's late release still falls within it.
	long := newBudget(100, time.Minute)
	c1, c2 = long.newCharge(ctx), long.newCharge(ctx)
	if err := c1.grow(80); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		c1.release()
	}()
	if err := c2.grow(30); err != nil {
		t.Errorf("room made while waiting: %v", err)
	}
	c2.release()
	if long.inUse() != 0 {
		t.Errorf("in use %d", long.inUse())
	}
}

// TestDecodeDeadline: a decode longer than DecodeTimeout is stopped and
// answered 422 "decode timeout", on every endpoint that decodes.
func TestDecodeDeadline(t *testing.T) {
	ts := start(t, Config{DecodeTimeout: time.Millisecond})
	big := pngOf(t, 4000, 3000) // tens of milliseconds to decode
	body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(big)}}}})
	for _, ep := range []string{"/api/predict", "/api/preprocess", "/api/resize?width=10&height=10", "/v2/models/pet-breed/infer"} {
		b := big
		if strings.HasPrefix(ep, "/v2") {
			b = body
		}
		t0 := time.Now()
		r := post(t, ts.URL+ep, b, nil)
		if !strings.Contains(string(r.body), "decode timeout") || (r.status != 422 && r.status != 400) {
			t.Errorf("%s: %s", ep, r)
		}
		t.Logf("%s: %d in %v", ep, r.status, time.Since(t0))
	}
	if v := budgetInUse(t, ts.URL, 0); v != 0 {
		t.Errorf("%v bytes of the budget still in use", v)
	}
}

// scriptJPEG is a progressive JPEG of w x h RGB pixels (a pattern) with
// the scans of script.
func scriptJPEG(t testing.TB, w, h int, script []jpegtest.Scan) []byte {
	t.Helper()
	pix := make([]byte, w*h*3)
	for i := range pix {
		pix[i] = byte(i * 7 % 251)
	}
	b, err := jpegtest.Encode(pix, w, h, 3, 90, jpegtest.Script, script)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTooManyScans: a progressive JPEG of 2090 scans is refused at once on
// every endpoint that decodes.
func TestTooManyScans(t *testing.T) {
	ts := start(t, Config{})
	jpg := scriptJPEG(t, 64, 64, jpegtest.ManyScans(3))
	body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1}, "data": []string{b64(jpg)}}}})
	for _, ep := range []string{"/api/predict", "/api/preprocess", "/api/resize?width=10&height=10", "/v2/models/pet-breed/infer"} {
		b := jpg
		if strings.HasPrefix(ep, "/v2") {
			b = body
		}
		r := post(t, ts.URL+ep, b, nil)
		if strings.HasPrefix(ep, "/v2") {
			if r.status != 400 || !strings.Contains(string(r.body), "too many scans") {
				t.Errorf("%s: %s", ep, r)
			}
			continue
		}
		if r.status != 422 || errorOf(t, r) != "too many scans" {
			t.Errorf("%s: %s", ep, r)
		}
	}
}

// slowJPEG is a JPEG that takes long to decode while within every limit: a
// big progressive image of 100 scans, each a pass over every block.
func slowJPEG(t testing.TB) []byte {
	return scriptJPEG(t, 4000, 3000, jpegtest.ManyScans(3)[:100])
}

// TestClientLeavingFreesItsDecode: clients that go away while their images
// decode free the decoding places at once, so the next request is not held
// up behind work nobody waits for.
func TestClientLeavingFreesItsDecode(t *testing.T) {
	ts := start(t, Config{DecodeTimeout: time.Minute})
	slow := slowJPEG(t)
	t0 := time.Now()
	r := post(t, ts.URL+"/api/predict", slow, nil)
	alone := time.Since(t0)
	t.Logf("the slow JPEG (%d KB) alone: %d in %v", len(slow)>>10, r.status, alone)
	if alone < 500*time.Millisecond {
		t.Skipf("the slow JPEG decodes in %v: too fast to tell", alone)
	}
	var wg sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/api/predict", bytes.NewReader(slow))
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	t0 = time.Now()
	r = post(t, ts.URL+"/api/predict", testassets.Read(t, "photos", "chelsea.png"), nil)
	took := time.Since(t0)
	if r.status != 200 || took > alone/2 {
		t.Errorf("after the clients left: %s in %v (the slow decode alone takes %v)", r, took, alone)
	}
	if v := budgetInUse(t, ts.URL, 0); v != 0 {
		t.Errorf("%v bytes of the budget still in use", v)
	}
}

// stuckPage is a web page whose one route never returns, whatever its
// request's context says: a handler stuck for good.
type stuckPage struct{ entered chan struct{} }

func (p stuckPage) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /stuck", func(w http.ResponseWriter, r *http.Request) {
		p.entered <- struct{}{}
		select {}
	})
}

func (stuckPage) Routes() []string { return []string{"GET /stuck"} }

// TestShutdownBounded: Run returns soon after the drain timeout even with a
// decode in flight and a handler that never returns (holding the model),
// and cancels the decode.
func TestShutdownBounded(t *testing.T) {
	page := stuckPage{make(chan struct{}, 1)}
	ts := start(t, Config{DrainTimeout: 300 * time.Millisecond, DecodeTimeout: time.Minute, Page: page})
	go func() {
		resp, err := client.Get(ts.URL + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-page.entered
	m := ts.acquire() // as a handler stuck while it holds the model
	defer m.release()
	slowDone := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest("POST", ts.URL+"/api/predict", bytes.NewReader(slowJPEG(t)))
		resp, err := client.Do(req)
		if err != nil {
			slowDone <- response{status: -1}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slowDone <- response{status: resp.StatusCode, body: b}
	}()
	// Wait until the slow request is decoding.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := metric(t, ts.URL, "petbreed_memory_budget_bytes_in_use"); v > 10<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow request never started decoding")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t0 := time.Now()
	err := ts.stop()
	took := time.Since(t0)
	if err != nil {
		t.Errorf("Run: %v", err)
	}
	// Bounded: well before the stuck handlers or the decode (a minute)
	// would end; the slack is for a loaded machine.
	if took > 300*time.Millisecond+closeGrace+5*time.Second {
		t.Errorf("Run returned %v after the stop, drain timeout 300ms", took)
	}
	t.Logf("Run returned in %v", took)
	select {
	case r := <-slowDone:
		t.Logf("the slow request: %s", r)
	case <-time.After(2 * time.Second):
		t.Error("the slow request's connection was not closed")
	}
	if v := ts.budget.inUse(); v != 0 {
		t.Errorf("the cancelled decode still holds %d bytes of the budget", v)
	}
	if !strings.Contains(ts.logs.String(), `"requests_cut_off":true`) {
		t.Error("the log does not say requests were cut off")
	}
}
