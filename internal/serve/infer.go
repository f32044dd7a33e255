package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"

	"petbreed/internal/imaging"
	"petbreed/internal/serve/protocol"
)

// The inference path shared by /api/predict and /v2/.../infer: admission
// (bounded), decoding and preprocessing in the request's goroutine, then the
// model's batcher.

var errOverloadedAPI = protocol.ErrOverloaded

// admit reserves n images' places in the queue; false means it is full.
func (s *Server) admit(n int) bool {
	if s.admitted.Add(int64(n)) > int64(s.cfg.Queue) {
		s.admitted.Add(-int64(n))
		s.metrics.rejected.Inc()
		return false
	}
	s.preparing.Add(int64(n))
	return true
}

// acquirePrep takes one of the GOMAXPROCS places for decoding and
// transforming an image (every endpoint that decodes takes one), so that
// memory for decoded images stays bounded whatever the concurrency.
func (s *Server) acquirePrep(ctx context.Context) error {
	select {
	case s.prepSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) releasePrep() { <-s.prepSem }

// decode decodes one image: its header is checked against the pixel limit,
// its decoding cost (from the header) is charged to ch, then it takes a
// decoding place (acquirePrep: a request waiting for room in the budget
// does not hold one) and is decoded with a deadline of DecodeTimeout tied
// to ctx (the decoder stops when either ends). On success the caller holds
// the decoding place and releases it (releasePrep); cost is what was
// charged, which the caller gives back (ch.shrink) once it no longer holds
// the decoded image.
func (s *Server) decode(ctx context.Context, ch *charge, data []byte) (img *imaging.RGB, info imaging.Info, cost int64, err error) {
	_, w, h, err := imaging.DecodeConfig(data)
	if err != nil {
		return nil, info, 0, imageError(err)
	}
	if px := int64(w) * int64(h); px > s.cfg.MaxPixels {
		return nil, info, 0, imageError(fmt.Errorf("%w: %dx%d is %d pixels, over the pixel limit of %d",
			imaging.ErrPixelLimit, w, h, px, s.cfg.MaxPixels))
	}
	cost, err = imaging.DecodeCost(data)
	if err != nil {
		return nil, info, 0, imageError(err)
	}
	if err := ch.grow(cost); err != nil {
		var ob errOverBudget
		if errors.As(err, &ob) {
			return nil, info, 0, errorf(http.StatusUnprocessableEntity, "image over the memory budget",
				"decoding this %dx%d image %v", w, h, ob)
		}
		return nil, info, 0, err
	}
	if err := s.acquirePrep(ctx); err != nil {
		ch.shrink(cost)
		return nil, info, 0, err
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DecodeTimeout)
	defer cancel()
	t0 := time.Now()
	img, info, err = imaging.DecodeContext(dctx, data, imaging.DecodeOptions{MaxPixels: s.cfg.MaxPixels})
	s.metrics.observeStage(iDecode, time.Since(t0))
	if err != nil {
		s.releasePrep()
		ch.shrink(cost)
		switch {
		case ctx.Err() != nil:
			return nil, info, 0, ctx.Err() // the client went away, or the server is stopping
		case errors.Is(err, context.DeadlineExceeded) || dctx.Err() != nil:
			return nil, info, 0, errorf(http.StatusUnprocessableEntity, "decode timeout",
				"decoding the image took longer than the server's limit of %v", s.cfg.DecodeTimeout)
		}
		return nil, info, 0, imageError(err)
	}
	return img, info, cost, nil
}

// prepare decodes one image and applies the model's preprocessing (resize,
// crop; the batcher normalises). At most GOMAXPROCS images are prepared at
// once: more would only share the same cores, and hold more decoded images
// in memory.
func (s *Server) prepare(ctx context.Context, m *model, ch *charge, data []byte) (*imaging.RGB, error) {
	img, _, cost, err := s.decode(ctx, ch, data)
	if err != nil {
		return nil, err
	}
	defer s.releasePrep()
	defer ch.shrink(cost) // the decoded image is dropped on return
	t1 := time.Now()
	seen, err := imaging.Apply(img, m.pre)
	if err != nil {
		return nil, imageError(err)
	}
	if seen.W != m.pre.Size || seen.H != m.pre.Size {
		return nil, fmt.Errorf("preprocessing made a %dx%d image, want %dx%d", seen.W, seen.H, m.pre.Size, m.pre.Size)
	}
	s.metrics.observeStage(iPreprocess, time.Since(t1))
	return seen, nil
}

// prepareAll prepares images, several at once when there are several; it
// returns the first error.
func (s *Server) prepareAll(ctx context.Context, m *model, ch *charge, images [][]byte) ([]*imaging.RGB, error) {
	out := make([]*imaging.RGB, len(images))
	if len(images) == 1 {
		img, err := s.prepare(ctx, m, ch, images[0])
		out[0] = img
		return out, err
	}
	workers := min(len(images), runtime.GOMAXPROCS(0))
	errs := make([]error, len(images))
	var wg sync.WaitGroup
	next := make(chan int, len(images))
	for i := range images {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = s.prepare(ctx, m, ch, images[i])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// run submits a job of admitted images (counted as preparing) to m's
// batcher and waits for their probabilities; on a shared trunk it also
// returns the images' features (for the shadows of the same backbone). It
// ends the admission.
func (s *Server) run(m *model, j *job) (probs, features [][]float32, err error) {
	j.done = make(chan jobResult, 1)
	err = m.batch.submit(j)
	s.preparing.Add(-int64(j.n))
	if err != nil {
		s.admitted.Add(-int64(j.n))
		s.metrics.rejected.Inc()
		return nil, nil, errOverloadedAPI
	}
	res := <-j.done
	s.admitted.Add(-int64(j.n))
	s.metrics.observeStage(iQueue, res.queued)
	m.stats.ran(j.n, res.queued, res.inference)
	if res.err != nil {
		return nil, nil, res.err
	}
	if m.trunk != nil {
		m.stats.executions.Add(1) // its share of a trunk run
		features = res.probs
		if res.probs, err = m.answer(res.probs); err != nil {
			return nil, nil, err
		}
	}
	s.metrics.observeStage(iInference, res.inference)
	s.metrics.images.Add(float64(j.n))
	return res.probs, features, nil
}

// classifyImages admits, prepares and runs encoded images on m; it also
// returns the prepared images and their features (for a shadow).
func (s *Server) classifyImages(ctx context.Context, m *model, ch *charge, images [][]byte) (probs, features [][]float32, prepared []*imaging.RGB, err error) {
	n := len(images)
	if !s.admit(n) {
		return nil, nil, nil, errOverloadedAPI
	}
	prepared, err = s.prepareAll(ctx, m, ch, images)
	if err != nil {
		s.preparing.Add(-int64(n))
		s.admitted.Add(-int64(n))
		return nil, nil, nil, err
	}
	probs, features, err = s.run(m, &job{ctx: ctx, images: prepared, n: n})
	return probs, features, prepared, err
}

// classifyTensor admits and runs n images already preprocessed and
// normalised.
func (s *Server) classifyTensor(ctx context.Context, m *model, tensor []float32, n int) (probs, features [][]float32, err error) {
	if !s.admit(n) {
		return nil, nil, errOverloadedAPI
	}
	return s.run(m, &job{ctx: ctx, tensor: tensor, n: n})
}
