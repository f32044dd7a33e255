package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"time"
)

// The traffic split. Each served model has a weight; a request that names
// no model (or names a registered model several slots serve, without a
// version) goes to one of them in proportion to the weights. When it names
// a unit (the split header, X-User-Id by default, or the split cookie) the
// choice is sticky: weighted rendezvous hashing (HRW) scores every model
// with -w/ln(h) for h the unit's hash with that model's name in (0,1), and
// the highest wins, so the same unit always gets the same model for the
// same weights, each model gets its share of the units, and raising one
// model's weight moves only units to it (no unit moves between two
// models whose weights did not change). Without a unit the choice is a
// weighted random one. The weights are one immutable value swapped whole
// (POST /admin/split, the canary guard), so a request sees one split.

// DefaultSplitHeader names the request header of the sticky unit.
const DefaultSplitHeader = "X-User-Id"

// maxUnit bounds the unit read from a header or cookie (longer: not sticky).
const maxUnit = 256

// split is the weights of the slots, by slot index (0 for shadows and for
// models taken out).
type split struct {
	weights []float64
	changed time.Time
	by      string // who set it: "config", "admin", "guard"
}

// hashUnit is FNV-1a over the unit, a separator and the model's name:
// stable across processes and replicas (every replica sends a unit to the
// same model), and without allocation.
func hashUnit(unit, name string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(unit); i++ {
		h ^= uint64(unit[i])
		h *= prime
	}
	h ^= 0xff
	h *= prime
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= prime
	}
	// FNV's low bits mix poorly over short keys: finish with a 64-bit
	// mixer (splitmix64's) so the scores are uniform.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// hrwScore is the weighted rendezvous score of a unit for a model of
// weight w: -w/ln(u) with u uniform in (0,1) from the hash. The highest
// score wins; P(model i wins) = w_i / sum(w).
func hrwScore(unit, name string, w float64) float64 {
	u := (float64(hashUnit(unit, name)>>11) + 0.5) / (1 << 53)
	return -w / math.Log(u)
}

// candidate is one model a split may choose.
type candidate struct {
	name   string
	weight float64
}

// pick chooses among cands by the weights: by the unit's HRW scores when
// unit is not empty, else by r, a uniform number in [0,1). It returns -1
// when no candidate has a positive weight.
func pick(cands []candidate, unit string, r float64) int {
	best, bestScore := -1, math.Inf(-1)
	if unit != "" {
		for i, c := range cands {
			if !(c.weight > 0) {
				continue
			}
			if s := hrwScore(unit, c.name, c.weight); s > bestScore {
				best, bestScore = i, s
			}
		}
		return best
	}
	total := 0.0
	for _, c := range cands {
		if c.weight > 0 {
			total += c.weight
		}
	}
	if total == 0 {
		return -1
	}
	x := r * total
	for i, c := range cands {
		if !(c.weight > 0) {
			continue
		}
		best = i
		if x < c.weight {
			return i
		}
		x -= c.weight
	}
	return best // rounding at the top end
}

// unitOf is the request's sticky unit: the split header's value, else the
// split cookie's, else "" (a weighted random choice).
func (s *Server) unitOf(r *http.Request) string {
	if s.cfg.SplitHeader != "" {
		if v := r.Header.Get(s.cfg.SplitHeader); v != "" && len(v) <= maxUnit {
			return v
		}
	}
	if s.cfg.SplitCookie != "" {
		if c, err := r.Cookie(s.cfg.SplitCookie); err == nil && c.Value != "" && len(c.Value) <= maxUnit {
			return c.Value
		}
	}
	return ""
}

// chooseSlot picks the slot a split request goes to among the slots for
// which in says yes, and holds its model. It skips slots with nothing
// loaded; when no candidate has a positive weight, the first loaded one
// serves.
func (s *Server) chooseSlot(unit string, in func(*slot) bool) *model {
	sp := s.split.Load()
	var buf [maxModels]candidate
	var idx [maxModels]int
	cands := buf[:0]
	first := -1
	for i, sl := range s.slots {
		if sl.shadow || !in(sl) || sl.current() == nil {
			continue
		}
		if first < 0 {
			first = i
		}
		cands = append(cands, candidate{name: sl.key(), weight: sp.weights[i]})
		idx[len(cands)-1] = i
	}
	if first < 0 {
		return nil
	}
	chosen := first
	if j := pick(cands, unit, rand.Float64()); j >= 0 {
		chosen = idx[j]
	}
	if m := s.slots[chosen].acquire(); m != nil {
		return m
	}
	return s.slots[first].acquire()
}

// initialSplit is the configured weights; when none is positive the first
// model that is not a shadow takes all the traffic.
func initialSplit(slots []*slot) *split {
	sp := &split{weights: make([]float64, len(slots)), changed: time.Now(), by: "config"}
	any := false
	for i, sl := range slots {
		if !sl.shadow {
			sp.weights[i] = sl.spec.Weight
			any = any || sl.spec.Weight > 0
		}
	}
	if !any {
		for i, sl := range slots {
			if !sl.shadow {
				sp.weights[i] = 1
				break
			}
		}
	}
	return sp
}

// setSplit swaps in new weights (by slot index) and updates the gauge.
func (s *Server) setSplit(weights []float64, by string) {
	s.split.Store(&split{weights: weights, changed: time.Now(), by: by})
	for i, sl := range s.slots {
		s.metrics.splitWeight.WithLabelValues(sl.label()).Set(weights[i])
	}
}

// SplitState is the current split, in /api/health and POST /admin/split's
// answer: each model's weight and share of the traffic.
type SplitState struct {
	Weights map[string]float64 `json:"weights"`
	Shares  map[string]float64 `json:"shares"`
	Header  string             `json:"unit_header,omitempty"`
	Cookie  string             `json:"unit_cookie,omitempty"`
	Changed time.Time          `json:"changed_at"`
	By      string             `json:"changed_by"` // config, admin or guard
}

func (s *Server) splitState() SplitState {
	sp := s.split.Load()
	st := SplitState{Weights: map[string]float64{}, Shares: map[string]float64{}, Header: s.cfg.SplitHeader,
		Cookie: s.cfg.SplitCookie, Changed: sp.changed, By: sp.by}
	total := 0.0
	for _, w := range sp.weights {
		total += w
	}
	for i, sl := range s.slots {
		if sl.shadow {
			continue
		}
		st.Weights[sl.label()] = sp.weights[i]
		if total > 0 {
			st.Shares[sl.label()] = sp.weights[i] / total
		}
	}
	return st
}

// maxSplitBody bounds POST /admin/split's body.
const maxSplitBody = 16 << 10

// handleSplit sets the weights (POST /admin/split, admin token):
// {"weights": {"champion": 80, "challenger": 20}}. Models left out keep
// their weight; the new split applies to the next request, atomically.
func (s *Server) handleSplit(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxSplitBody+1))
	if err != nil {
		writeError(w, errorf(http.StatusBadRequest, "cannot read the body", "%v", err))
		return
	}
	if len(b) > maxSplitBody {
		writeError(w, errorf(http.StatusRequestEntityTooLarge, "payload too large", "the body is over %d bytes", maxSplitBody))
		return
	}
	var req struct {
		Weights map[string]float64 `json:"weights"`
	}
	if err := json.Unmarshal(b, &req); err != nil || len(req.Weights) == 0 {
		writeError(w, errorf(http.StatusBadRequest, "bad split", `want {"weights": {"NAME": WEIGHT, ...}}`))
		return
	}
	s.splitMu.Lock()
	defer s.splitMu.Unlock()
	weights := append([]float64(nil), s.split.Load().weights...)
	names := make([]string, 0, len(req.Weights))
	for n := range req.Weights {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := req.Weights[n]
		i := s.slotIndex(n)
		switch {
		case i < 0:
			writeError(w, errorf(http.StatusNotFound, "unknown model", "no served model is named %q", n))
			return
		case s.slots[i].shadow:
			writeError(w, errorf(http.StatusBadRequest, "bad split", "%q is a shadow: it takes no weight", n))
			return
		case !(v >= 0) || v > 1e9:
			writeError(w, errorf(http.StatusBadRequest, "bad split", "%q: weight %v: want a number from 0 to 1e9", n, v))
			return
		}
		weights[i] = v
	}
	total := 0.0
	for _, v := range weights {
		total += v
	}
	if total == 0 {
		writeError(w, errorf(http.StatusBadRequest, "bad split", "every weight would be 0: some model must take the traffic"))
		return
	}
	s.setSplit(weights, "admin")
	st := s.splitState()
	s.log.Info("split changed", "weights", fmt.Sprint(st.Weights))
	writeJSON(w, http.StatusOK, st)
}

// slotIndex finds the slot served under name (its label), -1 if none.
func (s *Server) slotIndex(name string) int {
	for i, sl := range s.slots {
		if sl.label() == name || sl.key() == name {
			return i
		}
	}
	return -1
}
