package deploytest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"petbreed/internal/serve"
)

// The A/B and canary overlays, rendered by the pinned kustomize that
// scripts/test-deploy.sh uses (which also has the API server check them
// against the schemas), are checked here against the program itself: the
// models file the ab overlay mounts is one `petbreed serve --models` reads,
// its prediction log is on a writable volume, and each overlay changes only
// what it says.

type object = map[string]any

// kustomize finds the pinned kustomize ($KUSTOMIZE, else the one
// scripts/kube-build.sh built), or skips.
func kustomize(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KUSTOMIZE"); p != "" {
		return p
	}
	p := filepath.Join(root, ".cache", "kube", "bin", "kustomize")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no kustomize at %s: scripts/kube-build.sh builds it (make test-deploy)", p)
	}
	return p
}

// render builds an overlay and returns its objects by KIND/NAME.
func render(t *testing.T, overlay string) map[string]object {
	t.Helper()
	out, err := exec.Command(kustomize(t), "build", filepath.Join(root, "deploy", "overlays", overlay)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kustomize build %s: %v\n%s", overlay, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	objs := map[string]object{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", overlay, err)
		}
		name := get[string](t, o, "metadata", "name")
		if kind := get[string](t, o, "kind"); kind == "ConfigMap" || kind == "Secret" {
			name = name[:strings.LastIndexByte(name, '-')] // the content hash
		}
		objs[get[string](t, o, "kind")+"/"+name] = o
	}
	return objs
}

// get walks a decoded object: a string key for a map, an int for a list.
func get[T any](t *testing.T, v any, keys ...any) T {
	t.Helper()
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(object)
			if !ok {
				t.Fatalf("%v: not a map at %q", keys, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", keys, k)
			}
			v = l[k]
		}
	}
	x, ok := v.(T)
	if !ok {
		var zero T
		t.Fatalf("%v: %T, want %T", keys, v, zero)
	}
	return x
}

// env is a container's env entries: the last one of each name wins, as in
// Kubernetes, over the ConfigMap's envFrom.
func env(t *testing.T, c object) map[string]string {
	e := map[string]string{}
	for _, x := range get[[]any](t, c, "env") {
		if v, ok := x.(object)["value"].(string); ok {
			e[x.(object)["name"].(string)] = v
		}
	}
	return e
}

// mebibytes reads a quantity in Mi or a byte size in MiB.
func mebibytes(t *testing.T, q string) int {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(q, "MiB"), "Mi"))
	if err != nil {
		t.Fatalf("size %q: %v", q, err)
	}
	return n
}

func TestOverlayAB(t *testing.T) {
	prod, ab := render(t, "prod"), render(t, "ab")
	cm := ab["ConfigMap/petbreed-models"]
	if cm == nil {
		t.Fatal("no ConfigMap petbreed-models")
	}
	dep := ab["Deployment/petbreed"]
	spec := get[object](t, dep, "spec", "template", "spec")
	c := get[object](t, spec, "containers", 0)
	e := env(t, c)
	if e["PETBREED_MODEL"] != "" || e["PETBREED_MODELS"] == "" || e["PETBREED_PREDICTION_LOG"] == "" {
		t.Fatalf("env %v", e)
	}

	// The models file is mounted from the ConfigMap (by its hashed name),
	// and it is one the server reads: two models, 90/10.
	volumes := map[string]object{}
	for _, v := range get[[]any](t, spec, "volumes") {
		volumes[v.(object)["name"].(string)] = v.(object)
	}
	mounts := map[string]object{} // by mount path
	for _, m := range get[[]any](t, c, "volumeMounts") {
		mounts[m.(object)["mountPath"].(string)] = m.(object)
	}
	mm := mounts[path.Dir(e["PETBREED_MODELS"])]
	if mm == nil {
		t.Fatalf("nothing mounted at %s", path.Dir(e["PETBREED_MODELS"]))
	}
	vol := volumes[mm["name"].(string)]
	if got := get[string](t, vol, "configMap", "name"); got != get[string](t, cm, "metadata", "name") {
		t.Errorf("the models volume mounts ConfigMap %s, not the generated %s", got, get[string](t, cm, "metadata", "name"))
	}
	file := filepath.Join(t.TempDir(), path.Base(e["PETBREED_MODELS"]))
	if err := os.WriteFile(file, []byte(get[string](t, cm, "data", path.Base(e["PETBREED_MODELS"]))), 0o644); err != nil {
		t.Fatal(err)
	}
	mf, err := serve.ReadModelsFile(file)
	if err != nil {
		t.Fatalf("the server refuses the overlay's models file: %v", err)
	}
	want := []serve.ModelSpec{
		{Name: "champion", URI: "models:/pet-breed@champion", Weight: 90},
		{Name: "challenger", URI: "models:/pet-breed@challenger", Weight: 10},
	}
	if !reflect.DeepEqual(mf.Models, want) {
		t.Errorf("models %+v, want %+v", mf.Models, want)
	}

	// The root file system is read-only: the log goes to a writable emptyDir
	// that holds more than the log's bound.
	lm := mounts[path.Dir(e["PETBREED_PREDICTION_LOG"])]
	if lm == nil || lm["readOnly"] == true {
		t.Fatalf("the log's folder %s is not a writable mount: %v", path.Dir(e["PETBREED_PREDICTION_LOG"]), lm)
	}
	lv := volumes[lm["name"].(string)]
	if size := mebibytes(t, get[string](t, lv, "emptyDir", "sizeLimit")); size <= mebibytes(t, e["PETBREED_PREDICTION_LOG_MAX_BYTES"]) {
		t.Errorf("the log's volume (%d Mi) is not larger than the log's bound %s", size, e["PETBREED_PREDICTION_LOG_MAX_BYTES"])
	}
	if get[bool](t, c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("the root file system is no longer read-only")
	}

	// Feedback reaches the pod that answered: sticky by client.
	if got := get[string](t, ab["Service/petbreed"], "spec", "sessionAffinity"); got != "ClientIP" {
		t.Errorf("sessionAffinity %q", got)
	}
	// Nothing else changes: the InferenceService and the rest are prod's.
	for k, o := range prod {
		if k == "Deployment/petbreed" || k == "Service/petbreed" {
			continue
		}
		if !reflect.DeepEqual(o, ab[k]) {
			t.Errorf("%s differs from prod's", k)
		}
	}
	if len(ab) != len(prod)+1 {
		t.Errorf("%d objects, prod has %d (+1 ConfigMap)", len(ab), len(prod))
	}
}

func TestOverlayCanary(t *testing.T) {
	prod, canary := render(t, "prod"), render(t, "canary")
	isvc := canary["InferenceService/petbreed"]
	pred := get[object](t, isvc, "spec", "predictor")
	if got := get[int](t, pred, "canaryTrafficPercent"); got != 10 {
		t.Errorf("canaryTrafficPercent %d", got)
	}
	c := get[object](t, pred, "containers", 0)
	if got := env(t, c)["PETBREED_MODEL"]; got != "models:/pet-breed@challenger" {
		t.Errorf("the canary revision serves %q", got)
	}
	if got := env(t, get[object](t, prod["InferenceService/petbreed"], "spec", "predictor", "containers", 0))["PETBREED_MODEL"]; got != "" {
		t.Errorf("prod's InferenceService sets PETBREED_MODEL=%q in env (it comes from the ConfigMap)", got)
	}
	// Only the InferenceService changes.
	for k, o := range prod {
		if k != "InferenceService/petbreed" && !reflect.DeepEqual(o, canary[k]) {
			t.Errorf("%s differs from prod's", k)
		}
	}
	if len(canary) != len(prod) {
		t.Errorf("%d objects, prod has %d", len(canary), len(prod))
	}
}
