package serve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Stages of an inference request, the values of the "stage" label.
const (
	stageRead       = "read"       // the request body off the network
	stageDecode     = "decode"     // image bytes to pixels
	stagePreprocess = "preprocess" // resize, crop, normalise into the tensor
	stageQueue      = "queue"      // waiting for a batch to start
	stageInference  = "inference"  // the batch's model run
)

// metrics are one server's Prometheus metrics, in a registry of its own (no
// global state: two servers in one process, as in the tests, do not share).
type metrics struct {
	reg *prometheus.Registry

	requests  *prometheus.CounterVec   // route, method, code
	duration  *prometheus.HistogramVec // route
	stages    *prometheus.HistogramVec // stage
	stageObs  [5]prometheus.Observer   // stages, by stage index (hot path: no label lookup)
	batchSize prometheus.Histogram
	inFlight  prometheus.Gauge
	modelInfo *prometheus.GaugeVec // name, version
	reloads   *prometheus.CounterVec
	rejected  prometheus.Counter
	images    prometheus.Counter

	// Per served model and version (stats.go): prediction requests, their
	// errors and latency, the top-1 confidence and class.
	versionRequests   *prometheus.CounterVec   // model, version
	versionErrors     *prometheus.CounterVec   // model, version
	versionLatency    *prometheus.HistogramVec // model, version
	versionConfidence *prometheus.HistogramVec // model, version
	versionClasses    *prometheus.CounterVec   // model, version, class
	splitWeight       *prometheus.GaugeVec     // model
	shadowDropped     *prometheus.CounterVec   // model
	guardTrips        *prometheus.CounterVec   // model
}

// confidenceBuckets cover a top-1 probability: fine near 1, where a good
// model's answers are.
var confidenceBuckets = []float64{.1, .2, .3, .4, .5, .6, .7, .8, .9, .95, .98, .99, .999}

// Latency buckets from 0.5 ms to 10 s.
var latencyBuckets = []float64{.0005, .001, .002, .004, .006, .008, .01, .015, .02, .03, .05, .075, .1, .15, .25, .5, 1, 2.5, 5, 10}

func newMetrics(queued, admitted, budgetInUse func() float64, budgetLimit float64) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "petbreed_http_requests_total",
		Help: "HTTP requests by route (the matched pattern), method and status code.",
	}, []string{"route", "method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "petbreed_http_request_duration_seconds",
		Help:    "Time from the request's headers to the end of its response, by route.",
		Buckets: latencyBuckets,
	}, []string{"route"})
	m.stages = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "petbreed_stage_duration_seconds",
		Help:    "Time an inference request spends in each stage: read, decode, preprocess, queue, inference.",
		Buckets: latencyBuckets,
	}, []string{"stage"})
	for i, s := range []string{stageRead, stageDecode, stagePreprocess, stageQueue, stageInference} {
		m.stageObs[i] = m.stages.WithLabelValues(s)
	}
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "petbreed_batch_size",
		Help:    "Images in each model run.",
		Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128},
	})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "petbreed_http_requests_in_flight",
		Help: "HTTP requests being served.",
	})
	m.modelInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "petbreed_model_info",
		Help: "The models being served (value 1), by name and version.",
	}, []string{"name", "version"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "petbreed_model_reloads_total",
		Help: "Model reloads by result (ok, failed).",
	}, []string{"result"})
	m.rejected = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "petbreed_overload_rejections_total",
		Help: "Requests refused with 503 because the queue was full or the memory budget stayed in use.",
	})
	m.images = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "petbreed_images_total",
		Help: "Images classified.",
	})
	mv := []string{"model", "version"}
	m.versionRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "petbreed_model_requests_total",
		Help: "Prediction requests answered by each served model and version (shadow answers included).",
	}, mv)
	m.versionErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "petbreed_model_errors_total",
		Help: "Prediction requests that failed in a model version (the server's failures, not the client's bad images).",
	}, mv)
	m.versionLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "petbreed_model_latency_seconds",
		Help:    "Time from a prediction's images to its answer (decoding, queue, model run), by model and version.",
		Buckets: latencyBuckets,
	}, mv)
	m.versionConfidence = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "petbreed_model_confidence",
		Help:    "Top-1 probability of each image's answer, by model and version.",
		Buckets: confidenceBuckets,
	}, mv)
	m.versionClasses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "petbreed_model_predictions_total",
		Help: "Images by predicted (top-1) class, model and version.",
	}, []string{"model", "version", "class"})
	m.splitWeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "petbreed_split_weight",
		Help: "Each served model's weight in the traffic split (0 for a shadow or a model taken out).",
	}, []string{"model"})
	m.shadowDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "petbreed_shadow_dropped_total",
		Help: "Copies of requests not sent to a shadow model because the server was busy.",
	}, []string{"model"})
	m.guardTrips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "petbreed_canary_guard_trips_total",
		Help: "Times the canary guard set a challenger's weight to 0 (its error rate or p99 latency out of bounds).",
	}, []string{"model"})
	m.reg.MustRegister(m.versionRequests, m.versionErrors, m.versionLatency, m.versionConfidence, m.versionClasses,
		m.splitWeight, m.shadowDropped, m.guardTrips)
	m.reg.MustRegister(m.requests, m.duration, m.stages, m.batchSize, m.inFlight, m.modelInfo, m.reloads,
		m.rejected, m.images,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "petbreed_queue_depth",
			Help: "Images prepared and waiting for a model run.",
		}, queued),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "petbreed_queue_admitted",
			Help: "Images admitted and not yet answered (being prepared, waiting or running); bounded by --queue.",
		}, admitted),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "petbreed_memory_budget_bytes_in_use",
			Help: "Bytes of the memory budget held by requests (bodies, decoded images, tensors, outputs), by their declared cost.",
		}, budgetInUse),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "petbreed_memory_budget_bytes",
			Help: "The memory budget (--memory-budget).",
		}, func() float64 { return budgetLimit }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, r := range []string{"ok", "failed"} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

func (m *metrics) observeStage(stage int, d time.Duration) { m.stageObs[stage].Observe(d.Seconds()) }

// Indices into stageObs.
const (
	iRead = iota
	iDecode
	iPreprocess
	iQueue
	iInference
)

func (m *metrics) observeRequest(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
