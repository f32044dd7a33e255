package serve

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"petbreed/internal/serve/restapi"
	"petbreed/internal/serve/v2"
	"petbreed/internal/tracking"
)

// Defaults of Config's zero fields.
const (
	// DefaultMaxBatch is measured, not round: ONNX Runtime's memory grows
	// with the batch (its arena doubles when it extends), and on
	// MobileNetV2 batches of 12 keep a server under 32 concurrent clients
	// below 140 MB peak RSS where 32 take 185-195 MB, at the same
	// throughput (docs/benchmarks.md).
	DefaultMaxBatch = 12
	DefaultMaxDelay = 2 * time.Millisecond
	DefaultMaxBody  = 10 << 20
	DefaultPoll     = 10 * time.Second
	// DefaultMaxResizePixels bounds /api/resize's output (4096 x 4096).
	DefaultMaxResizePixels = 4096 * 4096
	// DefaultDrainTimeout bounds how long Run waits for requests in flight
	// when it stops.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultMaxPixels is the server's pixel limit, lower than Pillow's
	// (imaging.DefaultMaxPixels, 89 M): a 6000 x 4000 photo passes, and a
	// small file cannot make one decode take more than a few hundred MB.
	DefaultMaxPixels = 25_000_000
	// DefaultMemoryBudget bounds the memory that requests hold at once
	// (bodies, decoded images, tensors), by their declared cost.
	DefaultMemoryBudget = 512 << 20
	// DefaultBudgetWait is how long a request waits for room in the memory
	// budget before it gets 503.
	DefaultBudgetWait = 500 * time.Millisecond
	// DefaultDecodeTimeout bounds one image's decoding.
	DefaultDecodeTimeout = 5 * time.Second
)

// Config configures a Server. Only Model (or Models) is required.
type Config struct {
	// Model is an ONNX file, or a models:/NAME@ALIAS, models:/NAME/VERSION
	// or runs:/ URI resolved through the tracking store at TrackingURI: the
	// one model served when Models is empty.
	Model string
	// Models are several models served side by side (models.go), each
	// loaded and reloaded on its own, split by their weights, or shadows.
	Models []ModelSpec
	// SplitHeader and SplitCookie name a request's sticky unit for the
	// split (default header X-User-Id; "-" for none; no cookie).
	SplitHeader, SplitCookie string
	// Guard bounds the canary guard (guard.go).
	Guard GuardConfig
	// ShadowMax bounds the shadow predictions running at once (default
	// MaxBatch): a copy beyond it is dropped. ShadowTimeout bounds one
	// (default 10 s).
	ShadowMax     int
	ShadowTimeout time.Duration
	// ShadowThreads is a shadow model's ONNX Runtime intra-op threads
	// (default 1: the other cores stay with the answers; at most Threads
	// when that is set).
	ShadowThreads int
	// SeparateBackbones runs each model's whole graph on its own, instead
	// of one backbone for the models that share it (trunk.go).
	SeparateBackbones bool
	// PredictionLog, when set, records every prediction chosen by the split
	// and every shadow answer, and serves POST /api/feedback and GET /api/ab.
	PredictionLog PredictionLog
	// TrackingURI is the MLflow store for models:/ and runs:/ URIs
	// ("" = ./mlruns; the CLI passes $MLFLOW_TRACKING_URI).
	TrackingURI string
	// Labels, when set, name the classes instead of the model's metadata.
	Labels []string
	// MaxBatch is the most images in one model run (default 12); MaxDelay is
	// the longest the first request of a batch waits for others (default
	// 2 ms; negative: never wait).
	MaxBatch int
	MaxDelay time.Duration
	// Queue bounds the images admitted at once (being prepared, waiting or
	// running); a request beyond it gets 503 at once. Default 4 x MaxBatch.
	Queue int
	// Threads is ONNX Runtime's intra-op thread count (0: one per core).
	Threads int
	// MaxBody bounds request bodies, in bytes (default 10 MiB): 413 beyond.
	// It must not exceed MemoryBudget.
	MaxBody int64
	// MaxPixels refuses images whose header declares more pixels (422);
	// 0 means DefaultMaxPixels (25 M).
	MaxPixels int64
	// MemoryBudget bounds the bytes that requests hold at once, each
	// admitted by its declared cost before it is allocated: bodies as they
	// are read (Content-Length when given), decoded images (from their
	// header), tensors and resize outputs. Default 512 MiB. Work beyond it
	// waits up to BudgetWait (default 500 ms; negative: no wait) and then
	// gets 503; a request that alone is over it gets 413 (a body) or 422
	// (an image) at once.
	MemoryBudget int64
	BudgetWait   time.Duration
	// DecodeTimeout bounds the decoding of one image (default 5 s): 422
	// "decode timeout" beyond. The decode also stops when its client goes
	// away.
	DecodeTimeout time.Duration
	// MaxResizePixels bounds /api/resize's output size (default 4096 x 4096).
	MaxResizePixels int
	// Poll is how often a models:/NAME@ALIAS model's alias is checked for a
	// new version (default 10 s; negative: never).
	Poll time.Duration
	// AdminToken enables the admin endpoints (POST /admin/reload) for
	// requests bearing it (Authorization: Bearer TOKEN). Empty: they are off
	// (404).
	AdminToken string
	// Page, when set, serves the web page and its own routes (package web;
	// cmd/petbreed wires it) in place of the placeholder page.
	Page Page
	// DrainTimeout bounds the wait for requests in flight when Run stops
	// (default 30 s).
	DrainTimeout time.Duration
	// Version is the server's version, reported by GET /v2.
	Version string
	// Logger receives the request log (one line per request) and the
	// server's events; nil discards them.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Model == "" && len(c.Models) == 0 {
		return errors.New("serve: no model")
	}
	if err := checkSpecs(c.specs()); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	switch c.SplitHeader {
	case "":
		c.SplitHeader = DefaultSplitHeader
	case "-":
		c.SplitHeader = ""
	}
	c.Guard.setDefaults()
	if c.ShadowTimeout <= 0 {
		c.ShadowTimeout = DefaultShadowTimeout
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxBatch < 1 {
		return fmt.Errorf("serve: max batch %d must be positive", c.MaxBatch)
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.MaxDelay < 0 {
		c.MaxDelay = 0
	}
	if c.Queue == 0 {
		c.Queue = 4 * c.MaxBatch
	}
	if c.Queue < 1 {
		return fmt.Errorf("serve: queue %d must be positive", c.Queue)
	}
	if c.ShadowMax == 0 {
		c.ShadowMax = c.MaxBatch
	}
	if c.ShadowThreads == 0 {
		c.ShadowThreads = 1
	}
	if c.ShadowThreads < 0 {
		return fmt.Errorf("serve: shadow threads %d must not be negative", c.ShadowThreads)
	}
	if c.Threads > 0 && c.ShadowThreads > c.Threads {
		c.ShadowThreads = c.Threads
	}
	if c.ShadowMax < 0 {
		return fmt.Errorf("serve: shadow max %d must not be negative", c.ShadowMax)
	}
	if c.Threads < 0 {
		return fmt.Errorf("serve: threads %d must not be negative", c.Threads)
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.MaxBody < 1 {
		return fmt.Errorf("serve: max body %d must be positive", c.MaxBody)
	}
	if c.MaxPixels == 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = DefaultMemoryBudget
	}
	if c.MemoryBudget < 1 {
		return fmt.Errorf("serve: memory budget %d must be positive", c.MemoryBudget)
	}
	if c.MaxBody > c.MemoryBudget {
		return fmt.Errorf("serve: max body %d is over the memory budget %d: no body that large could be read", c.MaxBody, c.MemoryBudget)
	}
	if c.BudgetWait == 0 {
		c.BudgetWait = DefaultBudgetWait
	}
	if c.DecodeTimeout == 0 {
		c.DecodeTimeout = DefaultDecodeTimeout
	}
	if c.DecodeTimeout < 0 {
		return fmt.Errorf("serve: decode timeout %v must be positive", c.DecodeTimeout)
	}
	if c.MaxResizePixels <= 0 {
		c.MaxResizePixels = DefaultMaxResizePixels
	}
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Server is the model server. Create it with New, then Run it on a
// listener (or mount Handler and call Load yourself).
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	handler http.Handler
	routes  []route
	started time.Time

	// The models served (models.go), fixed at New; each slot holds the
	// model loaded for it now. The split's weights (split.go) are swapped
	// whole; splitMu serialises their changes (admin, guard).
	slots    []*slot
	split    atomic.Pointer[split]
	splitMu  sync.Mutex
	champion int // the slot the guard compares challengers with, -1 if none
	guard    *guard
	infoMu   sync.Mutex // petbreed_model_info's updates

	shadowing atomic.Int64 // shadow predictions running

	// The backbones run for several models (trunk.go), by key.
	trunkMu sync.Mutex
	trunks  map[string]*sharedTrunk
	// shareTolerance bounds a trunk and head's difference from the whole
	// model (sharedTolerance; a test sets it below 0 to refuse sharing).
	shareTolerance float64
	// failInject, set by tests, makes a model's predictions fail.
	failInject func(model string) error

	closed     atomic.Bool // Close was called
	retiring   sync.WaitGroup
	draining   atomic.Bool
	preparing  atomic.Int64  // images admitted and being prepared
	queued     atomic.Int64  // images waiting in a batcher's channel
	admitted   atomic.Int64  // images admitted and not yet answered
	prepSem    chan struct{} // bounds the images being decoded and preprocessed at once
	budget     *budget       // the memory that requests hold
	reqCounter atomic.Uint64
	reqPrefix  string
	calls      sync.Pool // *call: requests' holds on the server (route.go)
	// releasePrepFn is releasePrep, bound once (a method value allocates).
	releasePrepFn func()

	storeOnce sync.Once
	store     tracking.ModelSource // opened on first use
	storeErr  error
}

type reloadError struct {
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// route is one registered endpoint, for the OpenAPI test.
type route struct{ Method, Pattern string }

//go:embed web
var webFS embed.FS

//go:embed openapi.json
var openapiJSON []byte

// New checks cfg and builds the server. It does not load the model: Run
// (or Load) does, so that the server can listen (and say it is not ready)
// while the model loads.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, started: time.Now(), reqPrefix: newRequestPrefix(),
		trunks: map[string]*sharedTrunk{}, shareTolerance: sharedTolerance,
		prepSem: make(chan struct{}, runtime.GOMAXPROCS(0)), budget: newBudget(cfg.MemoryBudget, cfg.BudgetWait)}
	s.metrics = newMetrics(
		func() float64 { return float64(s.queued.Load()) },
		func() float64 { return float64(s.admitted.Load()) },
		func() float64 { return float64(s.budget.inUse()) },
		float64(cfg.MemoryBudget),
	)
	s.budget.onBusy = s.metrics.rejected.Inc
	s.releasePrepFn = s.releasePrep
	specs := cfg.specs()
	s.champion = -1
	for i, sp := range specs {
		s.slots = append(s.slots, &slot{spec: sp, idx: i, shadow: sp.Shadow})
		if !sp.Shadow && (s.champion < 0 || sp.Weight > specs[s.champion].Weight) {
			s.champion = i
		}
	}
	s.guard = newGuard(cfg.Guard, len(s.slots))
	s.setSplit(initialSplit(s.slots).weights, "config")
	s.handler = s.routesHandler()
	return s, nil
}

// Handler is the server's HTTP handler (every route, with request logging,
// metrics and panic recovery).
func (s *Server) Handler() http.Handler { return s.handler }

// Routes lists the registered routes as "METHOD PATTERN" (ServeMux syntax).
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, r := range s.routes {
		out[i] = r.Method + " " + r.Pattern
	}
	return out
}

// Page is a web page mounted on the server's routes: it registers GET /
// and GET /static/ and any routes of its own, which it lists.
type Page interface {
	Register(mux *http.ServeMux)
	Routes() []string
}

func (s *Server) routesHandler() http.Handler {
	mux := http.NewServeMux()
	handle := func(method, pattern string, h http.HandlerFunc) {
		s.routes = append(s.routes, route{method, pattern})
		mux.HandleFunc(method+" "+pattern, h)
	}
	web, _ := fs.Sub(webFS, "web")

	if s.cfg.Page != nil {
		s.cfg.Page.Register(mux)
		for _, r := range s.cfg.Page.Routes() {
			method, pattern, _ := strings.Cut(r, " ")
			s.routes = append(s.routes, route{method, pattern})
		}
	} else {
		handle("GET", "/{$}", s.handleIndex)
		handle("GET", "/static/{path...}", http.StripPrefix("/static/", http.FileServerFS(web)).ServeHTTP)
	}
	handle("GET", "/openapi.json", s.handleOpenAPI)
	handle("GET", "/metrics", s.metrics.handler().ServeHTTP)

	handle("GET", "/api/health", s.handleHealth)
	// The protocols: adapters over the router (route.go), each in its
	// package. A new protocol is one more line here.
	for _, p := range []protocolAdapter{
		restapi.New(s, s, restapi.Config{MaxResizePixels: s.cfg.MaxResizePixels}),
		v2.New(s, v2.Config{Version: s.cfg.Version, MaxImages: s.cfg.Queue, Ready: s.Ready}),
	} {
		p.Register(handle)
	}

	handle("GET", "/v2/models/stats", s.handleStats)
	handle("GET", "/v2/models/{name}/stats", s.handleStats)
	handle("GET", "/v2/models/{name}/versions/{version}/stats", s.handleStats)
	handle("POST", "/v2/repository/index", s.handleRepositoryIndex)
	// The prediction log's endpoints (package ab), 404 without one.
	feedback, report := http.HandlerFunc(noPredictionLog), http.HandlerFunc(noPredictionLog)
	if pl := s.cfg.PredictionLog; pl != nil {
		feedback, report = pl.FeedbackHandler().ServeHTTP, pl.ReportHandler().ServeHTTP
	}
	handle("POST", "/api/feedback", feedback)
	handle("GET", "/api/ab", report)

	handle("POST", "/admin/reload", s.handleReload)
	handle("POST", "/admin/split", s.handleSplit)
	return s.middleware(mux)
}

func noPredictionLog(w http.ResponseWriter, r *http.Request) {
	writeError(w, errorf(http.StatusNotFound, "not found", "the prediction log is off (petbreed serve --prediction-log PATH)"))
}

// protocolAdapter is a protocol (package restapi, v2): it registers its
// routes, and reaches the models through the router it was made with.
type protocolAdapter interface {
	Register(handle func(method, pattern string, h http.HandlerFunc))
}

// Ready reports whether a model that answers (not a shadow) is loaded and
// the server is not stopping.
func (s *Server) Ready() bool {
	if s.draining.Load() {
		return false
	}
	for _, sl := range s.slots {
		if !sl.shadow && sl.current() != nil {
			return true
		}
	}
	return false
}

func (m *model) release() { m.refs.Done() }

// current returns the first configured model's current one without
// holding it (for metadata); nil when none is loaded.
func (s *Server) current() *model { return s.slots[0].current() }

// acquire holds the first configured model's current one (nil if none).
func (s *Server) acquire() *model { return s.slots[0].acquire() }

// ModelInfo describes the model being served. URI and Path are where it
// comes from on the server's disk: public omits them (or keeps a URI that
// is not a path).
type ModelInfo struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	URI      string    `json:"uri,omitempty"`
	Path     string    `json:"path,omitempty"`
	File     string    `json:"file"` // the ONNX file's base name
	Classes  int       `json:"classes"`
	Loaded   time.Time `json:"loaded_at"`
	LoadSecs float64   `json:"load_seconds"`
	// SharedBackbone is the start of the backbone's key when the model's
	// head runs on a backbone shared with other models (trunk.go).
	SharedBackbone string `json:"shared_backbone,omitempty"`
}

func (m *model) info() ModelInfo {
	i := ModelInfo{Name: m.name, Version: m.version, URI: m.uri, Path: m.path, File: filepath.Base(m.path),
		Classes: len(m.classes), Loaded: m.loaded, LoadSecs: m.loadDur.Seconds()}
	if m.trunk != nil || (m.slot.shadow && m.head != nil) {
		i.SharedBackbone = shortKey(m.trunkKey)
	}
	return i
}

// public is the information for clients without the admin token: no
// paths of the server's disk.
func (i ModelInfo) public() ModelInfo {
	i.Path = ""
	if !inStore(i.URI) {
		i.URI = "" // a file path
	}
	return i
}

// pathRe matches the absolute paths in a message: a slash then anything up
// to a space, quote, colon or comma.
var pathRe = regexp.MustCompile(`(^|[\s"'(=])(/[^\s"':,()]+)`)

// redactPaths cuts every absolute path in msg to its base name.
func redactPaths(msg string) string {
	return pathRe.ReplaceAllStringFunc(msg, func(m string) string {
		i := strings.IndexByte(m, '/')
		return m[:i] + ".../" + filepath.Base(m[i:])
	})
}

// Model describes the first configured model; ok is false before its
// first load.
func (s *Server) Model() (info ModelInfo, ok bool) {
	m := s.current()
	if m == nil {
		return ModelInfo{}, false
	}
	return m.info(), true
}

// Load resolves and loads every configured model and starts serving them
// (the server is ready once one that answers is loaded). With several
// models, one that fails to load is logged, shown in /api/health and tried
// again every Poll; Load fails only when none that answers loads. Run calls
// it; it is exported for servers mounted through Handler.
func (s *Server) Load() error {
	var first error
	// The models that answer first: a shadow joins the backbone one of them
	// runs (trunk.go).
	for _, shadows := range []bool{false, true} {
		for _, sl := range s.slots {
			if sl.shadow != shadows {
				continue
			}
			if _, err := s.reloadSlot(sl); err != nil && first == nil {
				first = err
			}
		}
	}
	if len(s.slots) == 1 || !s.Ready() {
		return first
	}
	return nil
}

// ReloadResult is what a reload did.
type ReloadResult struct {
	Model    ModelInfo  `json:"model"`
	Previous *ModelInfo `json:"previous,omitempty"`
}

// Reload resolves every model's URI again, loads each beside the one
// being served and swaps it in: new requests go to the new model, and the
// old one is closed once the requests holding it are done. A model that
// fails to load leaves the old one serving; the error is logged, kept for
// /api/health (last_reload_error) and returned. It returns the first
// model's result and the first error.
func (s *Server) Reload() (ReloadResult, error) {
	var res ReloadResult
	var first error
	for i, sl := range s.slots {
		r, err := s.reloadSlot(sl)
		if i == 0 {
			res = r
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return res, first
}

// ReloadModel reloads the model served under name.
func (s *Server) ReloadModel(name string) (ReloadResult, error) {
	i := s.slotIndex(name)
	if i < 0 {
		return ReloadResult{}, &apiError{Status: http.StatusNotFound, Msg: "unknown model", Detail: fmt.Sprintf("no served model is named %q", name)}
	}
	return s.reloadSlot(s.slots[i])
}

// closeGrace bounds how long Run waits, after the drain timeout has
// cancelled the requests still in flight, for their handlers to return and
// the model to close.
const closeGrace = 2 * time.Second

// Run serves on ln until ctx is cancelled: it starts answering at once (503
// for what needs the model), loads the model, becomes ready, and polls the
// model's alias. When ctx is cancelled it stops accepting connections and
// waits for the requests in flight, up to DrainTimeout; then it cancels
// the contexts of those still running (their decodes stop), closes their
// connections, waits at most closeGrace more for them and the model, and
// returns nil either way (requests cut off are logged). It returns an error
// if the model cannot be loaded at start or the listener fails.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	// Every request's context derives from base: cancelling it after the
	// drain timeout stops the work of requests still in flight.
	base, cutOff := context.WithCancel(context.Background())
	defer cutOff()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	var serveErr error
	serveDone := make(chan struct{})
	go func() {
		serveErr = srv.Serve(ln)
		close(serveDone)
	}()
	s.log.Info("listening", "addr", ln.Addr().String(), "model", s.slots[0].spec.URI, "models", len(s.slots), "max_batch", s.cfg.MaxBatch,
		"max_delay", s.cfg.MaxDelay.String(), "queue", s.cfg.Queue, "threads", s.cfg.Threads, "max_body", s.cfg.MaxBody,
		"max_pixels", s.cfg.MaxPixels, "memory_budget", s.cfg.MemoryBudget, "budget_wait", s.cfg.BudgetWait.String(), "decode_timeout", s.cfg.DecodeTimeout.String(),
		"drain_timeout", s.cfg.DrainTimeout.String(), "poll", s.cfg.Poll.String(), "admin", s.cfg.AdminToken != "")

	loaded := make(chan error, 1)
	go func() { loaded <- s.Load() }()
	var err error
	select {
	case err = <-loaded:
		if err != nil {
			err = fmt.Errorf("load model %s: %w", s.slots[0].spec.URI, err)
		}
	case <-serveDone:
		err = serveErr
		<-loaded
	case <-ctx.Done():
		<-loaded
	}
	if err == nil && ctx.Err() == nil {
		for _, sl := range s.slots {
			if m := sl.current(); m != nil {
				s.log.Info("ready", "model", m.desc.Name, "version", m.version, "shadow", sl.shadow,
					"since_start_ms", ms(time.Since(s.started)))
			}
		}
		pollCtx, stopPoll := context.WithCancel(ctx)
		for _, sl := range s.slots {
			go s.pollSlot(pollCtx, sl)
		}
		go s.guardLoop(pollCtx)
		select {
		case <-ctx.Done():
		case <-serveDone:
			err = serveErr
		}
		stopPoll()
	}

	s.draining.Store(true)
	s.log.Info("shutting down: draining requests in flight", "drain_timeout", s.cfg.DrainTimeout.String())
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	cut := false
	if serr := srv.Shutdown(dctx); serr != nil {
		cut = true
		s.log.Warn("shutdown: requests still in flight after the drain timeout: cancelling them", "err", serr)
		cutOff()
		srv.Close()
	}
	ln.Close() // in case Serve had not started yet
	<-serveDone
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	if cut {
		select {
		case <-closed:
		case <-time.After(closeGrace):
			s.log.Warn("shutdown: handlers still running after their requests were cancelled: exiting without waiting for them")
		}
	} else {
		<-closed
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.log.Info("stopped", "requests_cut_off", cut)
	return err
}

// Close unloads the models after the requests holding them are done. The
// handler answers 503 afterwards.
func (s *Server) Close() {
	s.closed.Store(true)
	var old []*model
	for _, sl := range s.slots {
		sl.reloadMu.Lock() // no reload is running, and none starts
		sl.mu.Lock()
		if sl.cur != nil {
			old = append(old, sl.cur)
		}
		sl.cur = nil
		sl.mu.Unlock()
		sl.reloadMu.Unlock()
	}
	for _, m := range old {
		s.retire(m)
	}
	s.retiring.Wait()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
