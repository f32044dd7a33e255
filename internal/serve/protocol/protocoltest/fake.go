// Package protocoltest is a fake of the server's side of package protocol:
// a Router over one fake Predictor that answers fixed probabilities, for
// testing protocol adapters in milliseconds without a model. The real
// server is tested end to end in package serve.
package protocoltest

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"sync"

	"petbreed"
	"petbreed/internal/httpjson"
	"petbreed/internal/imaging"
	"petbreed/internal/serve/protocol"
)

// Predictor is a fake model. Zero fields: no limits, no errors.
type Predictor struct {
	M protocol.Model
	// Probs is every image's answer (one row of len(M.Labels)).
	Probs []float32
	// Err, when set, is what PredictImages and PredictTensor return.
	Err error
	// MaxBody bounds ReadBody and ReadImage (413 beyond); 0: no bound.
	MaxBody int64
	// Budget bounds Charge (an OverBudget error beyond); 0: no bound.
	Budget int64
	// PetCheck, when set, is every row's pet check (protocol.PetChecker).
	PetCheck *petbreed.PetCheck

	mu      sync.Mutex
	charged int64
	// What the adapter sent, for the test to check: images, or a tensor
	// of N images.
	Images    [][]byte
	GotTensor []float32
	N         int
}

var _ protocol.Predictor = (*Predictor)(nil)

func (p *Predictor) Model() *protocol.Model { return &p.M }

func (p *Predictor) HasPet() bool { return p.PetCheck != nil }

func (p *Predictor) Pet(row []float32) (petbreed.PetCheck, bool) {
	if p.PetCheck == nil {
		return petbreed.PetCheck{}, false
	}
	return *p.PetCheck, true
}

func (p *Predictor) read(r io.Reader) ([]byte, error) {
	if p.MaxBody > 0 {
		r = io.LimitReader(r, p.MaxBody+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, httpjson.Errorf(http.StatusBadRequest, "cannot read the body", "%v", err)
	}
	if p.MaxBody > 0 && int64(len(b)) > p.MaxBody {
		return nil, httpjson.Errorf(http.StatusRequestEntityTooLarge, "payload too large", "over %d bytes", p.MaxBody)
	}
	return b, p.Charge(int64(len(b)))
}

func (p *Predictor) ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return p.read(r.Body)
}

func (p *Predictor) ReadImage(w http.ResponseWriter, r *http.Request) ([]byte, string, error) {
	name := r.URL.Query().Get("filename")
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		b, err := p.read(r.Body)
		return b, name, err
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, "", httpjson.Errorf(http.StatusBadRequest, "no image", "no multipart field \"file\"")
		}
		if part.FormName() == "file" {
			if part.FileName() != "" {
				name = part.FileName()
			}
			b, err := p.read(part)
			return b, name, err
		}
	}
}

func (p *Predictor) Charge(n int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Budget > 0 && p.charged+n > p.Budget {
		return protocol.OverBudget{Need: p.charged + n, Limit: p.Budget}
	}
	p.charged += n
	return nil
}

func (p *Predictor) Decode(ctx context.Context, data []byte) (*imaging.RGB, imaging.Info, func(), error) {
	img, info, err := imaging.DecodeContext(ctx, data, imaging.DecodeOptions{})
	if err != nil {
		return nil, info, nil, protocol.ImageError(err)
	}
	return img, info, func() {}, nil
}

func (p *Predictor) rows(n int) ([][]float32, error) {
	if p.Err != nil {
		return nil, p.Err
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = append([]float32(nil), p.Probs...)
	}
	return out, nil
}

func (p *Predictor) PredictImages(ctx context.Context, images [][]byte) ([][]float32, error) {
	p.mu.Lock()
	p.Images = append(p.Images, images...)
	p.mu.Unlock()
	return p.rows(len(images))
}

func (p *Predictor) PredictTensor(ctx context.Context, tensor []float32, n int) ([][]float32, error) {
	p.mu.Lock()
	p.GotTensor, p.N = append([]float32(nil), tensor...), n
	p.mu.Unlock()
	return p.rows(n)
}

func (p *Predictor) Tensor(count int) []float32 { return make([]float32, count) }

func (p *Predictor) TopK(probs []float32, k int) []petbreed.Prediction {
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	out := make([]petbreed.Prediction, min(k, len(idx)))
	for r := range out {
		i := idx[r]
		out[r] = petbreed.Prediction{Label: p.M.Labels[i], Index: i, Probability: probs[i]}
	}
	return out
}

// Router routes every request to P, checking the names against P's model;
// with P nil it is not ready. It counts the holds given back.
type Router struct {
	P *Predictor

	mu       sync.Mutex
	held     int
	Released int
}

var (
	_ protocol.Router = (*Router)(nil)
	_ protocol.Images = (*Router)(nil)
)

func (r *Router) Route(req *http.Request, model, version string) (protocol.Predictor, func(), error) {
	if r.P == nil {
		return nil, nil, protocol.ErrNotReady
	}
	if model != "" && model != r.P.M.Name {
		return nil, nil, &httpjson.Error{Status: http.StatusNotFound, Msg: "unknown model " + model}
	}
	if version != "" && version != r.P.M.Version {
		return nil, nil, &httpjson.Error{Status: http.StatusNotFound, Msg: "no version " + version}
	}
	return r.P, r.hold(), nil
}

func (r *Router) Begin(req *http.Request) (protocol.Request, func()) {
	p := r.P
	if p == nil {
		p = &Predictor{}
	}
	return p, r.hold()
}

func (r *Router) hold() func() {
	r.mu.Lock()
	r.held++
	r.mu.Unlock()
	return sync.OnceFunc(func() {
		r.mu.Lock()
		r.held--
		r.Released++
		r.mu.Unlock()
	})
}

// Held is how many holds are not given back.
func (r *Router) Held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}
