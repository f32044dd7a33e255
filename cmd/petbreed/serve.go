package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"petbreed/internal/tracking"
	"petbreed/internal/tracking/backend"
	"petbreed/internal/web"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"petbreed/internal/ab"
	"petbreed/internal/classify"
	"petbreed/internal/serve"
)

// serveFlags are serve's settings: each flag, else its environment
// variable, else the default.
type serveFlags struct {
	models                                   []string // --model, repeated
	modelsFile, split, splitHeader           string
	splitCookie, predLog, predLogMax         string
	shadows                                  []string
	shadowMax, shadowThreads                 int
	shareBackbone                            bool
	predLogFiles, predLogQueue               int
	guardWindow, guardMin                    int
	guardErrDelta, guardLatRatio             float64
	guardSlack, guardEvery                   time.Duration
	shadowTimeout                            time.Duration
	addr, labels, tracking, logFormat        string
	maxBatch, threads, queue                 int
	maxDelay, poll, decodeTimeout, drainTime time.Duration
	budgetWait                               time.Duration
	maxBody, memoryBudget                    string
	maxPixels                                int64
}

// serveEnv maps flags to their environment variables.
var serveEnv = map[string]string{
	"model":          "PETBREED_MODEL",
	"addr":           "PETBREED_ADDR",
	"max-batch":      "PETBREED_MAX_BATCH",
	"max-delay":      "PETBREED_MAX_DELAY",
	"threads":        "PETBREED_THREADS",
	"queue":          "PETBREED_QUEUE",
	"max-body":       "PETBREED_MAX_BODY",
	"poll":           "PETBREED_POLL",
	"labels":         "PETBREED_LABELS",
	"max-pixels":     "PETBREED_MAX_PIXELS",
	"memory-budget":  "PETBREED_MEMORY_BUDGET",
	"decode-timeout": "PETBREED_DECODE_TIMEOUT",
	"drain-timeout":  "PETBREED_DRAIN_TIMEOUT",
	"budget-wait":    "PETBREED_BUDGET_WAIT",

	"models":                   "PETBREED_MODELS",
	"split":                    "PETBREED_SPLIT",
	"split-header":             "PETBREED_SPLIT_HEADER",
	"split-cookie":             "PETBREED_SPLIT_COOKIE",
	"shadow":                   "PETBREED_SHADOW",
	"shadow-max":               "PETBREED_SHADOW_MAX",
	"shadow-timeout":           "PETBREED_SHADOW_TIMEOUT",
	"shadow-threads":           "PETBREED_SHADOW_THREADS",
	"share-backbone":           "PETBREED_SHARE_BACKBONE",
	"guard-interval":           "PETBREED_GUARD_INTERVAL",
	"guard-window":             "PETBREED_GUARD_WINDOW",
	"guard-min-requests":       "PETBREED_GUARD_MIN_REQUESTS",
	"guard-max-error-delta":    "PETBREED_GUARD_MAX_ERROR_DELTA",
	"guard-latency-ratio":      "PETBREED_GUARD_LATENCY_RATIO",
	"guard-latency-slack":      "PETBREED_GUARD_LATENCY_SLACK",
	"prediction-log":           "PETBREED_PREDICTION_LOG",
	"prediction-log-max-bytes": "PETBREED_PREDICTION_LOG_MAX_BYTES",
	"prediction-log-files":     "PETBREED_PREDICTION_LOG_FILES",
	"prediction-log-queue":     "PETBREED_PREDICTION_LOG_QUEUE",
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [--model URI] [--addr HOST:PORT] [--max-batch 12] [--max-delay 2ms] [--threads N] [--memory-budget 512MiB]",
		Short: "Serve a model over HTTP: the REST API, KServe V2, metrics, hot reload",
		Long: `serve answers classification requests over HTTP:

  GET  /                      the web page (classify, what the model sees, experiments, registry)
  GET  /api/health            status and the model served (503 until it is loaded; file
                              paths only with the admin token)
  GET  /api/classes           the classes
  POST /api/predict           an image (multipart field "file", or the body) to its breed
  POST /api/resize            the image resized (?width=&height=[&format=&filter=&quality=])
  POST /api/preprocess        the image the model sees (?grayscale=&normalize=)
  GET  /v2, /v2/health/{live,ready}, /v2/models/NAME[/versions/V][/ready]
  POST /v2/models/NAME[/versions/V]/infer   KServe V2 inference (JSON or binary tensors)
  GET  /metrics               Prometheus metrics
  GET  /openapi.json          the API's description
  GET  /v2/models[/NAME[/versions/V]]/stats  Triton's statistics, per model and version
  POST /v2/repository/index   every model, its version and state
  POST /admin/reload          reload the models, or ?model=NAME (needs PETBREED_ADMIN_TOKEN)
  POST /admin/split           set the split's weights: {"weights": {"NAME": W, ...}} (admin)
  POST /api/feedback, GET /api/ab   with --prediction-log: true labels, the A/B comparison

Several models: --model NAME=URI repeated (a plain --model URI serves one,
as before), or --models models.yaml:

  models:
    - {name: champion,   uri: models:/pet-breed@champion,   weight: 90}
    - {name: challenger, uri: models:/pet-breed@challenger, weight: 10}
    - {name: candidate,  uri: runs:/RUN_ID/model, shadow: true}
  split_header: X-User-Id     # optional, else --split-header

Each model loads and reloads on its own (an alias move reloads that model
only; one that fails to load leaves the others serving). Requests that name
no model (/api/predict, or V2's registered model name without a version) go
through the split: --split champion=90,challenger=10 (else the file's
weights, else the first model takes all). A request with the --split-header
(default X-User-Id) or --split-cookie is sticky: the same unit gets the same
model for the same weights, and raising a weight moves only units to it.
Answers carry X-Petbreed-Model and X-Petbreed-Version. A shadow (--shadow NAME
or shadow: true) gets a copy of the split's requests, answered to the
prediction log only, and dropped when the server is busy (more than
--shadow-max running, or the queue half full; petbreed_shadow_dropped_total).
The canary guard sets a challenger's weight to 0 when, over its last
--guard-window answers (at least --guard-min-requests), its error rate
exceeds the champion's (the model of highest weight) by --guard-max-error-delta,
or its p99 latency exceeds --guard-latency-ratio x the champion's plus
--guard-latency-slack (--guard-window -1: off).

Concurrent requests share model runs (dynamic batching: up to --max-batch
images, waiting at most --max-delay); beyond --queue images admitted at once,
requests get 503 at once.

Hostile input is bounded: bodies over --max-body get 413; a raw body or
multipart file that is not an image is refused from its first bytes (415);
images over --max-pixels (25 M by default: a 6000x4000 photo passes) and
progressive JPEGs of more than 100 scans get 422; one image's decoding stops
after --decode-timeout (422 "decode timeout") or when its client goes away.
The memory that requests hold at once (bodies as they are read, decoded
images by the cost their header declares, tensors, resize outputs) is
bounded by --memory-budget: beyond it a request waits up to --budget-wait, then gets 503
with Retry-After; one that alone needs more gets 413 (a body) or 422 (an
image) at once.

A models:/NAME@ALIAS model is reloaded when the alias moves (checked every
--poll) or on POST /admin/reload with "Authorization: Bearer
$PETBREED_ADMIN_TOKEN"; a model that fails to load leaves the old one
serving. SIGINT or SIGTERM stops accepting connections
and lets the requests in flight finish for up to --drain-timeout; requests
still running then are cancelled (their decodes stop) and their connections
closed, the process waits at most 2 s more for them, and exits 0 either way
(the log says "requests_cut_off":true when it cut any off).

Each flag can come from the environment (for containers): PETBREED_MODEL,
PETBREED_ADDR, PETBREED_MAX_BATCH, PETBREED_MAX_DELAY, PETBREED_THREADS,
PETBREED_QUEUE, PETBREED_MAX_BODY, PETBREED_POLL, PETBREED_LABELS,
PETBREED_MAX_PIXELS, PETBREED_MEMORY_BUDGET, PETBREED_DECODE_TIMEOUT,
PETBREED_DRAIN_TIMEOUT, PETBREED_BUDGET_WAIT; models:/ URIs are resolved in $MLFLOW_TRACKING_URI.
A flag given on the command line wins over the environment. Unless GOGC is set, the Go heap is collected at
50% growth (GOGC=50) to keep the server's memory small.`,
		Example: `  petbreed serve                                   # models:/pet-breed@champion from $MLFLOW_TRACKING_URI
  petbreed serve --model model.onnx --addr :8000
  PETBREED_ADMIN_TOKEN=secret petbreed serve --max-batch 16 --max-delay 5ms
  curl -F file=@cat.jpg localhost:8000/api/predict`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.fromEnv(cmd); err != nil {
				return err
			}
			cfg, err := f.config()
			if err != nil {
				return err
			}
			if l, ok := cfg.PredictionLog.(*ab.Log); ok {
				defer l.Close() // after Run: every answer recorded is written
			}
			var h slog.Handler
			switch f.logFormat {
			case "json":
				h = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
			case "text":
				h = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			default:
				return usagef("--log-format %q: want json or text", f.logFormat)
			}
			cfg.Logger = slog.New(h)
			if os.Getenv("GOGC") == "" {
				// The heap is mostly short-lived image buffers without
				// pointers, cheap to collect: a tighter goal keeps the
				// process small (ONNX Runtime's memory is outside it).
				debug.SetGCPercent(50)
			}
			// The web page, with the experiments of the tracking store the
			// model comes from; promoting a version reloads the server.
			var srv *serve.Server
			store := pageStore(cfg)
			cfg.Page = web.New(web.Config{
				Store:      store,
				AdminToken: cfg.AdminToken,
				Logger:     cfg.Logger,
				// A version is promoted only if it loads as this server loads it.
				Verify: web.TrialLoad(store, classify.Options{Threads: cfg.Threads, Labels: cfg.Labels}),
				OnPromote: func(name, alias string, v int) {
					if _, err := srv.Reload(); err != nil {
						cfg.Logger.Warn("reload after a promotion", "model", name, "alias", alias, "version", v, "err", err)
					}
				},
			})
			srv, err = serve.New(cfg)
			if err != nil {
				return usageError{err}
			}
			ln, err := net.Listen("tcp", f.addr)
			if err != nil {
				return err
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			return srv.Run(ctx, ln)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&f.models, "model", []string{defaultModelURI}, "ONNX model file, or models:/NAME@ALIAS, models:/NAME/VERSION, runs:/ID/PATH from $MLFLOW_TRACKING_URI; NAME=URI, repeated, for several [$PETBREED_MODEL]")
	fs.StringVar(&f.modelsFile, "models", "", "YAML file of the models to serve (names, URIs, weights, shadows), instead of --model [$PETBREED_MODELS]")
	fs.StringVar(&f.split, "split", "", "the split's weights, NAME=W,NAME=W (default: the models file's, else all to the first) [$PETBREED_SPLIT]")
	fs.StringVar(&f.splitHeader, "split-header", serve.DefaultSplitHeader, "request header naming the sticky unit of the split (\"-\": none) [$PETBREED_SPLIT_HEADER]")
	fs.StringVar(&f.splitCookie, "split-cookie", "", "cookie naming the sticky unit when the header is absent [$PETBREED_SPLIT_COOKIE]")
	fs.StringArrayVar(&f.shadows, "shadow", nil, "make the model NAME a shadow: a copy of the split's traffic, answers recorded, never returned (repeatable) [$PETBREED_SHADOW]")
	fs.IntVar(&f.shadowMax, "shadow-max", 0, "most shadow predictions running at once, beyond which copies are dropped (0: --max-batch) [$PETBREED_SHADOW_MAX]")
	fs.IntVar(&f.shadowThreads, "shadow-threads", 1, "ONNX Runtime intra-op threads of a shadow model, so the other cores stay with the answers (at most --threads when set) [$PETBREED_SHADOW_THREADS]")
	fs.BoolVar(&f.shareBackbone, "share-backbone", true, "run the backbone once for the models that share it (same graph and preprocessing), each model's head on its features; false: every model runs whole [$PETBREED_SHARE_BACKBONE]")
	fs.DurationVar(&f.shadowTimeout, "shadow-timeout", serve.DefaultShadowTimeout, "longest a shadow prediction may take before it is given up [$PETBREED_SHADOW_TIMEOUT]")
	fs.DurationVar(&f.guardEvery, "guard-interval", serve.DefaultGuardInterval, "how often the canary guard compares the challengers with the champion [$PETBREED_GUARD_INTERVAL]")
	fs.IntVar(&f.guardWindow, "guard-window", serve.DefaultGuardWindow, "canary guard: answers per model it looks at (-1: guard off) [$PETBREED_GUARD_WINDOW]")
	fs.IntVar(&f.guardMin, "guard-min-requests", serve.DefaultGuardMinRequests, "canary guard: fewest answers of a challenger before it judges [$PETBREED_GUARD_MIN_REQUESTS]")
	fs.Float64Var(&f.guardErrDelta, "guard-max-error-delta", serve.DefaultGuardMaxErrorDelta, "canary guard: largest excess of a challenger's error rate over the champion's [$PETBREED_GUARD_MAX_ERROR_DELTA]")
	fs.Float64Var(&f.guardLatRatio, "guard-latency-ratio", serve.DefaultGuardLatencyRatio, "canary guard: largest ratio of a challenger's p99 latency to the champion's (plus the slack) [$PETBREED_GUARD_LATENCY_RATIO]")
	fs.DurationVar(&f.guardSlack, "guard-latency-slack", serve.DefaultGuardLatencySlack, "canary guard: p99 latency a challenger may have over ratio x the champion's [$PETBREED_GUARD_LATENCY_SLACK]")
	fs.StringVar(&f.predLog, "prediction-log", "", "JSON Lines log of split and shadow predictions, for feedback and the A/B report (default: none) [$PETBREED_PREDICTION_LOG]")
	fs.StringVar(&f.predLogMax, "prediction-log-max-bytes", "64MiB", "most bytes the prediction log keeps, its rotated files included [$PETBREED_PREDICTION_LOG_MAX_BYTES]")
	fs.IntVar(&f.predLogFiles, "prediction-log-files", ab.DefaultFiles, "rotated prediction log files kept beside the current one, the oldest deleted (1-1000) [$PETBREED_PREDICTION_LOG_FILES]")
	fs.IntVar(&f.predLogQueue, "prediction-log-queue", ab.DefaultQueue, "predictions waiting for the log's writer; more are dropped and counted, never waited for (1-1048576) [$PETBREED_PREDICTION_LOG_QUEUE]")
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8000", "address to listen on, HOST:PORT (:8000 for every interface) [$PETBREED_ADDR]")
	fs.IntVar(&f.maxBatch, "max-batch", serve.DefaultMaxBatch, "most images in one model run [$PETBREED_MAX_BATCH]")
	fs.DurationVar(&f.maxDelay, "max-delay", serve.DefaultMaxDelay, "longest wait for a batch to fill, e.g. 2ms (-1ms: never wait) [$PETBREED_MAX_DELAY]")
	fs.IntVar(&f.threads, "threads", 0, "ONNX Runtime intra-op threads (0: one per core) [$PETBREED_THREADS]")
	fs.IntVar(&f.queue, "queue", 0, "most images admitted at once, beyond which requests get 503 (0: 4 x --max-batch) [$PETBREED_QUEUE]")
	fs.StringVar(&f.maxBody, "max-body", "10MiB", "largest request body: bytes, or with KiB, MiB, KB, MB [$PETBREED_MAX_BODY]")
	fs.DurationVar(&f.poll, "poll", serve.DefaultPoll, "how often to check a models:/NAME@ALIAS alias for a new version (0: never) [$PETBREED_POLL]")
	fs.StringVar(&f.labels, "labels", "", "class names: one a line, or JSON {\"classes\": [...]} (default: the model's own) [$PETBREED_LABELS]")
	fs.StringVar(&f.tracking, "tracking", "", "MLflow tracking URI or folder (default $MLFLOW_TRACKING_URI, else ./mlruns)")
	fs.Int64Var(&f.maxPixels, "max-pixels", serve.DefaultMaxPixels, "refuse images whose header declares more pixels than this (422) [$PETBREED_MAX_PIXELS]")
	fs.StringVar(&f.memoryBudget, "memory-budget", "512MiB", "most memory that requests hold at once, by declared cost (bodies, decoded images, tensors): bytes, or with KiB, MiB, GiB [$PETBREED_MEMORY_BUDGET]")
	fs.DurationVar(&f.budgetWait, "budget-wait", serve.DefaultBudgetWait, "how long a request waits for room in the memory budget before 503 (0: not at all) [$PETBREED_BUDGET_WAIT]")
	fs.DurationVar(&f.decodeTimeout, "decode-timeout", serve.DefaultDecodeTimeout, "longest decoding of one image, beyond which it stops (422) [$PETBREED_DECODE_TIMEOUT]")
	fs.DurationVar(&f.drainTime, "drain-timeout", serve.DefaultDrainTimeout, "how long SIGTERM waits for requests in flight before cancelling them [$PETBREED_DRAIN_TIMEOUT]")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format on stderr: json or text")
	return cmd
}

// fromEnv fills the flags not given on the command line from the environment.
func (f *serveFlags) fromEnv(cmd *cobra.Command) error {
	fs := cmd.Flags()
	for flag, env := range serveEnv {
		v, ok := os.LookupEnv(env)
		if !ok || v == "" || fs.Changed(flag) {
			continue
		}
		if err := fs.Set(flag, v); err != nil {
			return usagef("$%s=%q: %v", env, v, err)
		}
	}
	return nil
}

func (f *serveFlags) config() (serve.Config, error) {
	maxBody, err := parseSize(f.maxBody)
	if err != nil {
		return serve.Config{}, usagef("--max-body: %v", err)
	}
	budget, err := parseSize(f.memoryBudget)
	if err != nil {
		return serve.Config{}, usagef("--memory-budget: %v", err)
	}
	if maxBody > budget {
		return serve.Config{}, usagef("--max-body %s is over --memory-budget %s", f.maxBody, f.memoryBudget)
	}
	if f.maxPixels < 1 {
		return serve.Config{}, usagef("--max-pixels %d: must be at least 1", f.maxPixels)
	}
	if f.budgetWait < 0 {
		return serve.Config{}, usagef("--budget-wait %v: must not be negative", f.budgetWait)
	}
	if f.decodeTimeout <= 0 || f.drainTime <= 0 {
		return serve.Config{}, usagef("--decode-timeout and --drain-timeout must be positive")
	}
	if f.maxBatch < 1 {
		return serve.Config{}, usagef("--max-batch %d: must be at least 1", f.maxBatch)
	}
	if f.queue < 0 || f.threads < 0 {
		return serve.Config{}, usagef("--queue and --threads must not be negative")
	}
	models, splitHeader, splitCookie, err := f.modelSpecs()
	if err != nil {
		return serve.Config{}, err
	}
	if f.shadowMax < 0 || f.shadowThreads < 1 {
		return serve.Config{}, usagef("--shadow-max must not be negative and --shadow-threads must be at least 1")
	}
	if f.guardWindow == 0 || f.guardWindow < -1 || f.guardMin < 1 || !(f.guardErrDelta > 0 && f.guardErrDelta <= 1) ||
		!(f.guardLatRatio >= 1) || f.guardSlack < 0 || f.guardEvery <= 0 || f.shadowTimeout <= 0 {
		return serve.Config{}, usagef("the --guard-* bounds: --guard-window at least 1 (or -1: off), --guard-min-requests at least 1, " +
			"--guard-max-error-delta in (0,1], --guard-latency-ratio at least 1, --guard-latency-slack not negative, " +
			"--guard-interval and --shadow-timeout positive")
	}
	if f.guardSlack == 0 {
		f.guardSlack = time.Nanosecond // 0 would be the default
	}
	cfg := serve.Config{
		Models:            models,
		SplitHeader:       splitHeader,
		SplitCookie:       splitCookie,
		ShadowMax:         f.shadowMax,
		ShadowTimeout:     f.shadowTimeout,
		ShadowThreads:     f.shadowThreads,
		SeparateBackbones: !f.shareBackbone,
		Guard: serve.GuardConfig{Window: f.guardWindow, MinRequests: f.guardMin, MaxErrorDelta: f.guardErrDelta,
			LatencyRatio: f.guardLatRatio, LatencySlack: f.guardSlack, Interval: f.guardEvery},
		TrackingURI:   trackingURI(f.tracking),
		MaxBatch:      f.maxBatch,
		MaxDelay:      f.maxDelay,
		Queue:         f.queue,
		Threads:       f.threads,
		MaxBody:       maxBody,
		MaxPixels:     f.maxPixels,
		MemoryBudget:  budget,
		DecodeTimeout: f.decodeTimeout,
		DrainTimeout:  f.drainTime,
		BudgetWait:    f.budgetWait,
		Poll:          f.poll,
		AdminToken:    os.Getenv("PETBREED_ADMIN_TOKEN"),
		Version:       version,
	}
	if f.maxDelay == 0 {
		cfg.MaxDelay = -1 // no waiting
	}
	if f.budgetWait == 0 {
		cfg.BudgetWait = -1 // no waiting
	}
	if f.poll <= 0 {
		cfg.Poll = -1
	}
	if len(models) == 1 && models[0].Name == "" {
		cfg.Model, cfg.Models = models[0].URI, nil
	}
	if f.predLog != "" {
		max, err := parseSize(f.predLogMax)
		if err != nil {
			return serve.Config{}, usagef("--prediction-log-max-bytes: %v", err)
		}
		if f.predLogFiles < 1 || f.predLogFiles > 1000 {
			return serve.Config{}, usagef("--prediction-log-files %d: want 1 to 1000", f.predLogFiles)
		}
		if f.predLogQueue < 1 || f.predLogQueue > 1<<20 {
			return serve.Config{}, usagef("--prediction-log-queue %d: want 1 to 1048576", f.predLogQueue)
		}
		l, err := ab.OpenOptions(f.predLog, ab.Options{MaxBytes: max, Files: f.predLogFiles, Queue: f.predLogQueue})
		if err != nil {
			return serve.Config{}, fmt.Errorf("--prediction-log: %w", err)
		}
		cfg.PredictionLog = l
	}
	if f.labels != "" {
		labels, err := classify.LoadLabels(f.labels)
		if err != nil {
			return serve.Config{}, err
		}
		cfg.Labels = labels
	}
	return cfg, nil
}

// modelSpecs are the models to serve: the --models file's, else the
// --model flags', with --split's weights and --shadow's roles.
func (f *serveFlags) modelSpecs() ([]serve.ModelSpec, string, string, error) {
	header, cookie := f.splitHeader, f.splitCookie
	var specs []serve.ModelSpec
	if f.modelsFile != "" {
		mf, err := serve.ReadModelsFile(f.modelsFile)
		if err != nil {
			return nil, "", "", usagef("--models: %v", err)
		}
		specs = mf.Models
		if mf.SplitHeader != "" {
			header = mf.SplitHeader
		}
		if mf.SplitCookie != "" {
			cookie = mf.SplitCookie
		}
	} else {
		for _, v := range f.models {
			specs = append(specs, serve.ParseModelFlag(v))
		}
	}
	if f.split != "" {
		for _, kv := range strings.Split(f.split, ",") {
			name, w, ok := strings.Cut(strings.TrimSpace(kv), "=")
			x, err := strconv.ParseFloat(w, 64)
			i := specIndex(specs, name)
			if !ok || err != nil || i < 0 {
				return nil, "", "", usagef("--split %q: want NAME=WEIGHT,... for served names (--model NAME=URI)", f.split)
			}
			specs[i].Weight = x
		}
	}
	for _, name := range f.shadows {
		i := specIndex(specs, name)
		if i < 0 {
			return nil, "", "", usagef("--shadow %q: no model of that name (--model NAME=URI)", name)
		}
		specs[i].Shadow, specs[i].Weight = true, 0
	}
	if len(specs) == 1 && specs[0].Weight == 0 && !specs[0].Shadow {
		specs[0].Weight = 1
	}
	if err := serve.CheckModels(specs); err != nil {
		return nil, "", "", usagef("the models: %v", err)
	}
	return specs, header, cookie, nil
}

func specIndex(specs []serve.ModelSpec, name string) int {
	for i, sp := range specs {
		if sp.Name == name {
			return i
		}
	}
	return -1
}

// pageStore opens the tracking store for the web page's experiments view:
// the one models:/ URIs resolve through, when one is configured or the model
// comes from it, or ./mlruns when it exists. Otherwise (a plain model file
// and no store) the page says tracking is not configured, and no mlruns
// folder is created as a side effect.
func pageStore(cfg serve.Config) tracking.Browser {
	uri := cfg.TrackingURI
	model := cfg.Model
	for _, sp := range cfg.Models {
		model += " " + sp.URI
	}
	if uri == "" && !strings.Contains(model, ":/") {
		if st, err := os.Stat("mlruns"); err != nil || !st.IsDir() {
			return nil
		}
	}
	store, err := backend.Open(uri)
	if err != nil {
		return nil // a nil interface, not a nil *Store: the page checks for nil
	}
	return store
}

// parseSize reads "10MiB", "512KiB", "1MB", "1048576".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"K", 1 << 10}, {"M", 1 << 20}, {"B", 1}} {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 1 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size (bytes, or with KiB, MiB, KB, MB)", s)
	}
	return n * mult, nil
}
