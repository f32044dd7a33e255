package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"petbreed/internal/pipeline/pipelinetest"
	"petbreed/internal/serve/restapi"
	"petbreed/internal/serve/v2"
	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
	"petbreed/internal/tracking"
)

// The tests run one real training pipeline on pets-3breeds (a few seconds)
// and serve its champion; each test that changes the registry gets a store
// of its own, registering the pipeline's model folder.

// The REST API's answers, as the tests read them.
type (
	predictAnswer = restapi.PredictAnswer
	channelStats  = restapi.ChannelStats
	tensorMeta    = v2.TensorMeta
)

func TestMain(m *testing.M) {
	code := m.Run()
	pipelinetest.Cleanup()
	cleanupChallenger()
	os.Exit(code)
}

// championDir returns the pipeline champion's MLflow model folder (the
// pipeline runs once per test binary).
func championDir(t testing.TB) string {
	t.Helper()
	return filepath.Dir(pipelinetest.Champion(t).ModelPath)
}

// newStore makes a tracking store with the champion registered as version 1
// of "pet-breed", alias champion; it returns the store's folder.
func newStore(t testing.TB) (string, *tracking.Store) {
	t.Helper()
	src := championDir(t)
	dir := filepath.Join(t.TempDir(), "mlruns")
	store, err := tracking.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	register(t, store, src)
	return dir, store
}

// register adds the model folder src as the next version of "pet-breed" and
// points the champion alias at it.
func register(t testing.TB, store *tracking.Store, src string) int {
	t.Helper()
	v, err := store.CreateModelVersion("pet-breed", src, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetAlias("pet-breed", "champion", v); err != nil {
		t.Fatal(err)
	}
	return v
}

// testServer is a Server running on a loopback listener.
type testServer struct {
	*Server
	URL  string
	stop func() error // cancels Run and returns its result
	logs *testutil.Buffer
}

// start runs a server with cfg (Model defaults to the champion through a
// fresh store) and waits until it is ready.
func start(t testing.TB, cfg Config) *testServer {
	t.Helper()
	if cfg.Model == "" && len(cfg.Models) == 0 {
		dir, _ := newStore(t)
		cfg.Model, cfg.TrackingURI = "models:/pet-breed@champion", dir
	}
	logs := &testutil.Buffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	ts := &testServer{Server: s, URL: "http://" + ln.Addr().String(), logs: logs}
	var once sync.Once
	var runErr error
	ts.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("Run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !s.Ready() {
		select {
		case err := <-done:
			t.Fatalf("Run returned before ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ts
}

var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d, body %.300q is not JSON: %v", r.status, r.body, err)
	}
}

func (r response) String() string { return fmt.Sprintf("%d %.400s", r.status, r.body) }

func do(t testing.TB, method, url string, body io.Reader, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func get(t testing.TB, url string) response { return do(t, "GET", url, nil, nil) }

func post(t testing.TB, url string, body []byte, header map[string]string) response {
	return do(t, "POST", url, bytes.NewReader(body), header)
}

// multipartBody builds a form with the image in field.
func multipartBody(t testing.TB, field, filename string, data []byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("note", "ignored")
	w, err := mw.CreateFormFile(field, filename)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// breedImages are training images of the three breeds, named breed_N.jpg.
var breedImages = []string{
	"Abyssinian_10.jpg", "Abyssinian_11.jpg", "Abyssinian_12.jpg", "Abyssinian_13.jpg",
	"american_bulldog_10.jpg", "american_bulldog_11.jpg", "american_bulldog_12.jpg", "american_bulldog_13.jpg",
	"Bengal_10.jpg", "Bengal_11.jpg", "Bengal_12.jpg", "Bengal_13.jpg",
}

// breedOf is the label of a breed's image file: Bengal_10.jpg is "Bengal",
// american_bulldog_10.jpg "American Bulldog".
func breedOf(file string) string {
	words := strings.Split(file[:strings.LastIndexByte(file, '_')], "_")
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

func petImage(t testing.TB, name string) []byte {
	return testassets.Read(t, "pets-3breeds", "images", name)
}

// metric reads one sample of /metrics ("name" or "name{labels}").
func metric(t testing.TB, url, name string) (float64, bool) {
	t.Helper()
	r := get(t, url+"/metrics")
	for _, line := range strings.Split(string(r.body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v, true
		}
	}
	return 0, false
}
