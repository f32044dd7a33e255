package tracking

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestLogONNXModel(t *testing.T) {
	s := openStore(t)
	r := startRun(t, s, "model", "m")
	src := filepath.Join(t.TempDir(), "exported.onnx")
	os.WriteFile(src, []byte("fake onnx bytes"), 0o644)
	meta := ModelMeta{
		InputName: "input", InputShape: []int64{-1, 3, 224, 224},
		OutputName: "probabilities", OutputShape: []int64{-1, 37},
		ONNXVersion: "1.16.1", PythonVersion: "3.10",
		Metadata: map[string]string{"yes": "no"},
	}
	uri, err := r.LogONNXModel("model", src, meta)
	if err != nil {
		t.Fatal(err)
	}
	if uri != "runs:/"+r.ID+"/model" {
		t.Errorf("URI = %q", uri)
	}
	dir := filepath.Join(r.artifactDir, "model")
	if got := readString(t, filepath.Join(dir, "model.onnx")); got != "fake onnx bytes" {
		t.Errorf("model.onnx = %q", got)
	}
	for _, f := range []string{"conda.yaml", "python_env.yaml", "requirements.txt"} {
		if !exists(filepath.Join(dir, f)) {
			t.Errorf("missing %s", f)
		}
	}
	m := readYAML(t, filepath.Join(dir, "MLmodel"))
	wantKeys(t, "MLmodel", m, "artifact_path", "flavors", "mlflow_version", "model_uuid", "run_id", "utc_time_created", "signature", "model_size_bytes")
	if m["artifact_path"] != "model" || m["run_id"] != r.ID || m["mlflow_version"] != DefaultMLflowVersion || m["model_size_bytes"] != 15 {
		t.Errorf("MLmodel = %v", m)
	}
	if !hex32.MatchString(m["model_uuid"].(string)) {
		t.Errorf("model_uuid = %v", m["model_uuid"])
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`).MatchString(m["utc_time_created"].(string)) {
		t.Errorf("utc_time_created = %v", m["utc_time_created"])
	}
	flavors := m["flavors"].(map[string]any)
	wantOnnx := map[string]any{"code": nil, "data": "model.onnx", "onnx_session_options": nil, "onnx_version": "1.16.1", "providers": []any{"CPUExecutionProvider"}}
	if !reflect.DeepEqual(flavors["onnx"], wantOnnx) {
		t.Errorf("flavors.onnx = %#v\nwant %#v", flavors["onnx"], wantOnnx)
	}
	wantPyfunc := map[string]any{"data": "model.onnx", "env": map[string]any{"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
		"loader_module": "mlflow.onnx", "python_version": "3.10"}
	if !reflect.DeepEqual(flavors["python_function"], wantPyfunc) {
		t.Errorf("flavors.python_function = %#v\nwant %#v", flavors["python_function"], wantPyfunc)
	}
	if md := m["metadata"].(map[string]any); md["yes"] != "no" {
		t.Errorf("metadata = %#v (YAML 1.1 booleans must stay strings)", md)
	}
	sig := m["signature"].(map[string]any)
	// Exactly what Python's json.dumps of MLflow's TensorSpec.to_dict gives.
	wantIn := `[{"name": "input", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3, 224, 224]}}]`
	wantOut := `[{"name": "probabilities", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 37]}}]`
	if sig["inputs"] != wantIn || sig["outputs"] != wantOut {
		t.Errorf("signature = %#v", sig)
	}
	if v, ok := sig["params"]; !ok || v != nil {
		t.Errorf("signature.params = %#v, want null", v)
	}
	var spec []map[string]any
	if err := json.Unmarshal([]byte(sig["inputs"].(string)), &spec); err != nil || spec[0]["type"] != "tensor" {
		t.Errorf("signature inputs not JSON: %v", err)
	}

	// The run's mlflow.log-model.history tag, one entry per model.
	if _, err := r.LogONNXModel("extra/model2", src, ModelMeta{InputShape: []int64{1}, OutputDType: "int64", OutputShape: []int64{}}); err != nil {
		t.Fatal(err)
	}
	var hist []map[string]any
	if err := json.Unmarshal([]byte(readString(t, filepath.Join(r.dir, "tags", TagLogModelHistory))), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0]["artifact_path"] != "model" || hist[1]["artifact_path"] != "extra/model2" || hist[0]["run_id"] != r.ID {
		t.Errorf("history = %v", hist)
	}
	for _, k := range []string{"run_id", "artifact_path", "utc_time_created", "model_uuid", "flavors"} {
		if _, ok := hist[0][k]; !ok {
			t.Errorf("history entry lacks %s", k)
		}
	}
	m2 := readYAML(t, filepath.Join(r.artifactDir, "extra", "model2", "MLmodel"))
	sig2 := m2["signature"].(map[string]any)
	if sig2["inputs"] != `[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [1]}}]` ||
		sig2["outputs"] != `[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": []}}]` {
		t.Errorf("unnamed tensor signature = %#v", sig2)
	}

	for name, call := range map[string]func() error{
		"existing path": func() error { _, err := r.LogONNXModel("model", src, meta); return err },
		"escaping path": func() error { _, err := r.LogONNXModel("../model", src, meta); return err },
		"missing file":  func() error { _, err := r.LogONNXModel("m3", src+".missing", meta); return err },
		"bad dtype": func() error {
			_, err := r.LogONNXModel("m4", src, ModelMeta{InputDType: "float", InputShape: []int64{1}, OutputShape: []int64{1}})
			return err
		},
		"no shape": func() error { _, err := r.LogONNXModel("m5", src, ModelMeta{InputName: "x"}); return err },
		"bad dim": func() error {
			_, err := r.LogONNXModel("m6", src, ModelMeta{InputShape: []int64{-2}, OutputShape: []int64{1}})
			return err
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if got := readString(t, filepath.Join(dir, "model.onnx")); got != "fake onnx bytes" {
		t.Errorf("a failed log touched the model: %q", got)
	}
	noTempFiles(t, s)
}

func TestResolveModelURI(t *testing.T) {
	s := openStore(t)
	r := logFakeModel(t, s, "v1")
	modelDir := filepath.Join(r.artifactDir, "model")
	v1File := filepath.Join(modelDir, "model.onnx")
	if v, err := s.CreateModelVersion("m", "runs:/"+r.ID+"/model", ""); err != nil || v != 1 {
		t.Fatal(v, err)
	}
	// Version 2: a folder with two .onnx files and no MLmodel: ambiguous.
	two := t.TempDir()
	os.WriteFile(filepath.Join(two, "a.onnx"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(two, "b.onnx"), []byte("b"), 0o644)
	s.CreateModelVersion("m", pathToFileURI(two), "")
	// Version 3: a folder with one .onnx file and no MLmodel.
	one := t.TempDir()
	os.WriteFile(filepath.Join(one, "only.onnx"), []byte("o"), 0o644)
	s.CreateModelVersion("m", one, "") // absolute path source
	// Version 4: an MLmodel naming a file that is not there.
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "MLmodel"), []byte("flavors:\n  onnx:\n    data: gone.onnx\n"), 0o644)
	os.WriteFile(filepath.Join(broken, "other.onnx"), []byte("x"), 0o644)
	s.CreateModelVersion("m", pathToFileURI(broken), "")
	// Version 5: a models:/ source pointing at version 1.
	s.CreateModelVersion("m", "models:/m/1", "")
	if err := s.SetAlias("m", "champion", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAlias("m", "ambiguous", 2); err != nil {
		t.Fatal(err)
	}
	// An alias file pointing to a version since removed.
	os.WriteFile(filepath.Join(s.Root(), "models", "m", "aliases", "dangling"), []byte("42"), 0o644)
	s.CreateModelVersion("empty", "file:///x", "")
	os.RemoveAll(filepath.Join(s.Root(), "models", "empty", "version-1"))

	ok := []struct{ uri, want string }{
		{"models:/m/1", v1File},
		{"models:/m@champion", v1File},
		{"models:/m/3", filepath.Join(one, "only.onnx")},
		{"models:/m/latest", v1File}, // version 5 -> models:/m/1
		{"models:/m/LATEST", v1File},
		{"models:/m/5", v1File},
		{"models:/m/None", v1File}, // a stage: every version is in None
		{"runs:/" + r.ID + "/model", v1File},
		{"runs:/" + r.ID + "/model/", v1File},
		{"runs:/" + r.ID + "/model/model.onnx", v1File},
		{pathToFileURI(modelDir), v1File},
		{pathToFileURI(v1File), v1File},
		{"file://" + one, filepath.Join(one, "only.onnx")},
		{"some/relative/model.onnx", "some/relative/model.onnx"},
		{"/abs/model.onnx", "/abs/model.onnx"},
		{"model.onnx", "model.onnx"},
	}
	for _, tt := range ok {
		got, err := s.ResolveModelURI(tt.uri)
		if err != nil || got != tt.want {
			t.Errorf("ResolveModelURI(%q) = %q, %v; want %q", tt.uri, got, err, tt.want)
		}
	}
	bad := []struct {
		uri      string
		notFound bool
		mention  string
	}{
		{"models:/nope/1", true, "nope"},
		{"models:/m/9", true, "version 9"},
		{"models:/m@nobody", true, "nobody"},
		{"models:/m@dangling", true, "42"},
		{"models:/m/Production", true, "Production"},
		{"models:/empty/latest", true, "no versions"},
		{"models:/m/2", false, "2 *.onnx files"},
		{"models:/m@ambiguous", false, "2 *.onnx files"},
		{"models:/m/4", false, "gone.onnx"},
		{"models:/m", false, "models:/<name>"},
		{"models:/m/1/x", false, "models:/<name>"},
		{"models://m/1", false, "models:/<name>"},
		{"models:/m@", false, "models:/<name>"},
		{"models:/m/0", true, "version 0"},
		{"models:/m@v1", false, "reserved"},
		{"runs:/" + newRunID() + "/model", true, "run"},
		{"runs:/bad!id/model", false, "bad run id"},
		{"runs:/" + r.ID + "/../../x", false, "artifact"},
		{"runs:/" + r.ID + "/missing", false, "missing"},
		{"file:///does/not/exist.onnx", false, "exist"},
		{"s3://bucket/model", false, "unsupported"},
		{"http://example.com/m.onnx", false, "unsupported"},
	}
	for _, tt := range bad {
		got, err := s.ResolveModelURI(tt.uri)
		if err == nil {
			t.Errorf("ResolveModelURI(%q) = %q, want an error", tt.uri, got)
			continue
		}
		if errors.Is(err, ErrNotFound) != tt.notFound {
			t.Errorf("ResolveModelURI(%q): %v; ErrNotFound %v, want %v", tt.uri, err, errors.Is(err, ErrNotFound), tt.notFound)
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("ResolveModelURI(%q): error %q does not mention %q", tt.uri, err, tt.mention)
		}
	}
}

func TestPyFloat(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0.5, "0.5"},
		{1, "1.0"},
		{-2, "-2.0"},
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{math.Nextafter(0.3, 1), "0.30000000000000004"}, // 0.1 + 0.2 at run time
		{1e15, "1000000000000000.0"},
		{1e16, "1e+16"},
		{1.5e16, "1.5e+16"},
		{123456789.123, "123456789.123"},
		{0.0001, "0.0001"},
		{1e-5, "1e-05"},
		{1.5e-7, "1.5e-07"},
		{2.5e100, "2.5e+100"},
		{5e-324, "5e-324"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{math.NaN(), "nan"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
	}
	for _, tt := range tests {
		got := pyFloat(tt.v)
		if got != tt.want {
			t.Errorf("pyFloat(%v) = %q, want %q", tt.v, got, tt.want)
		}
		back, err := parsePyFloat(got)
		if err != nil || !(back == tt.v || math.IsNaN(back) && math.IsNaN(tt.v)) || math.Signbit(back) != math.Signbit(tt.v) {
			t.Errorf("parsePyFloat(%q) = %v, %v", got, back, err)
		}
	}
	for _, s := range []string{"NaN", "Infinity", "-INF", "+1.5", "1E5", " 2"} {
		if s == " 2" {
			continue // fields never carry spaces
		}
		if _, err := parsePyFloat(s); err != nil {
			t.Errorf("parsePyFloat(%q): %v (Python's float() accepts it)", s, err)
		}
	}
	for _, s := range []string{"", "0x1p-2", "1_000", "abc", "0,5", "1.0.0"} {
		if _, err := parsePyFloat(s); err == nil {
			t.Errorf("parsePyFloat(%q): no error", s)
		}
	}
}

func TestGitCommit(t *testing.T) {
	const c1 = "0123456789abcdef0123456789abcdef01234567"
	const c2 = "89abcdef0123456789abcdef0123456789abcdef"
	write := func(p, content string) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	tests := []struct {
		name  string
		setup func(root string)
		want  string
	}{
		{"no repository", func(string) {}, ""},
		{"loose ref", func(root string) {
			write(root+"/.git/HEAD", "ref: refs/heads/main\n")
			write(root+"/.git/refs/heads/main", c1+"\n")
		}, c1},
		{"packed ref", func(root string) {
			write(root+"/.git/HEAD", "ref: refs/heads/main\n")
			write(root+"/.git/packed-refs", "# pack-refs with: peeled fully-peeled sorted\n"+c2+" refs/heads/main\n^"+c1+"\n")
		}, c2},
		{"detached", func(root string) { write(root+"/.git/HEAD", c2+"\n") }, c2},
		{"unborn branch", func(root string) { write(root+"/.git/HEAD", "ref: refs/heads/main\n") }, ""},
		{"worktree", func(root string) {
			write(root+"/main/.git/refs/heads/feature", c1+"\n")
			write(root+"/main/.git/worktrees/wt/HEAD", "ref: refs/heads/feature\n")
			write(root+"/main/.git/worktrees/wt/commondir", "../..\n")
			write(root+"/.git", "gitdir: main/.git/worktrees/wt\n")
		}, c1},
	}
	for _, tt := range tests {
		root := t.TempDir()
		tt.setup(root)
		sub := filepath.Join(root, "a", "b")
		os.MkdirAll(sub, 0o755)
		if got := gitCommit(sub); got != tt.want {
			t.Errorf("%s: gitCommit = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPathToFileURI(t *testing.T) {
	for p, want := range map[string]string{
		"/tmp/mlruns":         "file:///tmp/mlruns",
		"/a b/c%d":            "file:///a%20b/c%25d",
		"/x/ü":                "file:///x/%C3%BC",
		"/keep_these-.~chars": "file:///keep_these-.~chars",
	} {
		if got := pathToFileURI(p); got != want {
			t.Errorf("pathToFileURI(%q) = %q, want %q", p, got, want)
		}
		if back, err := fileURIToPath(want); err != nil || back != p {
			t.Errorf("fileURIToPath(%q) = %q, %v", want, back, err)
		}
	}
}
