package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
	"petbreed/internal/testutil/mlflowserver"
)

// The command line against a real MLflow server (sqlite backend), as a user
// runs it with MLFLOW_TRACKING_URI: the default pipeline, runs and models,
// predict with models:/ and runs:/ URIs (the model downloaded once, then
// cached), serve polling the alias and reloading on a move, the page's
// experiments and registry read from the server, a promotion with the admin
// token moving the server's alias, and sync to a file store and back. And
// what fails: a model that does not exist, a missing or wrong token (a
// gateway in front of the server answering 401/403), a slow server (the
// timeout), a server that is not there.
func TestMLflowServerCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an MLflow server and runs the pipeline")
	}
	wait := mlflowserver.StartAsync(t, "sqlite")
	bin := testutil.Petbreed(t)
	srv := wait()[0]
	proxy := mlflowserver.NewProxy(t, srv.URL)
	dir := t.TempDir()
	root := testassets.Root(t)
	cache := filepath.Join(dir, "cache")
	baseEnv := []string{"MLFLOW_TRACKING_URI=" + proxy.URL, "PETBREED_CACHE=" + cache,
		"MLFLOW_TRACKING_TOKEN=", "MLFLOW_TRACKING_USERNAME=", "MLFLOW_TRACKING_PASSWORD="}
	petbreed := func(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = root // where the binary finds the ONNX Runtime library
		cmd.Env = append(append(os.Environ(), baseEnv...), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String(), errb.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, out.String(), errb.String()
	}
	must := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		code, out, errs := petbreed(t, env, args...)
		if code != 0 {
			t.Fatalf("petbreed %s: exit %d\n%s\n%s\nserver log:\n%s", strings.Join(args, " "), code, out, errs, srv.Log())
		}
		return out
	}

	start := time.Now()
	must(t, nil, "pipeline", "--data", testassets.Path(t, "pets-3breeds"),
		"--backbone", testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx"))
	_, byRoute := proxy.Counts()
	t.Logf("pipeline against the server (cold features): %v, %d HTTP calls\n%s", time.Since(start).Round(time.Millisecond), proxy.Total(), byRoute)
	versions := srv.Versions(t, "pet-breed")
	if len(versions) != 1 || srv.Alias(t, "pet-breed", "champion") != "1" {
		t.Fatalf("after the pipeline: versions %+v, champion %q", versions, srv.Alias(t, "pet-breed", "champion"))
	}
	champion := versions[0].RunID
	nRuns := len(srv.Runs(t, srv.ExperimentID(t, "pet-breed")))

	t.Run("runs and models", func(t *testing.T) {
		out := must(t, nil, "runs", "--sort", "final_val_acc")
		if n := strings.Count(out, "FINISHED"); n != nRuns || n < 2 || !strings.Contains(out, champion[:8]) {
			t.Errorf("runs: %d FINISHED, want the server's %d with %s:\n%s", n, nRuns, champion[:8], out)
		}
		out = must(t, nil, "models", "--json")
		var vs []struct {
			Version int
			Aliases []string
			RunID   string
		}
		if err := json.Unmarshal([]byte(out), &vs); err != nil || len(vs) != 1 || vs[0].RunID != champion || strings.Join(vs[0].Aliases, ",") != "champion" {
			t.Errorf("models --json: %v\n%s", err, out)
		}
	})

	img := testassets.Path(t, "pets-3breeds", "images", "Bengal_1.jpg")
	var want string
	t.Run("predict", func(t *testing.T) {
		fresh := []string{"PETBREED_CACHE=" + filepath.Join(dir, "predict-cache")}
		proxy.Reset()
		t0 := time.Now()
		want = predictions(t, must(t, fresh, "predict", "--json", img)) // models:/pet-breed@champion
		cold, coldCalls := time.Since(t0), proxy.Total()
		proxy.Reset()
		t0 = time.Now()
		again := predictions(t, must(t, fresh, "predict", "--json", img))
		cached, cachedCalls := time.Since(t0), proxy.Total()
		t.Logf("predict models:/pet-breed@champion: cold %v (%d calls), cached %v (%d calls)", cold.Round(time.Millisecond), coldCalls, cached.Round(time.Millisecond), cachedCalls)
		if again != want || !strings.Contains(want, "Bengal") {
			t.Errorf("predict:\n%s\nagain:\n%s", want, again)
		}
		if cachedCalls >= coldCalls {
			t.Errorf("the cached predict made %d calls, the cold one %d: the model was downloaded again", cachedCalls, coldCalls)
		}
		for _, uri := range []string{"models:/pet-breed/1", "runs:/" + champion + "/model"} {
			if got := predictions(t, must(t, fresh, "predict", "--json", "--model", uri, img)); got != want {
				t.Errorf("predict --model %s:\n%s\nwant\n%s", uri, got, want)
			}
		}
	})

	t.Run("failures", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			setup func()
			env   []string
			model string
			want  []string
		}{
			{"no such model", nil, nil, "models:/nope@champion", []string{"nope", "not found"}},
			{"no such version", nil, nil, "models:/pet-breed/7", []string{"pet-breed", "7"}},
			{"no token", func() { proxy.RequireToken("s3cret") }, nil, "", []string{"401"}},
			{"wrong token", func() { proxy.RequireToken("s3cret") }, []string{"MLFLOW_TRACKING_TOKEN=wrong"}, "", []string{"403"}},
			{"slow server", func() { proxy.SetDelay(3 * time.Second) },
				[]string{"MLFLOW_HTTP_REQUEST_TIMEOUT=0.5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES=1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=0.1"}, "", []string{"timeout|deadline exceeded", "gave up after 1 retries"}},
			{"no server", nil, []string{"MLFLOW_TRACKING_URI=http://127.0.0.1:9"}, "", []string{"http://127.0.0.1:9"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				proxy.RequireToken("")
				proxy.SetDelay(0)
				defer proxy.RequireToken("")
				defer proxy.SetDelay(0)
				if tc.setup != nil {
					tc.setup()
				}
				model := tc.model
				if model == "" {
					model = "models:/pet-breed@champion"
				}
				fresh := append([]string{"PETBREED_CACHE=" + t.TempDir()}, tc.env...)
				t0 := time.Now()
				code, out, errs := petbreed(t, fresh, "predict", "--model", model, img)
				took := time.Since(t0)
				if code != 1 || out != "" {
					t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
				}
				for _, w := range tc.want { // "a|b": either
					said := false
					for _, alt := range strings.Split(w, "|") {
						said = said || strings.Contains(errs, alt)
					}
					if !said {
						t.Errorf("stderr does not say %q:\n%s", w, errs)
					}
				}
				if strings.Contains(errs, "train one") && tc.name != "no such model" {
					t.Errorf("a failure to reach the model is not a missing model; stderr suggests training one:\n%s", errs)
				}
				if took > 30*time.Second {
					t.Errorf("took %v", took)
				}
				t.Logf("%v: %s", took.Round(time.Millisecond), strings.TrimSpace(errs))
			})
		}
		// With the right token, it works through the gateway.
		proxy.RequireToken("s3cret")
		defer proxy.RequireToken("")
		if got := predictions(t, must(t, []string{"MLFLOW_TRACKING_TOKEN=s3cret", "PETBREED_CACHE=" + t.TempDir()}, "predict", "--json", img)); got != want {
			t.Errorf("with the token:\n%s\nwant\n%s", got, want)
		}
	})

	t.Run("serve", func(t *testing.T) {
		env := append(append([]string{}, baseEnv...), "PETBREED_ADMIN_TOKEN=adm1n")
		url := testutil.StartServe(t, root, env, "--poll", "200ms")
		health := func() string {
			var h struct {
				Model struct {
					Version string `json:"version"`
				} `json:"model"`
			}
			getJSON(t, url+"/api/health", &h)
			return h.Model.Version
		}
		if v := health(); v != "1" {
			t.Fatalf("serving version %q, want 1", v)
		}
		// The page's experiments and registry, read from the server.
		var runs struct {
			Runs []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"runs"`
		}
		getJSON(t, url+"/api/runs", &runs)
		if len(runs.Runs) != nRuns {
			t.Errorf("/api/runs: %d runs, want %d", len(runs.Runs), nRuns)
		}
		// One run: its histories (metrics/get-history) and evaluations and
		// classes (artifacts), as the server's own API gives them.
		var run struct {
			History map[string][]struct {
				Step  int64   `json:"step"`
				Value float64 `json:"value"`
			} `json:"history"`
			Evaluation map[string]*struct {
				Confusion [][]int `json:"confusion"`
			} `json:"evaluation"`
			Classes []string `json:"classes"`
		}
		getJSON(t, url+"/api/runs/"+champion, &run)
		want := srv.History(t, champion, "train_loss") // the champion is a refit: no validation split
		got := run.History["train_loss"]
		if len(got) != len(want) || len(want) == 0 {
			t.Errorf("/api/runs/%s: train_loss has %d points, the server %d", champion, len(got), len(want))
		}
		for i := range min(len(got), len(want)) {
			if got[i].Step != want[i].Step || got[i].Value != want[i].Value {
				t.Errorf("train_loss[%d]: page %+v, server %+v", i, got[i], want[i])
			}
		}
		if len(run.Classes) != 3 || len(run.Evaluation) == 0 {
			t.Errorf("/api/runs/%s: classes %v, evaluations %d (from the run's artifacts)", champion, run.Classes, len(run.Evaluation))
		}
		for split, e := range run.Evaluation {
			if e == nil || len(e.Confusion) != 3 {
				t.Errorf("/api/runs/%s: %s confusion matrix %+v", champion, split, e)
			}
		}
		// A new version on the server, the alias moved there by MLflow's API:
		// the server polls it and reloads.
		var created struct {
			Version mlflowserver.ModelVersion `json:"model_version"`
		}
		srv.Must(t, "POST", "mlflow/model-versions/create", nil,
			map[string]string{"name": "pet-breed", "source": versions[0].Source, "run_id": champion}, &created)
		srv.Must(t, "POST", "mlflow/registered-models/alias", nil,
			map[string]string{"name": "pet-breed", "alias": "champion", "version": created.Version.Version}, nil)
		if !eventually(func() bool { return health() == created.Version.Version }) {
			t.Fatalf("the alias moved to %s on the server; serve still serves %q", created.Version.Version, health())
		}
		var models struct {
			Aliases  map[string]int `json:"aliases"`
			Versions []struct {
				Version int `json:"version"`
			} `json:"versions"`
		}
		getJSON(t, url+"/api/models", &models)
		if len(models.Versions) != 2 || models.Aliases["champion"] != 2 {
			t.Errorf("/api/models: %+v", models)
		}
		// A promotion with the admin token moves the server's alias back.
		for _, tc := range []struct {
			token string
			code  int
		}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"adm1n", http.StatusOK}} {
			req, _ := http.NewRequest("POST", url+"/api/models/pet-breed/aliases/champion", strings.NewReader(`{"version": 1}`))
			req.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("promote with token %q: %d %s, want %d", tc.token, resp.StatusCode, body, tc.code)
			}
		}
		if a := srv.Alias(t, "pet-breed", "champion"); a != "1" {
			t.Errorf("after the promotion the server's champion is %q, want 1", a)
		}
		if !eventually(func() bool { return health() == "1" }) {
			t.Errorf("after the promotion serve serves %q, want 1", health())
		}
	})

	t.Run("sync", func(t *testing.T) {
		local := filepath.Join(dir, "offline")
		out := must(t, nil, "sync", proxy.URL, local, "--registry")
		if !strings.Contains(out, fmt.Sprintf("copied %d of %d runs", nRuns, nRuns)) || !strings.Contains(out, "alias pet-breed@champion") {
			t.Errorf("sync server → file store:\n%s", out)
		}
		if got := predictions(t, must(t, []string{"MLFLOW_TRACKING_URI=" + local}, "predict", "--json", img)); got != want {
			t.Errorf("predict from the synced store:\n%s\nwant\n%s", got, want)
		}
		out = must(t, nil, "sync", local, proxy.URL, "--registry")
		if !strings.Contains(out, fmt.Sprintf("copied 0 of %d runs", nRuns)) {
			t.Errorf("sync back:\n%s", out)
		}
		if n := len(srv.Versions(t, "pet-breed")); n != 2 {
			t.Errorf("sync back registered versions: %d, want the 2 there were", n)
		}
	})
}

// predictions is what predict --json printed with its timing and model
// URI cut, to compare the answers of several runs.
func predictions(t *testing.T, out string) string {
	t.Helper()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var p struct {
			File        string          `json:"file"`
			Predictions json.RawMessage `json:"predictions"`
		}
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("predict --json printed %q: %v", line, err)
		}
		got = append(got, p.File+" "+string(p.Predictions))
	}
	return strings.Join(got, "\n")
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, b)
	}
}

// eventually polls cond for up to 30 s.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
