package serve

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"petbreed"
	"petbreed/internal/ab"
	"petbreed/internal/imaging"
	"petbreed/internal/serve/protocol"
)

// After a prediction: its outcome counted for its version (metrics,
// Triton's statistics, the canary guard), recorded in the prediction log
// when it went through the split, and copied to the shadows.

// PredictionLog is what the server needs of the A/B prediction log
// (package ab's *Log): Record never blocks; the handlers are mounted as
// POST /api/feedback and GET /api/ab.
type PredictionLog interface {
	PredictionRecorder
	FeedbackHandler() http.Handler
	ReportHandler() http.Handler
}

// PredictionRecorder records answered (and shadow) predictions.
type PredictionRecorder interface{ Record(r ab.Record) }

// recordTopK is how many classes a recorded prediction keeps.
const recordTopK = 5

// DefaultShadowTimeout bounds one shadow prediction.
const DefaultShadowTimeout = 10 * time.Second

// versionFailed says whether a prediction error is the version's own (a
// failed model run, an internal error), not the client's (a bad image, a
// request cancelled) nor the server's load (503).
func versionFailed(err error) bool {
	if err == nil {
		return false
	}
	st := protocol.AsError(err).Status
	return st >= 500 && st != http.StatusServiceUnavailable
}

// answered counts a primary prediction of c's model and records it when
// it went through the split or was copied to a shadow.
func (s *Server) answered(c *call, start time.Time, probs [][]float32, err error, shadowed bool) {
	took := time.Since(start)
	failed := versionFailed(err)
	if err != nil && !failed {
		return // the client's mistake or the server's load: not the version's
	}
	m := c.m
	m.stats.observeRows(m, !failed, took, probs)
	s.guard.observe(m.slot.idx, failed, took)
	if failed || !(c.split || shadowed) || s.cfg.PredictionLog == nil {
		return
	}
	s.record(m, c.reqID, c.unit, false, took, probs)
}

// injected is a test's failure of m's predictions (failInject), else
// the prediction as it is.
func (s *Server) injected(m *model, probs [][]float32, err error) ([][]float32, error) {
	if s.failInject == nil || err != nil {
		return probs, err
	}
	if ferr := s.failInject(m.desc.Name); ferr != nil {
		return nil, ferr
	}
	return probs, nil
}

// record writes one log record per image (a request of several images
// gets ids "ID#0", "ID#1", ...).
func (s *Server) record(m *model, reqID, unit string, shadow bool, took time.Duration, probs [][]float32) {
	now := time.Now()
	for i, row := range probs {
		id := reqID
		if len(probs) > 1 {
			id = reqID + "#" + strconv.Itoa(i)
		}
		s.cfg.PredictionLog.Record(ab.Record{RequestID: id, Time: now, Unit: unit, Model: m.desc.Name,
			Version: m.version, Shadow: shadow, TopK: m.clf.TopK(row, recordTopK), LatencyMS: ms(took)})
	}
}

// observeRows counts a request's outcome and each row's top-1 class.
func (st *modelStats) observeRows(m *model, ok bool, took time.Duration, probs [][]float32) {
	st.requests.Inc()
	st.latency.Observe(took.Seconds())
	if !ok {
		st.errors.Inc()
		st.fail.add(took)
		return
	}
	st.success.add(took)
	st.last.Store(time.Now().UnixMilli())
	for _, row := range probs {
		best := 0
		for j, p := range row {
			if p > row[best] {
				best = j
			}
		}
		if len(row) > 0 {
			st.confidence.Observe(float64(row[best]))
			if best < len(st.classCounters) {
				st.classCounters[best].Inc()
			}
		}
	}
}

// sameTransform says whether two preprocessings make the same image (the
// normalisation is each model's batcher's own).
func sameTransform(a, b petbreed.Preprocess) bool {
	a.Mean, a.Std, b.Mean, b.Std = [3]float32{}, [3]float32{}, [3]float32{}, [3]float32{}
	return a == b
}

// shadowCopy is what a shadow gets of an answered request: the images its
// model prepared or its tensor, and the features when it ran on a shared
// trunk.
type shadowCopy struct {
	images   []*imaging.RGB
	tensor   []float32
	features [][]float32
	n        int
}

// mirror sends a copy of a request answered by a model that is not a
// shadow to every shadow, and says whether it sent one. A shadow of the
// same backbone gets the features and runs only its head (shadowHead);
// another gets the prepared images (when its preprocessing makes the same
// image) or the tensor (copied: the request's is given back at its end)
// for its own batcher. A copy is dropped, never queued, when the server is
// busy: more than ShadowMax shadow predictions running, or (for a copy
// that needs a model run) the queue more than half full.
func (s *Server) mirror(c *call, cp shadowCopy) bool {
	if c.m.slot.shadow {
		return false // a request that names a shadow is its own
	}
	sent := false
	for _, sl := range s.slots {
		if !sl.shadow {
			continue
		}
		sm := sl.acquire()
		if sm == nil {
			continue
		}
		headOnly := cp.features != nil && sm.head != nil && sm.trunkKey == c.m.trunkKey
		drop := s.draining.Load() || s.shadowing.Add(1) > int64(s.cfg.ShadowMax)
		if !drop && !headOnly {
			switch {
			case s.admitted.Load() > int64(s.cfg.Queue/2):
				drop = true
			case cp.tensor != nil:
				drop = sm.desc.TensorLen != c.m.desc.TensorLen
			default:
				drop = !sameTransform(sm.pre, c.m.pre)
			}
		}
		if drop {
			s.shadowing.Add(-1)
			sm.stats.shadowDrops.Inc()
			sm.release()
			continue
		}
		sent = true
		if headOnly {
			go s.shadowHead(sm, cp.features, c.reqID, c.unit)
			continue
		}
		j := &job{images: cp.images, n: cp.n, done: make(chan jobResult, 1)}
		if cp.tensor != nil {
			j.tensor = append([]float32(nil), cp.tensor[:cp.n*sm.desc.TensorLen]...)
		}
		go s.runShadow(sm, j, c.reqID, c.unit)
	}
	return sent
}

// shadowHead runs a shadow's head on the primary's features and records
// its answer; it holds sm.
func (s *Server) shadowHead(sm *model, features [][]float32, reqID, unit string) {
	defer sm.release()
	defer s.shadowing.Add(-1)
	start := time.Now()
	probs, err := sm.head.Probabilities(features)
	took := time.Since(start)
	sm.stats.ran(len(features), 0, took)
	sm.stats.executions.Add(1)
	sm.stats.observeRows(sm, err == nil, took, probs)
	if err != nil || s.cfg.PredictionLog == nil {
		return
	}
	s.record(sm, reqID, unit, true, took, probs)
}

// runShadow runs one shadow copy and records its answer; it holds sm.
func (s *Server) runShadow(sm *model, j *job, reqID, unit string) {
	defer sm.release()
	defer s.shadowing.Add(-1)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShadowTimeout)
	defer cancel()
	j.ctx = ctx
	start := time.Now()
	if err := sm.batch.submit(j); err != nil {
		sm.stats.shadowDrops.Inc()
		return
	}
	res := <-j.done
	if res.err == nil {
		res.probs, res.err = sm.answer(res.probs)
	}
	took := time.Since(start)
	failed := res.err != nil
	sm.stats.ran(j.n, res.queued, res.inference)
	sm.stats.observeRows(sm, !failed, took, res.probs)
	if failed || s.cfg.PredictionLog == nil {
		return
	}
	s.record(sm, reqID, unit, true, took, res.probs)
}
