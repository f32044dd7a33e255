// Package serve is petbreed's model server: the original project's REST API
// (/api/...) done right, the KServe V2 Open Inference Protocol (/v2/...)
// with Triton's binary-tensor and classification extensions, dynamic
// batching, Prometheus metrics, hot model reload and graceful shutdown.
// cmd/petbreed's `serve` command wires it to flags and signals.
//
// # Protocols and the router
//
// The protocols are adapters in their own packages: restapi (/api/predict,
// /api/classes, /api/resize, /api/preprocess) and v2 (/v2/...). Each
// registers its routes and reaches models only through package protocol's
// Router (route.go here): Route holds a model for one request and gives a
// Predictor that reads the body within the limits and the memory budget
// and predicts images (through the admission, decoding and batching below)
// or tensors. The server keeps the rest: middleware, metrics, /api/health,
// /metrics, the admin endpoints, admission, the budget and the models'
// lifecycle. A new protocol is a sibling package and one line in
// routesHandler; several models (a traffic split) change Route only.
//
// # One request
//
// A request is served in its own goroutine up to the model: the image's
// type is sniffed from the body's first bytes (never from Content-Type: 415
// for anything else, before the rest is read), the body is read (bounded by
// http.MaxBytesReader: 413 beyond Config.MaxBody), the image is decoded
// with the pixel limit read from its header (422 for a corrupt image, one
// over Config.MaxPixels, 25 M by default, or a progressive JPEG of more
// than 100 scans) and preprocessed (resize, crop) into the image the model
// sees. Decoding and preprocessing thus run
// in parallel, outside the model, at most GOMAXPROCS images at once (more
// would only share the same cores and hold more decoded images in memory).
// Then the image goes to the model's batcher and the request waits for its
// own row of probabilities.
//
// # Dynamic batching
//
// Each loaded model has one batcher goroutine reading a bounded channel of
// prepared jobs. It takes the first job, then more while the batch has
// fewer than Config.MaxBatch images, waiting at most Config.MaxDelay after
// the first job arrived, and only while other requests are still being
// prepared: a lone request runs at once. The batcher normalises the jobs'
// images straight into one reused NCHW buffer (normalising costs what
// copying a tensor would, and a queued 224x224 image is a quarter of its
// tensor's size; V2's FP32 tensors are copied, and a lone one runs from its
// own pooled buffer), runs the batch as one model call, and answers each
// job with the rows of its own images, in the order they were laid out, so
// answers are never mixed between requests. While a batch runs, the next
// one queues. Batch sizes are the petbreed_batch_size histogram.
//
// # Memory budget and deadlines
//
// What a request costs is bounded by what it declares, not by what the
// server finds out too late. The server has one memory budget
// (Config.MemoryBudget, 512 MiB by default; the
// petbreed_memory_budget_bytes_in_use gauge): a request charges its body's
// bytes as they are read (its Content-Length at once when it has one, else
// the buffer's capacity as it grows), then each image's decoding cost read
// from its header (imaging.DecodeCost) before decoding it, V2's tensors
// before allocating them, and /api/resize's output. A charge that does not
// fit waits up to Config.BudgetWait for others to finish, then gets 503
// with Retry-After; one that alone is over the budget gets 413 (a body) or
// 422 (an image: "image over the memory budget") at once. The charge is
// given back whole when the request ends. V2 requests are checked against
// their shapes before anything is allocated in proportion to them: at most
// 4096 JSON values outside the input's data, a BYTES input's elements
// counted (and each checked to be a string or {"b64": ...}) before any is
// decoded, an FP32 input's values refused from the first one too many.
//
// Each decode has a deadline, Config.DecodeTimeout (5 s by default), tied
// to the request's context through imaging.DecodeContext: it stops when the
// deadline passes (422 "decode timeout": the clock starts once the image
// has its decoding place, so it measures the image's own work, and a retry
// would fail the same way) or when the client goes away, freeing its
// decoding place at once.
//
// Admission is bounded: a request reserves its images' places among
// Config.Queue (images being prepared, waiting or running) before decoding,
// and gets 503 with Retry-After at once when there is no room, so overload
// costs the server almost nothing.
//
// # Models and reload
//
// Config.Model is an ONNX file or a models:/ (or runs:/) URI resolved
// through the MLflow file store (package tracking). A models:/NAME@ALIAS
// URI is resolved through the alias to a version number first, so the
// version reported and the file loaded agree. The model is named after the
// registered model (or the file's base name) and versioned by the registry
// (or "1").
//
// Run listens first, answers 503 on what needs the model, loads it, and only
// then is ready. A reload (the alias polled every Config.Poll, or POST
// /admin/reload with the admin token) loads the new model beside the old
// one, then swaps the pointer under a lock: requests hold the model they
// started with (a wait group), so the old model's batcher finishes their
// batches and is closed only after the last of them. A model that fails to
// load (a corrupt file, a model that is not an image classifier) leaves the
// old one serving; the failure is logged, shown in /api/health as
// last_reload_error, and answered by the reload request (422, or 500 when
// the model cannot even be found).
//
// # Operations
//
// Every request gets an id (X-Request-Id, kept from the client when sane)
// and one structured log line (log/slog): method, path, status, bytes,
// duration, request id. Metrics live in a registry of the server's own
// (GET /metrics): requests by route and status, request latency, the time
// spent in each stage (read, decode, preprocess, queue, inference), batch
// sizes, requests in flight, queue depth and admitted images, the model's
// name and version, reloads, overload rejections, the memory budget and
// its use, and Go and process metrics. /api/health
// names the model's file by its base name: its paths on the server's disk
// (and those in a reload error) are shown only to requests bearing the
// admin token, and are in the log.
//
// Run stops accepting connections when its context is cancelled and waits
// for the requests in flight up to Config.DrainTimeout. Requests still
// running then are cut off: their contexts (children of the http.Server's
// BaseContext) are cancelled, so their decodes stop, and their connections
// closed; Run waits at most 2 s more for their handlers and the model, and
// returns nil either way (it logs "requests_cut_off"), so that SIGTERM
// always ends the process soon after the drain timeout, with exit 0.
//
// GET /openapi.json is a hand-written OpenAPI 3 description of every route;
// GET / is the web page when Config.Page is set (petbreed serve mounts
// package web), else a placeholder page, an embedded file (web/index.html).
package serve
