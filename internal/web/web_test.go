package web

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"petbreed/internal/tracking"
)

func newServer(t testing.TB, cfg Config) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	New(cfg).Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

type runsAnswer struct {
	Experiment      experimentJSON   `json:"experiment"`
	Experiments     []experimentJSON `json:"experiments"`
	Model           string           `json:"model"`
	ChampionVersion *int             `json:"champion_version"`
	Runs            []RunJSON        `json:"runs"`
}

type runAnswer struct {
	RunJSON
	History    map[string][]pointJSON     `json:"history"`
	Evaluation map[string]*EvaluationJSON `json:"evaluation"`
	Classes    []string                   `json:"classes"`
	Warnings   []string                   `json:"warnings"`
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestRuns(t *testing.T) {
	sum, st := sharedStore(t)
	ts := newServer(t, Config{Store: st})

	var a runsAnswer
	res := call(t, "GET", ts.URL+"/api/runs", "", "", &a)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if a.Experiment.Name != "pet-breed" || a.Model != "pet-breed" || a.ChampionVersion == nil || *a.ChampionVersion != sum.ModelVersion {
		t.Errorf("experiment %+v, model %q, champion %v; want pet-breed, version %d", a.Experiment, a.Model, a.ChampionVersion, sum.ModelVersion)
	}
	ids := map[string]RunJSON{}
	for _, r := range a.Runs {
		ids[r.ID] = r
	}
	if len(a.Runs) != len(sum.Runs) || len(ids) != len(sum.Runs) {
		t.Fatalf("%d runs (%d distinct), want the pipeline's %d", len(a.Runs), len(ids), len(sum.Runs))
	}
	for i := 1; i < len(a.Runs); i++ {
		if a.Runs[i].Start.After(a.Runs[i-1].Start) {
			t.Errorf("runs not newest first: %v after %v", a.Runs[i].Start, a.Runs[i-1].Start)
		}
	}
	champions, selected := 0, 0
	for _, pr := range sum.Runs {
		r, ok := ids[pr.RunID]
		if !ok {
			t.Errorf("run %s (%s) missing", pr.RunID, pr.Name)
			continue
		}
		if r.Name != pr.Name || r.Status != "FINISHED" {
			t.Errorf("run %s: name %q status %q, want %q FINISHED", r.ID, r.Name, r.Status, pr.Name)
		}
		if r.End == nil || r.DurationS == nil || *r.DurationS < 0 || r.End.Before(r.Start) {
			t.Errorf("run %s: end %v duration %v", r.Name, r.End, r.DurationS)
		}
		hyper := r.Params["lr"] != "" && r.Params["batch_size"] != "" // adam; the exact head (lbfgs) has its grid
		if r.Params["solver"] == "lbfgs" {
			hyper = r.Params["l2_grid"] != ""
		}
		if !hyper || r.Tags[tracking.TagRunName] != pr.Name {
			t.Errorf("run %s: params %v tags %v", r.Name, r.Params, r.Tags)
		}
		if r.Champion {
			champions++
		}
		if r.Selected {
			selected++
		}
		switch r.ID {
		case sum.ChampionRunID:
			if !r.Champion || !slices.Equal(r.Versions, []int{sum.ModelVersion}) {
				t.Errorf("champion run %s: champion %v versions %v", r.Name, r.Champion, r.Versions)
			}
			if !near(float64(r.Metrics["test_acc"]), sum.TestAcc) {
				t.Errorf("champion test_acc %v, want %v", r.Metrics["test_acc"], sum.TestAcc)
			}
		case sum.SelectedRunID:
			if !r.Selected || r.Champion {
				t.Errorf("selected run %s: selected %v champion %v", r.Name, r.Selected, r.Champion)
			}
			if !near(float64(r.Metrics["final_val_acc"]), pr.ValAcc) {
				t.Errorf("selected final_val_acc %v, want %v", r.Metrics["final_val_acc"], pr.ValAcc)
			}
		default:
			if len(r.Versions) != 0 {
				t.Errorf("run %s: versions %v", r.Name, r.Versions)
			}
		}
	}
	if champions != 1 || selected != 1 {
		t.Errorf("%d champions and %d selected runs, want 1 and 1", champions, selected)
	}

	// By experiment id too; unknown experiment; bad model name.
	var b runsAnswer
	if res := call(t, "GET", ts.URL+"/api/runs?experiment="+a.Experiment.ID, "", "", &b); res.StatusCode != 200 || len(b.Runs) != len(a.Runs) {
		t.Errorf("by id: status %d, %d runs", res.StatusCode, len(b.Runs))
	}
	var e errorJSON
	wantError(t, call(t, "GET", ts.URL+"/api/runs?experiment=nope", "", "", &e), e, 404, "unknown experiment")
	e = errorJSON{}
	wantError(t, call(t, "GET", ts.URL+"/api/runs?model=a%2Fb", "", "", &e), e, 400, "bad model name")
	// A model that is not registered: runs, and no champion.
	var c runsAnswer
	if res := call(t, "GET", ts.URL+"/api/runs?model=other", "", "", &c); res.StatusCode != 200 || c.ChampionVersion != nil {
		t.Errorf("unregistered model: status %d, champion %v", res.StatusCode, c.ChampionVersion)
	}
	for _, r := range c.Runs {
		if r.Champion || r.Selected {
			t.Errorf("unregistered model: run %s marked", r.Name)
		}
	}
}

func TestRunDetail(t *testing.T) {
	sum, st := sharedStore(t)
	ts := newServer(t, Config{Store: st})

	// The selected run: validation curves and evaluation.
	var sel runAnswer
	if res := call(t, "GET", ts.URL+"/api/runs/"+sum.SelectedRunID, "", "", &sel); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if !sel.Selected || sel.ID != sum.SelectedRunID || len(sel.Warnings) != 0 {
		t.Errorf("selected %v id %s warnings %v", sel.Selected, sel.ID, sel.Warnings)
	}
	if !slices.Equal(sel.Classes, sum.Classes) {
		t.Errorf("classes %v, want %v", sel.Classes, sum.Classes)
	}
	var epochs int
	for _, pr := range sum.Runs {
		if pr.RunID == sum.SelectedRunID {
			epochs = pr.EpochsRun
		}
	}
	for _, k := range HistoryKeys {
		h := sel.History[k]
		if len(h) != epochs {
			t.Errorf("history %s: %d points, want %d epochs", k, len(h), epochs)
			continue
		}
		want, err := st.MetricHistory(sum.SelectedRunID, k)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range h {
			if p.Step != int64(i+1) || !near(float64(p.Value), want[i].Value) || !p.Timestamp.Equal(want[i].Timestamp) {
				t.Errorf("history %s[%d] = %+v, want step %d value %v", k, i, p, i+1, want[i].Value)
			}
		}
	}
	val := sel.Evaluation["val"]
	if val == nil || sel.Evaluation["test"] != nil {
		t.Fatalf("evaluation %v: want val only", sel.Evaluation)
	}
	if val.Split != "val" || !slices.Equal(val.Labels, sum.Classes) || len(val.Confusion) != len(sum.Classes) {
		t.Fatalf("val evaluation %+v", val)
	}
	total, correct := 0, 0
	for i, row := range val.Confusion {
		rowSum := 0
		for _, n := range row {
			rowSum += n
		}
		pc := val.PerClass[i]
		if pc.Label != sum.Classes[i] || pc.Correct != row[i] || pc.Total != rowSum || pc.Accuracy == nil ||
			!near(float64(*pc.Accuracy), float64(row[i])/float64(rowSum)) {
			t.Errorf("per class %d: %+v for row %v", i, pc, row)
		}
		total += rowSum
		correct += row[i]
	}
	if total != sum.Val || val.Accuracy == nil || !near(float64(*val.Accuracy), float64(sel.Metrics["final_val_acc"])) {
		t.Errorf("val: %d images (want %d), accuracy %v (want %v)", total, sum.Val, val.Accuracy, sel.Metrics["final_val_acc"])
	}
	var report struct {
		Rows []struct {
			Label  string  `json:"label"`
			Recall float64 `json:"recall"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(val.Report, &report); err != nil || len(report.Rows) != len(sum.Classes) {
		t.Errorf("report %s: %v", val.Report, err)
	}

	// The champion (the refit run): train curves only, the test evaluation.
	var ch runAnswer
	if res := call(t, "GET", ts.URL+"/api/runs/"+sum.ChampionRunID, "", "", &ch); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if !ch.Champion || len(ch.History["train_loss"]) == 0 || ch.History["val_loss"] == nil || len(ch.History["val_loss"]) != 0 {
		t.Errorf("champion %v, history train %d val %v", ch.Champion, len(ch.History["train_loss"]), ch.History["val_loss"])
	}
	test := ch.Evaluation["test"]
	if test == nil || ch.Evaluation["val"] != nil || test.Accuracy == nil || !near(float64(*test.Accuracy), sum.TestAcc) {
		t.Errorf("champion evaluation %v (test accuracy want %v)", ch.Evaluation, sum.TestAcc)
	}

	// Errors.
	var e errorJSON
	wantError(t, call(t, "GET", ts.URL+"/api/runs/0123456789abcdef0123456789abcdef", "", "", &e), e, 404, "unknown run")
	e = errorJSON{}
	wantError(t, call(t, "GET", ts.URL+"/api/runs/bad%21id", "", "", &e), e, 400, "malformed run id")
}

func TestModels(t *testing.T) {
	sum, st := sharedStore(t)
	for _, token := range []string{"", "secret"} {
		ts := newServer(t, Config{Store: st, AdminToken: token})
		var m ModelsJSON
		if res := call(t, "GET", ts.URL+"/api/models", "", "", &m); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if m.Name != "pet-breed" || !slices.Equal(m.RegisteredModels, []string{"pet-breed"}) || m.Aliases["champion"] != sum.ModelVersion || m.Admin != (token != "") {
			t.Errorf("models %+v (admin want %v)", m, token != "")
		}
		if len(m.Versions) != 1 {
			t.Fatalf("%d versions, want 1", len(m.Versions))
		}
		v := m.Versions[0]
		if v.Version != sum.ModelVersion || !slices.Equal(v.Aliases, []string{"champion"}) || v.RunID != sum.ChampionRunID ||
			v.RunName != sum.Selected+"-refit" || !strings.HasPrefix(v.Source, "file://") || v.Status != "READY" ||
			time.Since(v.Created) > time.Hour || !near(float64(v.Metrics["test_acc"]), sum.TestAcc) {
			t.Errorf("version %+v", v)
		}
		if strings.Contains(mustJSON(t, m), "secret") {
			t.Error("the answer shows the admin token")
		}
	}
	ts := newServer(t, Config{Store: st})
	var e errorJSON
	wantError(t, call(t, "GET", ts.URL+"/api/models?name=nope", "", "", &e), e, 404, "unknown model")
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPromote(t *testing.T) {
	sum, _, st := storeCopy(t)
	const token = "s3cret-token"
	type hookCall struct {
		name, alias string
		version     int
	}
	var (
		mu    sync.Mutex
		calls []hookCall
	)
	hook := func(name, alias string, version int) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, hookCall{name, alias, version})
	}
	hookCalls := func() []hookCall {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
	url := func(ts *httptest.Server, name, alias string) string {
		return ts.URL + "/api/models/" + name + "/aliases/" + alias
	}

	// No token configured: the endpoint is off, whatever is sent.
	off := newServer(t, Config{Store: st, OnPromote: hook})
	var e errorJSON
	wantError(t, call(t, "POST", url(off, "pet-breed", "champion"), token, `{"version": 2}`, &e), e, 404, "admin off")

	ts := newServer(t, Config{Store: st, AdminToken: token, OnPromote: hook})
	for _, c := range []struct {
		what, name, alias, token, body string
		status                         int
	}{
		{"no token", "pet-breed", "champion", "", `{"version": 2}`, 401},
		{"wrong token", "pet-breed", "champion", "wrong", `{"version": 2}`, 401},
		{"token prefix", "pet-breed", "champion", token[:4], `{"version": 2}`, 401},
		{"bad JSON", "pet-breed", "champion", token, `{"version": `, 400},
		{"no version", "pet-breed", "champion", token, `{}`, 400},
		{"version 0", "pet-breed", "champion", token, `{"version": 0}`, 400},
		{"version text", "pet-breed", "champion", token, `{"version": "2"}`, 400},
		{"alias latest", "pet-breed", "latest", token, `{"version": 2}`, 400},
		{"alias like a version", "pet-breed", "v2", token, `{"version": 2}`, 400},
		{"alias with a dot", "pet-breed", "a.b", token, `{"version": 2}`, 400},
		{"unknown version", "pet-breed", "champion", token, `{"version": 9}`, 404},
		{"unknown model", "nope", "champion", token, `{"version": 1}`, 404},
	} {
		e := errorJSON{}
		res := call(t, "POST", url(ts, c.name, c.alias), c.token, c.body, &e)
		wantError(t, res, e, c.status, c.what)
		if c.status == 401 && res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", c.what)
		}
	}
	if v, err := st.Alias("pet-breed", "champion"); err != nil || v != 1 {
		t.Fatalf("after refused requests, champion = %d, %v; want 1", v, err)
	}
	if c := hookCalls(); len(c) != 0 {
		t.Fatalf("hook called for refused requests: %v", c)
	}

	// Promote version 2.
	var p PromoteJSON
	res := call(t, "POST", url(ts, "pet-breed", "champion"), token, `{"version": 2}`, &p)
	if res.StatusCode != 200 {
		t.Fatalf("promote: status %d", res.StatusCode)
	}
	if p.Alias != "champion" || p.Version != 2 || p.Previous == nil || *p.Previous != 1 || p.Aliases["champion"] != 2 ||
		len(p.Versions) != 2 || p.Versions[0].Version != 2 || !slices.Equal(p.Versions[0].Aliases, []string{"champion"}) ||
		len(p.Versions[1].Aliases) != 0 || p.Versions[0].RunID != sum.SelectedRunID {
		t.Errorf("promote answer %+v", p)
	}
	if v, err := st.Alias("pet-breed", "champion"); err != nil || v != 2 {
		t.Errorf("store: champion = %d, %v; want 2", v, err)
	}
	if c := hookCalls(); !slices.Equal(c, []hookCall{{"pet-breed", "champion", 2}}) {
		t.Errorf("hook calls %v", c)
	}
	// The runs follow: the selected run is now the champion's.
	var a runsAnswer
	call(t, "GET", ts.URL+"/api/runs", "", "", &a)
	for _, r := range a.Runs {
		if r.Champion != (r.ID == sum.SelectedRunID) || r.Selected {
			t.Errorf("after promotion, run %s: champion %v selected %v", r.Name, r.Champion, r.Selected)
		}
	}

	// A new alias has no previous version.
	p = PromoteJSON{}
	if res := call(t, "POST", url(ts, "pet-breed", "staging"), token, `{"version": 1}`, &p); res.StatusCode != 200 || p.Previous != nil || p.Aliases["staging"] != 1 {
		t.Errorf("new alias: status %d, %+v", res.StatusCode, p)
	}
	if c := hookCalls(); len(c) != 2 || c[1] != (hookCall{"pet-breed", "staging", 1}) {
		t.Errorf("hook calls %v", c)
	}
}

func TestNoTracking(t *testing.T) {
	ts := newServer(t, Config{AdminToken: "tok"})
	for _, path := range []string{"/api/runs", "/api/runs/0123456789abcdef0123456789abcdef", "/api/models"} {
		var e errorJSON
		res := call(t, "GET", ts.URL+path, "", "", &e)
		wantError(t, res, e, 404, path)
		if e.Error != "tracking not configured" {
			t.Errorf("%s: error %q", path, e.Error)
		}
	}
	var e errorJSON
	wantError(t, call(t, "POST", ts.URL+"/api/models/pet-breed/aliases/champion", "tok", `{"version": 1}`, &e), e, 404, "promote")
	if res := call(t, "GET", ts.URL+"/", "", "", nil); res.StatusCode != 200 {
		t.Errorf("page: status %d", res.StatusCode)
	}
}

func TestStatic(t *testing.T) {
	ts := newServer(t, Config{})
	res := call(t, "GET", ts.URL+"/", "", "", nil)
	page, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	etag := res.Header.Get("ETag")
	req, _ := http.NewRequest("GET", ts.URL+"/", nil)
	req.Header.Set("If-None-Match", etag)
	if r2, err := http.DefaultClient.Do(req); err != nil || r2.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %v %v", r2.StatusCode, err)
	} else {
		r2.Body.Close()
	}

	// Every file the page names is served, with its type.
	types := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	refs := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(string(page), -1)
	if len(refs) < 3 {
		t.Fatalf("the page names %d static files", len(refs))
	}
	for _, m := range refs {
		res := call(t, "GET", ts.URL+m[1], "", "", nil)
		ext := m[1][strings.LastIndexByte(m[1], '.'):]
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), types[ext]) {
			t.Errorf("%s: status %d, type %q", m[1], res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	// The modules the entry imports are served too.
	app := call(t, "GET", ts.URL+"/static/app.js", "", "", nil)
	body, _ := io.ReadAll(app.Body)
	for _, m := range regexp.MustCompile(`from "\./([^"]+)"`).FindAllStringSubmatch(string(body), -1) {
		if res := call(t, "GET", ts.URL+"/static/"+m[1], "", "", nil); res.StatusCode != 200 {
			t.Errorf("module %s: status %d", m[1], res.StatusCode)
		}
	}
	var e errorJSON
	wantError(t, call(t, "GET", ts.URL+"/static/nope.js", "", "", &e), e, 404, "unknown static file")
}

// TestNoExternalAssets: the page loads nothing from another origin.
func TestNoExternalAssets(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	w := New(Config{})
	for name, f := range w.static {
		text := strings.ReplaceAll(string(f.data), "http://www.w3.org/2000/svg", "")
		if m := external.FindString(text); m != "" {
			t.Errorf("%s refers to %q", name, m)
		}
		if strings.Contains(text, "@import") {
			t.Errorf("%s imports a style sheet", name)
		}
	}
}

func TestNumberJSON(t *testing.T) {
	b, err := json.Marshal(map[string]number{"a": number(math.NaN()), "b": number(math.Inf(1)), "c": 0.25})
	if err != nil || string(b) != `{"a":null,"b":null,"c":0.25}` {
		t.Errorf("%s, %v", b, err)
	}
}

// TestRunHidesPathsWithoutToken: a run's artifact_uri is a path on the
// server's disk: only a holder of the admin token sees it.
func TestRunHidesPathsWithoutToken(t *testing.T) {
	sum, st := sharedStore(t)
	const token = "secret"
	ts := newServer(t, Config{Store: st, AdminToken: token})
	for _, c := range []struct {
		token string
		shown bool
	}{{"", false}, {"wrong", false}, {token, true}} {
		var run map[string]any
		if res := call(t, "GET", ts.URL+"/api/runs/"+sum.ChampionRunID, c.token, "", &run); res.StatusCode != 200 {
			t.Fatalf("token %q: status %d", c.token, res.StatusCode)
		}
		uri, _ := run["artifact_uri"].(string)
		if shown := strings.HasPrefix(uri, "file://"); shown != c.shown {
			t.Errorf("token %q: artifact_uri %q, want shown %v", c.token, uri, c.shown)
		}
	}
}
