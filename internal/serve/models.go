package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"
)

// Several models in one server. Each configured model is a slot: its URI,
// the name it is served under, its weight in the traffic split (or its
// shadow role), and the model loaded for it now. A slot loads, reloads and
// polls its alias on its own: an alias moving reloads only its slot, and a
// slot that fails to load leaves the others serving.

// ModelSpec is one model the server serves.
type ModelSpec struct {
	// Name is what the model is served under (V2's {name}, the answers'
	// model); "" is the model's own name (the registered model's, or the
	// file's base name). Required when several models are served.
	Name string `yaml:"name" json:"name"`
	// URI is an ONNX file, or a models:/ or runs:/ URI.
	URI string `yaml:"uri" json:"uri"`
	// Weight is the model's share of the traffic split (any non-negative
	// number; the shares are the weights over their sum). When no model has
	// a weight, the first takes all the traffic.
	Weight float64 `yaml:"weight" json:"weight"`
	// Shadow: the model gets a copy of the split's traffic; its answers are
	// recorded, never returned. A shadow has no weight.
	Shadow bool `yaml:"shadow" json:"shadow"`
}

// ModelsFile is the --models file: the models and the split's settings.
type ModelsFile struct {
	Models []ModelSpec `yaml:"models"`
	// SplitHeader and SplitCookie name the sticky unit (optional; they
	// override the flags when set).
	SplitHeader string `yaml:"split_header"`
	SplitCookie string `yaml:"split_cookie"`
}

// maxModels bounds the models one server serves.
const maxModels = 16

var modelNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ReadModelsFile reads a --models YAML file (unknown keys are errors).
func ReadModelsFile(path string) (ModelsFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ModelsFile{}, err
	}
	var f ModelsFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return ModelsFile{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkSpecs(f.Models); err != nil {
		return ModelsFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseModelFlag reads one --model value: NAME=URI, or a URI alone.
func ParseModelFlag(v string) ModelSpec {
	if name, uri, ok := strings.Cut(v, "="); ok && modelNameRe.MatchString(name) && !strings.Contains(name, ":") {
		return ModelSpec{Name: name, URI: uri}
	}
	return ModelSpec{URI: v}
}

// CheckModels checks a set of models as New does.
func CheckModels(specs []ModelSpec) error { return checkSpecs(specs) }

// checkSpecs checks a set of models: at least one that is not a shadow,
// names valid and distinct (required when there are several), weights
// finite and non-negative.
func checkSpecs(specs []ModelSpec) error {
	if len(specs) == 0 {
		return errors.New("no model")
	}
	if len(specs) > maxModels {
		return fmt.Errorf("%d models: at most %d", len(specs), maxModels)
	}
	seen := map[string]bool{}
	primaries := 0
	for i, sp := range specs {
		if sp.URI == "" {
			return fmt.Errorf("models[%d] (%s): no uri", i, sp.Name)
		}
		if sp.Name == "" && len(specs) > 1 {
			return fmt.Errorf("models[%d] (%s): a name is needed when several models are served (NAME=URI)", i, sp.URI)
		}
		if sp.Name != "" && !modelNameRe.MatchString(sp.Name) {
			return fmt.Errorf("models[%d]: name %q: want letters, digits, '.', '_' or '-' (at most 64)", i, sp.Name)
		}
		if seen[sp.Name] {
			return fmt.Errorf("models[%d]: name %q is given twice", i, sp.Name)
		}
		seen[sp.Name] = true
		if !(sp.Weight >= 0) || sp.Weight > 1e9 {
			return fmt.Errorf("models[%d] (%s): weight %v: want a number from 0 to 1e9", i, sp.Name, sp.Weight)
		}
		if sp.Shadow && sp.Weight != 0 {
			return fmt.Errorf("models[%d] (%s): a shadow takes no weight", i, sp.Name)
		}
		if !sp.Shadow {
			primaries++
		}
	}
	if primaries == 0 {
		return errors.New("every model is a shadow: at least one must answer")
	}
	return nil
}

// slot is one configured model and the model loaded for it.
type slot struct {
	spec ModelSpec
	idx  int // its place in Server.slots

	// cur is the model serving now: nil until the first load (or after a
	// failed first load). Requests take it under mu's read lock; a reload
	// swaps it under the write lock, so a retired model gets no new
	// requests.
	mu  sync.RWMutex
	cur *model

	reloadMu  sync.Mutex // one reload of this slot at a time
	lastErr   atomic.Pointer[reloadError]
	failedNum int // alias version whose load failed (not retried by polling); under reloadMu
	// shadow marks a shadow now (Config or a split change never makes one:
	// it is the spec's).
	shadow bool
}

// acquire returns the slot's model, held until release; nil when none is
// loaded.
func (sl *slot) acquire() *model {
	sl.mu.RLock()
	m := sl.cur
	if m != nil {
		m.refs.Add(1)
	}
	sl.mu.RUnlock()
	return m
}

// current returns the slot's model without holding it (for metadata).
func (sl *slot) current() *model {
	sl.mu.RLock()
	defer sl.mu.RUnlock()
	return sl.cur
}

// key is the name the slot is served under: its configured name, else its
// model's own.
func (sl *slot) key() string {
	if sl.spec.Name != "" {
		return sl.spec.Name
	}
	if m := sl.current(); m != nil {
		return m.name
	}
	return ""
}

// label names the slot in logs: its name, else its URI.
func (sl *slot) label() string {
	if sl.spec.Name != "" {
		return sl.spec.Name
	}
	return sl.spec.URI
}

// specs are the configured models: Config.Models, or Config.Model alone.
func (c *Config) specs() []ModelSpec {
	if len(c.Models) > 0 {
		return c.Models
	}
	return []ModelSpec{{URI: c.Model, Weight: 1}}
}

// ModelState is one served model in /api/health.
type ModelState struct {
	// Name is what it is served under; State is "ready", "loading" (not
	// yet loaded) or "failed" (its load failed and nothing serves it).
	Name   string     `json:"name"`
	State  string     `json:"state"`
	Shadow bool       `json:"shadow,omitempty"`
	Weight float64    `json:"weight"`
	Share  float64    `json:"share"` // of the split's traffic, in [0,1]
	Model  *ModelInfo `json:"model,omitempty"`
	// LastReloadError is the last failed load of this model, until one
	// succeeds.
	LastReloadError *reloadError `json:"last_reload_error,omitempty"`
}

// reloadSlot resolves a slot's URI again, loads that model beside the one
// serving and swaps it in; a failure leaves the old one serving.
func (s *Server) reloadSlot(sl *slot) (ReloadResult, error) {
	sl.reloadMu.Lock()
	defer sl.reloadMu.Unlock()
	return s.reloadSlotLocked(sl)
}

func (s *Server) reloadSlotLocked(sl *slot) (ReloadResult, error) {
	if s.closed.Load() {
		return ReloadResult{}, errors.New("the server is stopping")
	}
	r, err := s.resolve(sl.spec.URI)
	if err == nil {
		var m *model
		if m, err = s.load(sl, r); err == nil {
			return s.swap(sl, m), nil
		}
		if r.num > 0 {
			sl.failedNum = r.num
		}
	}
	sl.lastErr.Store(&reloadError{Message: err.Error(), Time: time.Now()})
	s.metrics.reloads.WithLabelValues("failed").Inc()
	if old := sl.current(); old != nil {
		s.log.Error("model reload failed: the current model goes on serving", "model", sl.label(), "uri", sl.spec.URI,
			"serving", old.name, "version", old.version, "err", err)
	} else {
		s.log.Error("model load failed", "model", sl.label(), "uri", sl.spec.URI, "err", err)
	}
	return ReloadResult{}, err
}

// swap makes m the slot's model and retires the previous one.
func (s *Server) swap(sl *slot, m *model) ReloadResult {
	sl.mu.Lock()
	old := sl.cur
	sl.cur = m
	sl.mu.Unlock()
	sl.lastErr.Store(nil)
	sl.failedNum = 0
	s.setModelInfo()
	s.guard.reset(sl.idx)
	s.metrics.reloads.WithLabelValues("ok").Inc()
	res := ReloadResult{Model: m.info()}
	if old != nil {
		pi := old.info()
		res.Previous = &pi
		s.retiring.Add(1)
		go func() {
			defer s.retiring.Done()
			s.retire(old)
			s.log.Info("previous model closed", "name", old.name, "version", old.version)
		}()
		s.log.Info("model reloaded", "model", sl.key(), "name", m.name, "version", m.version, "path", m.path,
			"previous_version", old.version, "load_ms", ms(m.loadDur))
	} else {
		s.log.Info("model loaded", "model", sl.key(), "name", m.name, "version", m.version, "path", m.path,
			"classes", len(m.classes), "load_ms", ms(m.loadDur))
	}
	return res
}

// setModelInfo sets petbreed_model_info to the models serving now.
func (s *Server) setModelInfo() {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	s.metrics.modelInfo.Reset()
	for _, sl := range s.slots {
		if m := sl.current(); m != nil {
			s.metrics.modelInfo.WithLabelValues(m.desc.Name, m.version).Set(1)
		}
	}
}

// pollSlot reloads a slot when its models:/NAME@ALIAS alias moves, and
// retries a slot whose first load failed. Which alias, it learns from
// tracking's resolution of the URI (kept on the loaded model): serve does
// not parse the URI itself.
func (s *Server) pollSlot(ctx context.Context, sl *slot) {
	if s.cfg.Poll < 0 {
		return
	}
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := sl.current()
		switch {
		case cur == nil:
			if inStore(sl.spec.URI) || sl.lastErr.Load() == nil {
				s.reloadSlot(sl) // not loaded yet: try again
			}
		case cur.alias != "":
			s.checkAlias(sl, cur.name, cur.alias)
		}
	}
}

func (s *Server) checkAlias(sl *slot, name, alias string) {
	store, err := s.trackingStore()
	if err != nil {
		return
	}
	num, err := store.Alias(name, alias)
	if err != nil {
		s.log.Warn("model poll: cannot read the alias", "model", sl.label(), "uri", sl.spec.URI, "err", err)
		return
	}
	sl.reloadMu.Lock()
	defer sl.reloadMu.Unlock()
	cur := sl.current()
	if cur != nil && cur.version == strconv.Itoa(num) && sl.failedNum != 0 {
		// The alias is back on the version being served: the failed one
		// is no longer wanted.
		sl.failedNum = 0
		sl.lastErr.Store(nil)
	}
	if cur == nil || cur.version == strconv.Itoa(num) || num == sl.failedNum {
		return
	}
	s.log.Info("model alias moved", "model", sl.key(), "uri", sl.spec.URI, "from", cur.version, "to", num)
	s.reloadSlotLocked(sl)
}

// slotByName finds the slot served under name.
func (s *Server) slotByName(name string) *slot {
	for _, sl := range s.slots {
		if sl.key() == name {
			return sl
		}
	}
	return nil
}
