package serve

import (
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Per model version: its counts and times, for Triton's statistics
// extension (GET /v2/models/{name}[/versions/{version}]/stats) and the
// per-version Prometheus metrics. Every observer is looked up once, when
// the version loads, so a request adds to counters without a label lookup.

// durationStat is Triton's $duration_stat: how many, and their total time.
type durationStat struct{ count, ns atomic.Int64 }

func (d *durationStat) add(t time.Duration) {
	d.count.Add(1)
	d.ns.Add(int64(t))
}

func (d *durationStat) json() tritonDuration {
	return tritonDuration{Count: d.count.Load(), Ns: d.ns.Load()}
}

type modelStats struct {
	success, fail, queue, infer durationStat
	inferences, executions      atomic.Int64 // images, model runs
	last                        atomic.Int64 // the last inference, ms since the epoch

	// Prometheus, labelled model and version (and class).
	requests, errors prometheus.Counter
	latency          prometheus.Observer
	confidence       prometheus.Observer
	classCounters    []prometheus.Counter // by class index
	shadowDrops      prometheus.Counter
}

func newModelStats(m *metrics, name, version string, classes []string) *modelStats {
	st := &modelStats{
		requests:    m.versionRequests.WithLabelValues(name, version),
		errors:      m.versionErrors.WithLabelValues(name, version),
		latency:     m.versionLatency.WithLabelValues(name, version),
		confidence:  m.versionConfidence.WithLabelValues(name, version),
		shadowDrops: m.shadowDropped.WithLabelValues(name),
	}
	for _, c := range classes {
		st.classCounters = append(st.classCounters, m.versionClasses.WithLabelValues(name, version, c))
	}
	return st
}

// ran counts one model run of n images and how long it and its queue took.
func (st *modelStats) ran(n int, queued, inference time.Duration) {
	st.queue.add(queued)
	st.infer.add(inference)
	st.inferences.Add(int64(n))
}

// Triton's statistics, as JSON.
type tritonDuration struct {
	Count int64 `json:"count"`
	Ns    int64 `json:"ns"`
}

type tritonInferenceStats struct {
	Success      tritonDuration `json:"success"`
	Fail         tritonDuration `json:"fail"`
	Queue        tritonDuration `json:"queue"`
	ComputeInput tritonDuration `json:"compute_input"`
	ComputeInfer tritonDuration `json:"compute_infer"`
	ComputeOut   tritonDuration `json:"compute_output"`
	CacheHit     tritonDuration `json:"cache_hit"`
	CacheMiss    tritonDuration `json:"cache_miss"`
}

type tritonModelStat struct {
	Name           string               `json:"name"`
	Version        string               `json:"version"`
	LastInference  int64                `json:"last_inference"`
	InferenceCount int64                `json:"inference_count"`
	ExecutionCount int64                `json:"execution_count"`
	InferenceStats tritonInferenceStats `json:"inference_stats"`
	BatchStats     []struct{}           `json:"batch_stats"`
}

func (m *model) tritonStat() tritonModelStat {
	st := m.stats
	return tritonModelStat{
		Name: m.desc.Name, Version: m.version,
		LastInference: st.last.Load(), InferenceCount: st.inferences.Load(), ExecutionCount: st.executions.Load(),
		InferenceStats: tritonInferenceStats{
			Success: st.success.json(), Fail: st.fail.json(), Queue: st.queue.json(), ComputeInfer: st.infer.json(),
		},
		BatchStats: []struct{}{},
	}
}

// handleStats answers GET /v2/models[/{name}[/versions/{version}]]/stats:
// every loaded model's (or the one named) counts and times, Triton's
// statistics extension.
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	out := []tritonModelStat{}
	for _, sl := range s.slots {
		m := sl.current()
		if m == nil || (name != "" && m.desc.Name != name && m.name != name) || (version != "" && m.version != version) {
			continue
		}
		out = append(out, m.tritonStat())
	}
	if name != "" && len(out) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no loaded model " + quoteNameVersion(name, version)})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ModelStats []tritonModelStat `json:"model_stats"`
	}{out})
}

func quoteNameVersion(name, version string) string {
	q, _ := json.Marshal(name)
	if version == "" {
		return string(q)
	}
	v, _ := json.Marshal(version)
	return string(q) + " at version " + string(v)
}

// repoEntry is one model of Triton's repository index.
type repoEntry struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   string `json:"state"` // READY, LOADING, UNAVAILABLE
	Reason  string `json:"reason,omitempty"`
}

// maxIndexBody bounds POST /v2/repository/index's body ({"ready": true}).
const maxIndexBody = 4 << 10

// handleRepositoryIndex answers POST /v2/repository/index (Triton's model
// repository extension): every configured model with its version and
// state; {"ready": true} keeps the ready ones only.
func (s *Server) handleRepositoryIndex(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Ready bool `json:"ready"`
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxIndexBody+1))
	if err != nil || len(b) > maxIndexBody {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be a small JSON object, {\"ready\": true|false}"})
		return
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body is not {\"ready\": true|false}: " + err.Error()})
			return
		}
	}
	out := []repoEntry{}
	for _, st := range s.modelStates(false) {
		e := repoEntry{Name: st.Name}
		switch st.State {
		case "ready":
			e.State, e.Version = "READY", st.Model.Version
		case "loading":
			e.State = "LOADING"
		default:
			e.State = "UNAVAILABLE"
			if st.LastReloadError != nil {
				e.Reason = redactPaths(st.LastReloadError.Message)
			}
		}
		if req.Ready && e.State != "READY" {
			continue
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
}
