// Package web is petbreed's web page and the JSON endpoints of its
// experiments view.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary
// (static/): no build step, nothing loaded from another origin (the
// Content-Security-Policy says so). It classifies images chosen by file
// picker, drag and drop, paste or a phone's camera, shows what the model
// sees and resizes images, all through the model server's own endpoints
// (/api/predict, /api/preprocess, /api/resize, /api/health), each result
// asks "Is this right?" and sends the true breed to the server's POST
// /api/feedback (static/feedback.js), its A/B view compares the versions the
// server splits traffic between through the server's GET /api/ab (package
// ab's report and feedback, mounted by serve when it keeps a prediction
// log), and it compares the experiments tracked in the MLflow
// file store through the endpoints this package adds:
//
//	GET  /api/runs[?experiment=pet-breed&model=pet-breed]   runs, newest first
//	GET  /api/runs/{id}[?model=pet-breed]                   one run, its metric history and evaluation
//	GET  /api/models[?name=pet-breed]                       the registry: versions and aliases
//	POST /api/models/{name}/aliases/{alias}  {"version": N} move an alias (admin token)
//
// Errors are JSON {"error": ..., "detail": ...} with their status: 400 bad
// parameters, 401 a missing or wrong admin token, 404 an unknown
// experiment, run, model or version (and every endpoint when tracking is not
// configured, with error "tracking not configured"), 422 a promotion to a
// version whose model does not load (Config.Verify: by default a trial load
// in ONNX Runtime; the alias does not move), 500 a store that cannot be
// read.
//
// The model server mounts it in front of its own handler:
//
//	mux := http.NewServeMux()
//	web.New(web.Config{Store: store, AdminToken: token, OnPromote: reload}).Register(mux)
//	mux.Handle("/", srv.Handler()) // /api/predict, /api/health, /v2/..., /metrics
//
// Register claims GET / and GET /static/, so the server's own placeholder
// page must not be registered on the same mux.
package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"petbreed/internal/classify"
	"petbreed/internal/httpjson"
	"petbreed/internal/tracking"
)

// Defaults of the query parameters.
const (
	DefaultExperiment = "pet-breed"
	DefaultModel      = "pet-breed"
	ChampionAlias     = tracking.ChampionAlias
)

// Config configures the page and its endpoints.
type Config struct {
	// Store is the tracking backend of the experiments view (the MLflow
	// file store, or trackingtest's fake in unit tests); nil: the view
	// says tracking is not configured (the endpoints answer 404).
	Store tracking.Browser
	// AdminToken enables POST /api/models/{name}/aliases/{alias} for
	// requests bearing it (Authorization: Bearer TOKEN); "" turns it off
	// (404).
	AdminToken string
	// OnPromote, when set, is called after an alias was moved, before the
	// request is answered (the server reloads its model there).
	OnPromote func(name, alias string, version int)
	// Verify, called before an alias moves, says whether the version can
	// be served; its error refuses the promotion (422 "model does not
	// load", the alias left alone). Nil: TrialLoad(Store, the default
	// classify options), which loads the version in ONNX Runtime. The
	// server passes TrialLoad with its own threads and labels.
	Verify func(ctx context.Context, name string, version int) error
	// Logger receives promotions and the store's failures; nil discards.
	Logger *slog.Logger
}

// Web serves the page and the experiments endpoints.
type Web struct {
	cfg    Config
	log    *slog.Logger
	static map[string]staticFile // by path under static/
}

type staticFile struct {
	data []byte
	etag string
}

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows nothing from another origin: the page works
// offline. Images come from this server or from blob: URLs of the user's
// own files.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// New builds the handlers.
func New(cfg Config) *Web {
	h := &Web{cfg: cfg, log: cfg.Logger, static: map[string]staticFile{}}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if h.cfg.Verify == nil && h.cfg.Store != nil {
		h.cfg.Verify = TrialLoad(h.cfg.Store, classify.Options{})
	}
	sub, _ := fs.Sub(staticFS, "static")
	fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h.static[p] = staticFile{data: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return h
}

// Register adds the page and the endpoints to mux (Go 1.22 patterns). The
// model server's routes (/api/predict, /api/health, ...) stay the server's.
func (h *Web) Register(mux *http.ServeMux) {
	handlers := []http.HandlerFunc{h.handleIndex, h.handleStatic, h.handleRuns, h.handleRun, h.handleModels, h.handlePromote}
	for i, r := range h.Routes() {
		mux.HandleFunc(r, handlers[i])
	}
}

// Routes lists the patterns Register adds, "METHOD PATTERN".
func (h *Web) Routes() []string {
	return []string{
		"GET /{$}",
		"GET /static/{path...}",
		"GET /api/runs",
		"GET /api/runs/{id}",
		"GET /api/models",
		"POST /api/models/{name}/aliases/{alias}",
	}
}

// --- the page ---

func (h *Web) handleIndex(w http.ResponseWriter, r *http.Request) {
	h.serveStatic(w, r, "index.html")
}

func (h *Web) handleStatic(w http.ResponseWriter, r *http.Request) {
	h.serveStatic(w, r, strings.TrimPrefix(r.URL.Path, "/static/"))
}

func (h *Web) serveStatic(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := h.static[name]
	if !ok {
		writeError(w, errorf(http.StatusNotFound, "not found", "no file %q", path.Clean("/static/"+name)))
		return
	}
	hd := w.Header()
	hd.Set("ETag", f.etag)
	hd.Set("Cache-Control", "no-cache") // revalidated with the ETag: a new binary is seen at once
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if strings.HasSuffix(name, ".html") {
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}

// --- errors ---

// apiError is an answer with its status.
type apiError = httpjson.Error

var errorf = httpjson.Errorf

var errNoTracking = errorf(http.StatusNotFound, "tracking not configured",
	"the server has no MLflow tracking store: set MLFLOW_TRACKING_URI")

// storeError maps a store error: ErrNotFound is 404, anything else 500.
func storeError(err error) *apiError {
	if errors.Is(err, tracking.ErrNotFound) {
		return errorf(http.StatusNotFound, "not found", "%v", err)
	}
	return &apiError{Status: http.StatusInternalServerError, Msg: "cannot read the tracking store", Detail: err.Error(), Cause: err}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	httpjson.Write(w, status, v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Cache-Control", "no-store")
	httpjson.WriteError(w, e)
}

func (h *Web) fail(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.Status >= 500 {
		h.log.Error("web: request failed", "method", r.Method, "path", r.URL.Path, "err", e.Cause)
	}
	writeError(w, e)
}

// --- JSON shapes ---

// number is a float that encodes NaN and infinities (a diverged loss) as
// null, which JSON cannot otherwise carry.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// RunJSON is a run in /api/runs and /api/runs/{id}.
type RunJSON struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	ExperimentID string            `json:"experiment_id"`
	Status       string            `json:"status"`
	Start        time.Time         `json:"start"`
	End          *time.Time        `json:"end"`        // null while running
	DurationS    *float64          `json:"duration_s"` // null while running
	Params       map[string]string `json:"params"`
	Metrics      map[string]number `json:"metrics"` // latest value of each
	Tags         map[string]string `json:"tags"`
	// Champion: the run of the version the champion alias points to.
	Champion bool `json:"champion"`
	// Selected: the experiment chosen by validation whose refit run is the
	// champion (the pipeline's petbreed.champion_run tag names it).
	Selected bool `json:"selected"`
	// Versions are the registered model's versions made from this run.
	Versions []int `json:"versions"`
}

// champion is what the registry says about the champion alias.
type champion struct {
	version int
	runID   string
	byRun   map[string][]int // registered versions by run id
}

// championOf reads the registered model's versions and champion alias; a
// model that does not exist (yet) has none.
func (h *Web) championOf(model string) (champion, *apiError) {
	c := champion{byRun: map[string][]int{}}
	if !validName(model) {
		return c, errorf(http.StatusBadRequest, "bad parameter", "model=%q is not a registered model name", model)
	}
	vs, err := h.cfg.Store.ModelVersions(model)
	if errors.Is(err, tracking.ErrNotFound) {
		return c, nil
	}
	if err != nil {
		return c, storeError(err)
	}
	for _, v := range vs {
		if v.RunID != "" {
			c.byRun[v.RunID] = append(c.byRun[v.RunID], v.Version)
		}
		for _, a := range v.Aliases {
			if a == ChampionAlias {
				c.version, c.runID = v.Version, v.RunID
			}
		}
	}
	return c, nil
}

func runJSON(ri *tracking.RunInfo, c champion) RunJSON {
	out := RunJSON{
		ID: ri.ID, Name: ri.Name, ExperimentID: ri.ExperimentID, Status: ri.Status.String(),
		Start: ri.Start.UTC(), Params: ri.Params, Tags: ri.Tags, Metrics: make(map[string]number, len(ri.Metrics)),
		Champion: c.runID != "" && ri.ID == c.runID,
		Selected: c.runID != "" && ri.ID != c.runID && ri.Tags[tracking.TagChampionRun] == c.runID,
		Versions: c.byRun[ri.ID],
	}
	if out.Versions == nil {
		out.Versions = []int{}
	}
	for k, v := range ri.Metrics {
		out.Metrics[k] = number(v)
	}
	if !ri.End.IsZero() {
		end := ri.End.UTC()
		d := ri.End.Sub(ri.Start).Seconds()
		out.End, out.DurationS = &end, &d
	}
	return out
}

// --- GET /api/runs ---

type experimentJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (h *Web) handleRuns(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Store == nil {
		h.fail(w, r, errNoTracking)
		return
	}
	q := r.URL.Query()
	want := orDefault(q.Get("experiment"), DefaultExperiment)
	exps, err := h.cfg.Store.Experiments()
	if err != nil {
		h.fail(w, r, storeError(err))
		return
	}
	var exp *tracking.ExperimentInfo
	list := make([]experimentJSON, 0, len(exps))
	for i, e := range exps {
		list = append(list, experimentJSON{e.ID, e.Name})
		if exp == nil && (e.Name == want || e.ID == want) {
			exp = &exps[i]
		}
	}
	if exp == nil {
		h.fail(w, r, errorf(http.StatusNotFound, "not found", "no experiment %q", want))
		return
	}
	model := orDefault(q.Get("model"), DefaultModel)
	c, aerr := h.championOf(model)
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	runs, err := h.cfg.Store.Runs(exp.ID)
	if err != nil {
		h.fail(w, r, storeError(err))
		return
	}
	out := make([]RunJSON, len(runs))
	for i := range runs {
		out[i] = runJSON(&runs[i], c)
	}
	writeJSON(w, http.StatusOK, struct {
		Experiment  experimentJSON   `json:"experiment"`
		Experiments []experimentJSON `json:"experiments"`
		Model       string           `json:"model"`
		Champion    *int             `json:"champion_version"`
		Runs        []RunJSON        `json:"runs"`
	}{experimentJSON{exp.ID, exp.Name}, list, model, optInt(c.version), out})
}

// --- GET /api/runs/{id} ---

// HistoryKeys are the per-epoch metrics /api/runs/{id} returns in full.
var HistoryKeys = tracking.HistoryMetrics

type pointJSON struct {
	Step      int64     `json:"step"`
	Value     number    `json:"value"`
	Timestamp time.Time `json:"timestamp"`
}

// EvaluationJSON is a split's evaluation, from reports/<split>.json.
type EvaluationJSON struct {
	Split     string          `json:"split"`
	Labels    []string        `json:"labels"`
	Confusion [][]int         `json:"confusion"` // [true][predicted]
	Accuracy  *number         `json:"accuracy"`
	PerClass  []ClassJSON     `json:"per_class"`
	Report    json.RawMessage `json:"report,omitempty"` // as logged: precision, recall, f1-score, support
}

// ClassJSON is one class's accuracy (its recall): correct of total.
type ClassJSON struct {
	Label    string  `json:"label"`
	Correct  int     `json:"correct"`
	Total    int     `json:"total"`
	Accuracy *number `json:"accuracy"` // null without examples
}

type runDetailJSON struct {
	RunJSON
	User           string                     `json:"user"`
	ArtifactURI    string                     `json:"artifact_uri,omitempty"` // a path in the store: for the admin token only
	LifecycleStage string                     `json:"lifecycle_stage"`
	History        map[string][]pointJSON     `json:"history"`
	Evaluation     map[string]*EvaluationJSON `json:"evaluation"`
	Classes        []string                   `json:"classes"`
	Warnings       []string                   `json:"warnings,omitempty"`
}

var runIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][\w\-]{0,255}$`)

func (h *Web) handleRun(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Store == nil {
		h.fail(w, r, errNoTracking)
		return
	}
	id := r.PathValue("id")
	if !runIDPattern.MatchString(id) {
		h.fail(w, r, errorf(http.StatusBadRequest, "bad parameter", "%q is not a run id", id))
		return
	}
	ri, err := h.cfg.Store.GetRun(id)
	if err != nil {
		h.fail(w, r, storeError(err))
		return
	}
	c, aerr := h.championOf(orDefault(r.URL.Query().Get("model"), DefaultModel))
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	out := runDetailJSON{
		RunJSON: runJSON(ri, c), User: ri.User, LifecycleStage: ri.LifecycleStage,
		History: map[string][]pointJSON{}, Evaluation: map[string]*EvaluationJSON{}, Classes: []string{},
	}
	if httpjson.Bearer(r, h.cfg.AdminToken) {
		out.ArtifactURI = ri.ArtifactURI
	}
	for _, k := range HistoryKeys {
		pts, err := h.cfg.Store.MetricHistory(id, k)
		if err != nil {
			h.fail(w, r, storeError(err))
			return
		}
		hist := make([]pointJSON, len(pts))
		for i, p := range pts {
			hist[i] = pointJSON{p.Step, number(p.Value), p.Timestamp.UTC()}
		}
		sort.SliceStable(hist, func(i, j int) bool { return hist[i].Step < hist[j].Step })
		out.History[k] = hist
	}
	for _, split := range []string{"val", "test"} {
		ev, err := h.readEvaluation(id, split)
		if err != nil {
			out.Warnings = append(out.Warnings, err.Error())
		}
		if ev != nil {
			out.Evaluation[split] = ev
		}
	}
	var labels struct {
		Classes []string `json:"classes"`
	}
	if err := h.readJSONArtifact(id, tracking.ArtifactClassLabels, &labels); err != nil {
		out.Warnings = append(out.Warnings, err.Error())
	}
	out.Classes = labels.Classes
	if len(out.Classes) == 0 {
		out.Classes = []string{}
		for _, ev := range out.Evaluation {
			out.Classes = ev.Labels
			break
		}
	}
	for _, warn := range out.Warnings {
		h.log.Warn("web: run artifacts", "run", id, "warning", warn)
	}
	writeJSON(w, http.StatusOK, out)
}

// maxArtifact bounds the JSON artifacts read (a 37-class report is ~10 KB).
const maxArtifact = 16 << 20

// readJSONArtifact decodes a run's JSON artifact, read through the store; a
// missing one is not an error (v is left as is).
func (h *Web) readJSONArtifact(runID, name string, v any) error {
	rc, err := h.cfg.Store.OpenArtifact(runID, name)
	if errors.Is(err, tracking.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxArtifact+1))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxArtifact {
		return fmt.Errorf("%s is over %d bytes", path.Base(name), maxArtifact)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

// readEvaluation reads a run's reports/<split>.json ({"split", "confusion",
// "labels", "report"}) and adds each class's accuracy; nil when absent.
func (h *Web) readEvaluation(runID, split string) (*EvaluationJSON, error) {
	p := tracking.ArtifactReport(split)
	var raw struct {
		Split     string          `json:"split"`
		Confusion [][]int         `json:"confusion"`
		Labels    []string        `json:"labels"`
		Report    json.RawMessage `json:"report"`
	}
	if err := h.readJSONArtifact(runID, p, &raw); err != nil {
		return nil, err
	}
	if raw.Confusion == nil && raw.Labels == nil {
		return nil, nil
	}
	n := len(raw.Labels)
	if len(raw.Confusion) != n {
		return nil, fmt.Errorf("%s: %d labels but %d confusion rows", path.Base(p), n, len(raw.Confusion))
	}
	ev := &EvaluationJSON{Split: raw.Split, Labels: raw.Labels, Confusion: raw.Confusion, Report: raw.Report, PerClass: make([]ClassJSON, n)}
	if ev.Split == "" {
		ev.Split = split
	}
	correct, total := 0, 0
	for i, row := range raw.Confusion {
		if len(row) != n {
			return nil, fmt.Errorf("%s: confusion row %d has %d cells, want %d", path.Base(p), i, len(row), n)
		}
		sum := 0
		for _, c := range row {
			sum += c
		}
		ev.PerClass[i] = ClassJSON{Label: raw.Labels[i], Correct: row[i], Total: sum, Accuracy: ratio(row[i], sum)}
		correct += row[i]
		total += sum
	}
	ev.Accuracy = ratio(correct, total)
	return ev, nil
}

func ratio(a, b int) *number {
	if b == 0 {
		return nil
	}
	v := number(float64(a) / float64(b))
	return &v
}

// --- GET /api/models ---

// VersionJSON is one registered model version.
type VersionJSON struct {
	Version     int               `json:"version"`
	Aliases     []string          `json:"aliases"`
	RunID       string            `json:"run_id"`
	RunName     string            `json:"run_name,omitempty"`
	Metrics     map[string]number `json:"metrics,omitempty"` // its run's, when the run exists
	Created     time.Time         `json:"created"`
	Updated     time.Time         `json:"updated"`
	Source      string            `json:"source"`
	Status      string            `json:"status"`
	Stage       string            `json:"stage"`
	Description string            `json:"description,omitempty"`
}

// ModelsJSON is the registry's state for one registered model.
type ModelsJSON struct {
	Name             string         `json:"name"`
	RegisteredModels []string       `json:"registered_models"`
	Aliases          map[string]int `json:"aliases"`
	Versions         []VersionJSON  `json:"versions"` // newest first
	// Admin reports whether aliases can be moved here (an admin token is
	// configured); the token itself is never sent.
	Admin bool `json:"admin"`
}

func (h *Web) models(name string) (*ModelsJSON, *apiError) {
	if !validName(name) {
		return nil, errorf(http.StatusBadRequest, "bad parameter", "%q is not a registered model name", name)
	}
	names, err := h.cfg.Store.RegisteredModels()
	if err != nil {
		return nil, storeError(err)
	}
	vs, err := h.cfg.Store.ModelVersions(name)
	if err != nil {
		return nil, storeError(err)
	}
	out := &ModelsJSON{Name: name, RegisteredModels: names, Aliases: map[string]int{}, Versions: []VersionJSON{},
		Admin: h.cfg.AdminToken != ""}
	if out.RegisteredModels == nil {
		out.RegisteredModels = []string{}
	}
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		vj := VersionJSON{Version: v.Version, Aliases: v.Aliases, RunID: v.RunID, Created: v.Created.UTC(),
			Updated: v.Updated.UTC(), Source: v.Source, Status: v.Status, Stage: v.Stage, Description: v.Description}
		if vj.Aliases == nil {
			vj.Aliases = []string{}
		}
		for _, a := range v.Aliases {
			out.Aliases[a] = v.Version
		}
		if v.RunID != "" {
			if ri, err := h.cfg.Store.GetRun(v.RunID); err == nil {
				vj.RunName = ri.Name
				vj.Metrics = map[string]number{}
				for k, m := range ri.Metrics {
					vj.Metrics[k] = number(m)
				}
			}
		}
		out.Versions = append(out.Versions, vj)
	}
	return out, nil
}

func (h *Web) handleModels(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Store == nil {
		h.fail(w, r, errNoTracking)
		return
	}
	out, aerr := h.models(orDefault(r.URL.Query().Get("name"), DefaultModel))
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// --- POST /api/models/{name}/aliases/{alias} ---

var (
	aliasPattern        = regexp.MustCompile(`^[\p{L}\p{N}_\-]{1,255}$`)
	aliasVersionPattern = regexp.MustCompile(`^[vV]\d+$`)
)

// validAlias is MLflow's rule: letters, digits, '_' and '-'; not "latest",
// not a version ("v3").
func validAlias(a string) bool {
	return aliasPattern.MatchString(a) && !strings.EqualFold(a, "latest") && !aliasVersionPattern.MatchString(a)
}

func validName(n string) bool {
	return n != "" && n != "." && n != ".." && utf8.ValidString(n) && !strings.ContainsAny(n, "/\\%\x00")
}

// authorized checks the admin token; without one configured the endpoint
// does not exist (404).
func (h *Web) authorized(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.AdminToken == "" {
		h.fail(w, r, errorf(http.StatusNotFound, "not found", "promotion is off: no admin token is configured"))
		return false
	}
	if !httpjson.Bearer(r, h.cfg.AdminToken) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="petbreed admin"`)
		h.fail(w, r, errorf(http.StatusUnauthorized, "unauthorized", "an admin token is needed: Authorization: Bearer TOKEN"))
		return false
	}
	return true
}

// PromoteJSON answers a promotion: what moved, and the registry after it.
type PromoteJSON struct {
	Alias    string `json:"alias"`
	Version  int    `json:"version"`
	Previous *int   `json:"previous"` // the version the alias pointed to, if any
	ModelsJSON
}

func (h *Web) handlePromote(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) {
		return
	}
	if h.cfg.Store == nil {
		h.fail(w, r, errNoTracking)
		return
	}
	name, alias := r.PathValue("name"), r.PathValue("alias")
	if !validName(name) {
		h.fail(w, r, errorf(http.StatusBadRequest, "bad parameter", "%q is not a registered model name", name))
		return
	}
	if !validAlias(alias) {
		h.fail(w, r, errorf(http.StatusBadRequest, "bad parameter",
			"%q is not an alias: letters, digits, '_' and '-', not \"latest\" nor a version like \"v2\"", alias))
		return
	}
	var body struct {
		Version *int `json:"version"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&body); err != nil {
		h.fail(w, r, errorf(http.StatusBadRequest, "bad body", "want JSON {\"version\": N}: %v", err))
		return
	}
	if body.Version == nil || *body.Version < 1 {
		h.fail(w, r, errorf(http.StatusBadRequest, "bad body", "want JSON {\"version\": N} with N a version number (1, 2, ...)"))
		return
	}
	version := *body.Version
	if aerr := h.checkVersion(name, version); aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	// The version must load before an alias points to it: a server (this
	// one, after OnPromote, or the next to start) would otherwise fail on
	// it.
	if err := h.cfg.Verify(r.Context(), name, version); err != nil {
		h.log.Warn("web: promotion refused: the version does not load", "model", name, "alias", alias, "version", version, "err", err)
		h.fail(w, r, errorf(http.StatusUnprocessableEntity, "model does not load", "%v", err))
		return
	}
	var previous *int
	if v, err := h.cfg.Store.Alias(name, alias); err == nil {
		previous = &v
	}
	if err := h.cfg.Store.SetAlias(name, alias, version); err != nil {
		h.fail(w, r, storeError(err))
		return
	}
	h.log.Info("web: alias moved", "model", name, "alias", alias, "version", version, "previous", derefOr(previous, 0))
	if h.cfg.OnPromote != nil {
		h.cfg.OnPromote(name, alias, version)
	}
	state, aerr := h.models(name)
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	writeJSON(w, http.StatusOK, PromoteJSON{Alias: alias, Version: version, Previous: previous, ModelsJSON: *state})
}

// checkVersion answers 404 for a model or version the registry does not
// have.
func (h *Web) checkVersion(name string, version int) *apiError {
	vs, err := h.cfg.Store.ModelVersions(name)
	if err != nil {
		return storeError(err)
	}
	for _, v := range vs {
		if v.Version == version {
			return nil
		}
	}
	return errorf(http.StatusNotFound, "not found", "model %q has no version %d", name, version)
}

// --- small helpers ---

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func optInt(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

func derefOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}
