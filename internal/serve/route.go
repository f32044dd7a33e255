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

// The router: where a protocol adapter's request meets a model. One model
// is served today, so routing is checking the names a path gives against
// it; serving several (a traffic split) changes Route and the model set it
// picks from, not the adapters.

// Route holds the model the request goes to: model and version, when not
// empty, must be the served model's. The Predictor is the request's until
// release.
func (s *Server) Route(r *http.Request, model, version string) (protocol.Predictor, func(), error) {
	m := s.acquire()
	if m == nil {
		return nil, nil, errNotReady
	}
	if model != "" && model != m.name {
		m.release()
		return nil, nil, &apiError{Status: http.StatusNotFound, Msg: fmt.Sprintf("unknown model %q: this server serves %q", model, m.name)}
	}
	if version != "" && version != m.version {
		m.release()
		return nil, nil, &apiError{Status: http.StatusNotFound,
			Msg: fmt.Sprintf("model %q has no version %q: it is at version %s", m.name, version, m.version)}
	}
	c := s.newCall(r.Context(), m)
	return c, c.release, nil
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
	return c.s.classifyImages(ctx, c.m, &c.ch, images)
}

func (c *call) PredictTensor(ctx context.Context, tensor []float32, n int) ([][]float32, error) {
	return c.s.classifyTensor(ctx, c.m, tensor, n)
}

func (c *call) Tensor(count int) []float32 {
	if count == c.m.desc.TensorLen && c.tensor == nil {
		c.tensor = c.m.getTensor()
		return *c.tensor
	}
	return make([]float32, count)
}

func (c *call) TopK(probs []float32, k int) []petbreed.Prediction { return c.m.clf.TopK(probs, k) }
