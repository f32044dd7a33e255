// Package serve is petbreed's model server: the original project's REST API
// (/api/...) done right, the KServe V2 Open Inference Protocol (/v2/...)
// with Triton's binary-tensor and classification extensions, dynamic
// batching, Prometheus metrics, hot model reload and graceful shutdown.
// cmd/petbreed's `serve` command wires it to flags and signals.
//
// # One request
//
// A request is served in its own goroutine up to the model: the body is
// read (bounded by http.MaxBytesReader: 413 beyond Config.MaxBody), the
// image's type is sniffed from its bytes (never from Content-Type: 415 for
// anything else), it is decoded with the pixel limit read from its header
// (422 for a corrupt image or one over the limit) and preprocessed (resize,
// crop) into the image the model sees. Decoding and preprocessing thus run
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
// name and version, reloads, overload rejections, and Go and process
// metrics. Run stops accepting connections when its context is cancelled,
// waits for the requests in flight, closes the model and returns.
//
// GET /openapi.json is a hand-written OpenAPI 3 description of every route;
// GET / is a placeholder page, an embedded file (web/index.html) that the
// web page replaces.
package serve
