package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"petbreed"
	"petbreed/internal/imaging"
	"petbreed/internal/serve/protocol"
)

// The router: where a protocol adapter's request meets a model. A path
// may name a served model (V2's {name}: a slot's name, or the registered
// name that several slots serve) and a version; a request that names none
// (/api/predict) or names a registered model without a version goes
// through the traffic split (split.go). When shadows are configured, every
// request answered by a model that is not a shadow sends them a copy
// (shadow.go).

// Route holds the model the request goes to: by name and version when
// given, else by the split. The Predictor is the request's until release.
func (s *Server) Route(r *http.Request, name, version string) (protocol.Predictor, func(), error) {
	m, split, err := s.routeModel(r, name, version)
	if err != nil {
		return nil, nil, err
	}
	c := s.newCall(r.Context(), m)
	c.split = split
	c.unit = s.unitOf(r) // recorded for a split or shadowed request
	c.reqID = r.Header.Get("X-Request-Id")
	return c, c.release, nil
}

// routeModel finds and holds the model; split says it was chosen by the
// split (its answer is recorded and shadowed).
func (s *Server) routeModel(r *http.Request, name, version string) (*model, bool, error) {
	if name == "" {
		if m := s.chooseSlot(s.unitOf(r), everySlot); m != nil {
			return m, true, nil
		}
		return nil, false, errNotReady
	}
	if sl := s.slotByName(name); sl != nil {
		m := sl.acquire()
		if m == nil {
			return nil, false, s.notLoaded(sl)
		}
		if version != "" && version != m.version {
			m.release()
			return nil, false, &apiError{Status: http.StatusNotFound,
				Msg: fmt.Sprintf("model %q has no version %q: it is at version %s", name, version, m.version)}
		}
		return m, false, nil
	}
	// A registered model's name, which one or several slots serve.
	found := false
	for _, sl := range s.slots {
		m := sl.current()
		if m == nil || m.name != name {
			continue
		}
		found = true
		if version != "" && m.version == version {
			if m := sl.acquire(); m != nil && m.version == version {
				return m, false, nil
			} else if m != nil {
				m.release()
			}
		}
	}
	switch {
	case !found && len(s.slots) == 1 && s.slots[0].current() == nil:
		return nil, false, errNotReady
	case !found:
		return nil, false, &apiError{Status: http.StatusNotFound, Msg: fmt.Sprintf("unknown model %q: this server serves %s", name, s.servedNames())}
	case version != "":
		return nil, false, &apiError{Status: http.StatusNotFound,
			Msg: fmt.Sprintf("model %q has no version %q loaded: it is at %s", name, version, s.versionsOf(name))}
	}
	m := s.chooseSlot(s.unitOf(r), func(sl *slot) bool {
		cur := sl.current()
		return cur != nil && cur.name == name
	})
	if m == nil {
		return nil, false, errNotReady
	}
	return m, true, nil
}

func everySlot(*slot) bool { return true }

// notLoaded is the error for a slot with no model: loading, or failed.
func (s *Server) notLoaded(sl *slot) error {
	if e := sl.lastErr.Load(); e != nil {
		return &apiError{Status: http.StatusServiceUnavailable, Msg: "model not loaded",
			Detail: fmt.Sprintf("model %q failed to load: %s", sl.label(), redactPaths(e.Message))}
	}
	return errNotReady
}

// servedNames lists the names a path may give, for a 404's message.
func (s *Server) servedNames() string {
	var b []byte
	for i, sl := range s.slots {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "%q", sl.key())
	}
	return string(b)
}

func (s *Server) versionsOf(name string) string {
	var b []byte
	for _, sl := range s.slots {
		if m := sl.current(); m != nil && m.name == name {
			if len(b) > 0 {
				b = append(b, ", "...)
			}
			b = append(b, m.version...)
		}
	}
	return "version " + string(b)
}

// Begin gives a request that needs no model its share of the server.
func (s *Server) Begin(r *http.Request) (protocol.Request, func()) {
	c := s.newCall(r.Context(), nil)
	return c, c.release
}

// call is one request's hold on the server: its model (nil for a request
// that needs none), its memory budget charge, its body and its pooled
// tensor, all given back by release. Calls are pooled with their release
// function bound once, so a request allocates nothing for them.
type call struct {
	s       *Server
	m       *model
	split   bool   // chosen by the split: recorded and shadowed
	unit    string // the sticky unit, "" if none
	reqID   string // the request's id (the middleware's X-Request-Id)
	ch      charge
	body    *bytes.Buffer
	tensor  *[]float32
	release func()
}

func (s *Server) newCall(ctx context.Context, m *model) *call {
	c, _ := s.calls.Get().(*call)
	if c == nil {
		c = &call{s: s}
		c.release = c.end
		c.ch.b = s.budget
	}
	c.m = m
	c.ch.ctx = ctx
	return c
}

// end gives back everything the call holds.
func (c *call) end() {
	c.ch.release()
	if c.body != nil {
		putBody(c.body)
		c.body = nil
	}
	if c.m != nil {
		if c.tensor != nil {
			c.m.putTensor(c.tensor)
			c.tensor = nil
		}
		c.m.release()
		c.m = nil
	}
	c.ch.ctx = nil
	c.split, c.unit, c.reqID = false, "", ""
	c.s.calls.Put(c)
}

var errBodyRead = errors.New("the request's body was read already")

func (c *call) Model() *protocol.Model { return &c.m.desc }

func (c *call) ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if c.body != nil {
		return nil, errBodyRead
	}
	if err := c.s.limitBody(w, r); err != nil {
		return nil, err
	}
	start := time.Now()
	body, err := readBody(r.Body, nil, r.ContentLength, &c.ch)
	if err != nil {
		r.Body.Close()
		return nil, err
	}
	c.body = body
	c.s.metrics.observeStage(iRead, time.Since(start))
	return body.Bytes(), nil
}

// ReadImage reads an uploaded image; a request for a model counts the read
// in the read stage's metric.
func (c *call) ReadImage(w http.ResponseWriter, r *http.Request) ([]byte, string, error) {
	if c.body != nil {
		return nil, "", errBodyRead
	}
	start := time.Now()
	body, filename, err := c.s.readImage(w, r, &c.ch)
	if err != nil {
		return nil, "", err
	}
	c.body = body
	if c.m != nil {
		c.s.metrics.observeStage(iRead, time.Since(start))
	}
	return body.Bytes(), filename, nil
}

func (c *call) Charge(n int64) error { return c.ch.grow(n) }

func (c *call) Decode(ctx context.Context, data []byte) (*imaging.RGB, imaging.Info, func(), error) {
	img, info, _, err := c.s.decode(ctx, &c.ch, data) // the cost is held until the request ends
	if err != nil {
		return nil, info, nil, err
	}
	return img, info, c.s.releasePrepFn, nil
}

func (c *call) PredictImages(ctx context.Context, images [][]byte) ([][]float32, error) {
	start := time.Now()
	probs, features, prepared, err := c.s.classifyImages(ctx, c.m, &c.ch, images)
	probs, err = c.s.injected(c.m, probs, err)
	shadowed := err == nil && c.s.mirror(c, shadowCopy{images: prepared, features: features, n: len(images)})
	c.s.answered(c, start, probs, err, shadowed)
	return probs, err
}

func (c *call) PredictTensor(ctx context.Context, tensor []float32, n int) ([][]float32, error) {
	start := time.Now()
	probs, features, err := c.s.classifyTensor(ctx, c.m, tensor, n)
	probs, err = c.s.injected(c.m, probs, err)
	shadowed := err == nil && c.s.mirror(c, shadowCopy{tensor: tensor, features: features, n: n})
	c.s.answered(c, start, probs, err, shadowed)
	return probs, err
}

func (c *call) Tensor(count int) []float32 {
	if count == c.m.desc.TensorLen && c.tensor == nil {
		c.tensor = c.m.getTensor()
		return *c.tensor
	}
	return make([]float32, count)
}

func (c *call) TopK(probs []float32, k int) []petbreed.Prediction { return c.m.clf.TopK(probs, k) }
