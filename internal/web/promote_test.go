package web

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"petbreed/internal/classify"
	"petbreed/internal/tracking"
)

// identityModel is a real ONNX model that is not an image classifier: one
// float32 [N,4] input copied to its output by an Identity node (opset 13).
func identityModel() []byte {
	str := func(b []byte, num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
	}
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
	}
	valueInfo := func(name string) []byte {
		var shape []byte
		shape = bytesField(shape, 1, str(nil, 2, "N"))  // dim_param
		shape = bytesField(shape, 1, varint(nil, 1, 4)) // dim_value
		tensor := bytesField(varint(nil, 1, 1), 2, shape)
		return bytesField(str(nil, 1, name), 2, bytesField(nil, 1, tensor))
	}
	node := str(str(str(nil, 1, "x"), 2, "y"), 4, "Identity")
	var graph []byte
	graph = bytesField(graph, 1, node)
	graph = str(graph, 2, "identity")
	graph = bytesField(graph, 11, valueInfo("x"))
	graph = bytesField(graph, 12, valueInfo("y"))
	var m []byte
	m = varint(m, 1, 7)
	m = bytesField(m, 7, graph)
	m = bytesField(m, 8, varint(str(nil, 1, ""), 2, 13))
	return m
}

// registerFile registers a model folder holding model.onnx with data as a
// new version of pet-breed and returns its number.
func registerFile(t *testing.T, st *tracking.Store, data []byte) int {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if data != nil {
		if err := os.WriteFile(filepath.Join(dir, "model.onnx"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v, err := st.CreateModelVersion("pet-breed", dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPromoteUnloadable: a version whose model the server could not load is
// refused with 422 and the alias stays where it was; a good one is promoted.
func TestPromoteUnloadable(t *testing.T) {
	sum, _, st := storeCopy(t)
	good, err := os.ReadFile(sum.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	truncated := registerFile(t, st, good[:len(good)/2])
	notONNX := registerFile(t, st, []byte("this is not an ONNX model\n"))
	notClassifier := registerFile(t, st, identityModel())
	noFile := registerFile(t, st, nil)

	const token = "tok-promote"
	var promoted atomic.Int32
	ts := newServer(t, Config{Store: st, AdminToken: token, OnPromote: func(string, string, int) { promoted.Add(1) }})
	url := ts.URL + "/api/models/pet-breed/aliases/champion"
	for _, c := range []struct {
		what    string
		version int
		detail  string
	}{
		{"truncated ONNX", truncated, "models:/pet-breed/"},
		{"not ONNX", notONNX, "models:/pet-breed/"},
		{"not an image classifier", notClassifier, "image input"},
		{"no model file", noFile, "no ONNX model"},
	} {
		var e errorJSON
		res := call(t, "POST", url, token, `{"version": `+strconv.Itoa(c.version)+`}`, &e)
		wantError(t, res, e, 422, c.what)
		if e.Error != "model does not load" || !strings.Contains(e.Detail, c.detail) {
			t.Errorf("%s: answer %+v, want error \"model does not load\" and a detail with %q", c.what, e, c.detail)
		}
		if v, err := st.Alias("pet-breed", "champion"); err != nil || v != 1 {
			t.Fatalf("%s: champion = %d, %v after a refused promotion; want 1", c.what, v, err)
		}
	}
	if n := promoted.Load(); n != 0 {
		t.Errorf("OnPromote called %d times for refused promotions", n)
	}
	// An unknown version is still 404, not 422.
	var e errorJSON
	wantError(t, call(t, "POST", url, token, `{"version": 99}`, &e), e, 404, "unknown version")

	var p PromoteJSON
	if res := call(t, "POST", url, token, `{"version": 2}`, &p); res.StatusCode != 200 || p.Aliases["champion"] != 2 {
		t.Fatalf("good version: status %d, %+v", res.StatusCode, p)
	}
	if v, err := st.Alias("pet-breed", "champion"); err != nil || v != 2 || promoted.Load() != 1 {
		t.Errorf("after promoting version 2: champion = %d, %v, OnPromote calls %d", v, err, promoted.Load())
	}
}

// TestPromoteTrialLoadOptions: the trial load uses the server's options, so
// a version whose classes do not fit the server's --labels is refused.
func TestPromoteTrialLoadOptions(t *testing.T) {
	_, _, st := storeCopy(t)
	const token = "tok-labels"
	ts := newServer(t, Config{Store: st, AdminToken: token,
		Verify: TrialLoad(st, classify.Options{Labels: []string{"cat", "dog"}})})
	var e errorJSON
	res := call(t, "POST", ts.URL+"/api/models/pet-breed/aliases/champion", token, `{"version": 2}`, &e)
	wantError(t, res, e, 422, "labels that do not fit")
	if !strings.Contains(e.Detail, "2 labels") {
		t.Errorf("detail %q does not say the labels do not fit", e.Detail)
	}
	if v, _ := st.Alias("pet-breed", "champion"); v != 1 {
		t.Errorf("champion = %d, want 1", v)
	}
}

// TestPromoteVerifyHook: Config.Verify is called with the version before
// the alias moves; its error is a 422 and the alias is left alone.
func TestPromoteVerifyHook(t *testing.T) {
	_, _, st := storeCopy(t)
	const token = "tok-hook"
	type call3 struct {
		name    string
		version int
	}
	var (
		mu   sync.Mutex
		got  []call3
		fail = true
	)
	calls := func() []call3 { mu.Lock(); defer mu.Unlock(); return append([]call3(nil), got...) }
	ts := newServer(t, Config{Store: st, AdminToken: token, Verify: func(ctx context.Context, name string, version int) error {
		if ctx == nil {
			t.Error("nil context")
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, call3{name, version})
		if fail {
			return errors.New("boom")
		}
		return nil
	}})
	url := ts.URL + "/api/models/pet-breed/aliases/champion"
	var e errorJSON
	wantError(t, call(t, "POST", url, token, `{"version": 2}`, &e), e, 422, "hook fails")
	if e.Detail != "boom" {
		t.Errorf("detail %q, want the hook's error", e.Detail)
	}
	if v, _ := st.Alias("pet-breed", "champion"); v != 1 {
		t.Errorf("champion = %d after a refused promotion, want 1", v)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if res := call(t, "POST", url, token, `{"version": 2}`, nil); res.StatusCode != 200 {
		t.Errorf("hook passes: status %d", res.StatusCode)
	}
	if got := calls(); len(got) != 2 || got[0] != (call3{"pet-breed", 2}) || got[1] != got[0] {
		t.Errorf("Verify calls %v", got)
	}
	// Refused before the hook: an unknown version is 404 and not verified.
	wantError(t, call(t, "POST", url, token, `{"version": 42}`, &e), e, 404, "unknown version")
	if got := calls(); len(got) != 2 {
		t.Errorf("Verify called for an unknown version: %v", got)
	}
}
