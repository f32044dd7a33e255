package serve

import (
	"fmt"
	"math"
	"math/rand/v2"

	"petbreed/internal/classify"
	"petbreed/internal/imaging"
)

// The shared backbone. Every petbreed model is one frozen backbone and its
// own head; models whose backbone graph and preprocessing are the same (one
// classify.Part key) run it once: one trunk session and one batcher for all
// of them, so their requests batch together, and each request's rows of
// features go through its own model's head, in Go, in its own goroutine. A
// shadow of the same key gets the primary's features and runs only its head
// (shadow.go), so a full shadow costs a classes × 1280 product an image.

// sharedTrunk is one backbone run for the models that share it.
type sharedTrunk struct {
	key   string
	trunk *classify.Trunk
	batch *batcher
	users int // models holding it, under Server.trunkMu
}

// shortKey is what /api/health and the logs show of a trunk's key.
func shortKey(key string) string { return key[:min(12, len(key))] }

// joinTrunk returns the running trunk of part's key, or opens one (with the
// answers' threads) and starts its batcher. create false only joins one
// that runs already (nil when none does).
func (s *Server) joinTrunk(part *classify.Part, m *model, create bool) (*sharedTrunk, error) {
	s.trunkMu.Lock()
	defer s.trunkMu.Unlock()
	if t := s.trunks[part.Key]; t != nil {
		t.users++
		return t, nil
	}
	if !create {
		return nil, nil
	}
	tr, err := classify.OpenTrunk(part, m.pre, classify.Options{Threads: s.cfg.Threads, LowMemory: true})
	if err != nil {
		return nil, err
	}
	t := &sharedTrunk{key: part.Key, trunk: tr, users: 1,
		batch: newBatcher(tr, s.cfg.MaxBatch, s.cfg.MaxDelay, s.cfg.Queue, &s.preparing, &s.queued, s.metrics)}
	s.trunks[part.Key] = t
	return t, nil
}

// leaveTrunk is a model's end of its hold on t: the last one stops its
// batcher (after the jobs queued) and closes it.
func (s *Server) leaveTrunk(t *sharedTrunk) {
	s.trunkMu.Lock()
	t.users--
	last := t.users == 0
	if last {
		delete(s.trunks, t.key)
	}
	s.trunkMu.Unlock()
	if last {
		t.batch.stop()
		t.trunk.Close()
	}
}

// share makes m run on a shared trunk when its file is a petbreed export
// and the server has several models:
// a model that answers joins the running trunk of its key or opens it; a
// shadow joins one that runs already (else it keeps its own model, on its
// own threads) and, either way, keeps its head for the primary's features.
// On the trunk, m's batcher is the trunk's and its own session is closed
// before the trunk opens (so the two never take memory at once), once its
// answer on a noise image is kept to check the trunk and head against.
// Any failure leaves m whole (reopened by reopen if it was closed), logged:
// sharing is an optimisation, never a reason not to serve.
func (s *Server) share(m *model, reopen func() (*classify.Classifier, error)) error {
	if s.cfg.SeparateBackbones || len(s.slots) < 2 {
		return nil // one model has no one to share with: it runs whole, at no cost
	}
	part, err := classify.SplitFile(m.path, m.pre)
	if err != nil {
		s.log.Debug("model runs its own backbone", "model", m.desc.Name, "reason", err)
		return nil
	}
	m.head, m.trunkKey = part.Head, part.Key
	t, err := s.joinTrunk(part, m, false)
	if err != nil || (t == nil && m.slot.shadow) {
		return nil
	}
	in, want, err := noiseAnswer(m.clf)
	if err != nil {
		if t != nil {
			s.leaveTrunk(t)
		}
		s.log.Warn("model runs its own backbone", "model", m.desc.Name, "reason", err)
		return nil
	}
	m.clf.Close() // its metadata (labels, pet threshold, TopK) stays in use
	if t == nil {
		t, err = s.joinTrunk(part, m, true)
	}
	if err == nil {
		err = checkShared(m.clf, t.trunk, part.Head, in, want, s.shareTolerance)
		if err != nil {
			s.leaveTrunk(t)
		}
	}
	if err != nil {
		m.head, m.trunkKey = nil, ""
		s.log.Warn("model runs its own backbone", "model", m.desc.Name, "reason", err)
		clf, rerr := reopen()
		if rerr != nil {
			return rerr
		}
		m.clf = clf
		return nil
	}
	m.trunk = t
	s.log.Info("model shares a backbone", "model", m.desc.Name, "version", m.version, "backbone", shortKey(t.key))
	return nil
}

// sharedTolerance bounds the difference between a model's probabilities run
// whole and run as trunk and head (float rounding: 4e-7 in the tests).
const sharedTolerance = 1e-4

// noiseAnswer is a model's answer, run whole, on a noise image, with the
// image's tensor.
func noiseAnswer(clf *classify.Classifier) (in, probs []float32, err error) {
	img := imaging.NewRGB(257, 193)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	in = make([]float32, clf.TensorLen())
	if err := clf.Prepare(img, in); err != nil {
		return nil, nil, err
	}
	want, err := clf.Run(in, 1)
	if err != nil {
		return nil, nil, err
	}
	return in, want[0], nil
}

// checkShared says whether the trunk and head answer the tensor in as the
// whole model did (want; clf gives the pet score's layout).
func checkShared(clf *classify.Classifier, t *classify.Trunk, h *classify.Head, in, want []float32, tolerance float64) error {
	rows, err := t.Run(in, 1)
	if err != nil {
		return err
	}
	got, err := h.Probabilities(rows)
	if err != nil {
		return err
	}
	if len(got[0]) != len(want) {
		return fmt.Errorf("the head gives %d classes, the model %d", len(got[0]), len(want))
	}
	var d float64
	for c := range want {
		d = math.Max(d, math.Abs(float64(got[0][c]-want[c])))
	}
	wp, wok := clf.Pet(want)
	gp, gok := clf.Pet(got[0])
	if wok != gok {
		return fmt.Errorf("the pet score is lost apart")
	}
	d = math.Max(d, math.Abs(float64(wp.Score-gp.Score)))
	if !(d <= tolerance) {
		return fmt.Errorf("trunk and head differ from the whole model by %g", d)
	}
	return nil
}
