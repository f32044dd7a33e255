package serve

import (
	"context"
	"slices"
	"sync"
	"time"
)

// The canary guard: it keeps each split model's last answers (a window of
// GuardWindow outcomes: failed or not, and how long they took), and every
// GuardInterval compares each challenger (a model with a positive weight
// that is not the champion) with the champion (the model with the highest
// configured weight). A challenger with at least GuardMinRequests answers
// in its window whose error rate exceeds the champion's by more than
// GuardMaxErrorDelta, or whose p99 latency exceeds GuardMaxLatencyRatio
// times the champion's plus GuardLatencySlack, has its weight set to 0:
// logged, counted in petbreed_canary_guard_trips_total, shown in the
// split's changed_by ("guard"). Its window is then cleared; an admin can
// give it weight again.

// Defaults of the guard's bounds.
const (
	DefaultGuardWindow        = 200
	DefaultGuardMinRequests   = 50
	DefaultGuardMaxErrorDelta = 0.05
	DefaultGuardLatencyRatio  = 2.0
	DefaultGuardLatencySlack  = 50 * time.Millisecond
	DefaultGuardInterval      = time.Second
)

// GuardConfig bounds the canary guard. Zero fields take the defaults;
// Window < 0 turns the guard off.
type GuardConfig struct {
	Window        int
	MinRequests   int
	MaxErrorDelta float64
	LatencyRatio  float64
	LatencySlack  time.Duration
	Interval      time.Duration
}

func (g *GuardConfig) setDefaults() {
	if g.Window == 0 {
		g.Window = DefaultGuardWindow
	}
	if g.MinRequests == 0 {
		g.MinRequests = DefaultGuardMinRequests
	}
	g.MinRequests = min(g.MinRequests, max(g.Window, 1))
	if g.MaxErrorDelta == 0 {
		g.MaxErrorDelta = DefaultGuardMaxErrorDelta
	}
	if g.LatencyRatio == 0 {
		g.LatencyRatio = DefaultGuardLatencyRatio
	}
	if g.LatencySlack == 0 {
		g.LatencySlack = DefaultGuardLatencySlack
	}
	if g.Interval <= 0 {
		g.Interval = DefaultGuardInterval
	}
}

// outcome is one answer in a window.
type outcome struct {
	failed bool
	took   time.Duration
}

// window is a ring of the last outcomes.
type window struct {
	ring []outcome
	next int
	full bool
}

func (w *window) add(o outcome) {
	w.ring[w.next] = o
	w.next++
	if w.next == len(w.ring) {
		w.next, w.full = 0, true
	}
}

func (w *window) outcomes() []outcome {
	if w.full {
		return w.ring
	}
	return w.ring[:w.next]
}

// summary is a window's error rate and p99 latency.
type summary struct {
	n         int
	errorRate float64
	p99       time.Duration
}

func (w *window) summary() summary {
	o := w.outcomes()
	if len(o) == 0 {
		return summary{}
	}
	lat := make([]time.Duration, 0, len(o))
	failed := 0
	for _, x := range o {
		if x.failed {
			failed++
		}
		lat = append(lat, x.took)
	}
	slices.Sort(lat)
	i := min(len(lat)-1, (len(lat)*99+99)/100-1) // nearest rank
	return summary{n: len(o), errorRate: float64(failed) / float64(len(o)), p99: lat[max(i, 0)]}
}

// guard holds the windows, by slot index.
type guard struct {
	cfg GuardConfig
	mu  sync.Mutex
	win []window
}

func newGuard(cfg GuardConfig, slots int) *guard {
	g := &guard{cfg: cfg, win: make([]window, slots)}
	if cfg.Window > 0 {
		for i := range g.win {
			g.win[i].ring = make([]outcome, cfg.Window)
		}
	}
	return g
}

func (g *guard) on() bool { return g.cfg.Window > 0 }

// observe adds an answer of slot i.
func (g *guard) observe(i int, failed bool, took time.Duration) {
	if !g.on() {
		return
	}
	g.mu.Lock()
	g.win[i].add(outcome{failed, took})
	g.mu.Unlock()
}

// reset clears slot i's window (a new version loaded, or it was dropped).
func (g *guard) reset(i int) {
	if !g.on() {
		return
	}
	g.mu.Lock()
	g.win[i].next, g.win[i].full = 0, false
	g.mu.Unlock()
}

// verdict is why a challenger is out, "" if it is not.
func (g *guard) verdict(champ, chal summary) string {
	if chal.n < g.cfg.MinRequests {
		return ""
	}
	champErr := 0.0
	if champ.n >= g.cfg.MinRequests {
		champErr = champ.errorRate
	}
	if chal.errorRate > champErr+g.cfg.MaxErrorDelta {
		return "error rate"
	}
	if champ.n >= g.cfg.MinRequests &&
		float64(chal.p99) > g.cfg.LatencyRatio*float64(champ.p99)+float64(g.cfg.LatencySlack) {
		return "p99 latency"
	}
	return ""
}

// checkGuard compares each challenger with the champion and takes out the
// ones out of bounds; it returns the names taken out.
func (s *Server) checkGuard() []string {
	g := s.guard
	if !g.on() || s.champion < 0 {
		return nil
	}
	s.splitMu.Lock()
	defer s.splitMu.Unlock()
	sp := s.split.Load()
	g.mu.Lock()
	champ := g.win[s.champion].summary()
	type out struct {
		i      int
		reason string
		sum    summary
	}
	var outs []out
	for i := range s.slots {
		if i == s.champion || !(sp.weights[i] > 0) {
			continue
		}
		sum := g.win[i].summary()
		if r := g.verdict(champ, sum); r != "" {
			outs = append(outs, out{i, r, sum})
		}
	}
	g.mu.Unlock()
	if len(outs) == 0 {
		return nil
	}
	weights := append([]float64(nil), sp.weights...)
	var names []string
	for _, o := range outs {
		weights[o.i] = 0
		name := s.slots[o.i].label()
		names = append(names, name)
		s.metrics.guardTrips.WithLabelValues(name).Inc()
		s.log.Warn("canary guard: challenger taken out of the split", "model", name, "reason", o.reason,
			"error_rate", o.sum.errorRate, "p99_ms", ms(o.sum.p99), "answers", o.sum.n,
			"champion", s.slots[s.champion].label(), "champion_error_rate", champ.errorRate, "champion_p99_ms", ms(champ.p99))
	}
	s.setSplit(weights, "guard")
	for _, o := range outs {
		g.reset(o.i)
	}
	return names
}

// guardLoop runs checkGuard every interval until ctx is done.
func (s *Server) guardLoop(ctx context.Context) {
	if !s.guard.on() || len(s.slots) < 2 {
		return
	}
	t := time.NewTicker(s.guard.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkGuard()
		}
	}
}
