package serve

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"petbreed"
	"petbreed/internal/classify"
	"petbreed/internal/onnxrt"
	"petbreed/internal/serve/protocol"
	"petbreed/internal/tracking"
	"petbreed/internal/tracking/backend"
)

// model is one loaded model with its batcher. Requests hold it (acquire,
// release) from before they prepare their tensor until they have their
// answer, so a model swapped out is closed only after its last request.
type model struct {
	clf     *classify.Classifier
	batch   *batcher
	slot    *slot  // the configured model it serves
	name    string // the registered model's name, or the file's base name without .onnx
	version string // the registry version, or "1"
	alias   string // the alias the URI names (models:/NAME@ALIAS), else ""
	uri     string // as configured (models:/..., runs:/..., a path)
	path    string // the ONNX file
	loaded  time.Time
	loadDur time.Duration

	input    onnxrt.TensorInfo // the model's image input, [N,3,H,W] float32
	output   onnxrt.TensorInfo // the probabilities/logits output, [N,C]
	classes  []string
	labelled bool // the classes have names (else they are indices)
	pre      petbreed.Preprocess

	desc  protocol.Model // what the protocols show of it (Name: the slot's name)
	stats *modelStats    // its counts and times (Triton's statistics, per-version metrics)

	// The shared backbone (trunk.go): head and trunkKey when the model is a
	// petbreed export; trunk when it runs on a shared trunk, whose batcher
	// is then batch and whose rows head turns into probabilities.
	head     *classify.Head
	trunkKey string
	trunk    *sharedTrunk

	tensors sync.Pool // *[]float32 of one image's TensorLen (V2's FP32 input)
	refs    sync.WaitGroup
}

// getTensor returns a buffer for one image's tensor; putTensor gives it back.
func (m *model) getTensor() *[]float32 {
	if p, ok := m.tensors.Get().(*[]float32); ok {
		return p
	}
	t := make([]float32, m.clf.TensorLen())
	return &t
}

func (m *model) putTensor(p *[]float32) { m.tensors.Put(p) }

// retire stops the batcher (or leaves the shared trunk) and closes the
// model once no request holds it.
func (s *Server) retire(m *model) {
	m.refs.Wait()
	if m.trunk != nil {
		s.leaveTrunk(m.trunk)
	} else {
		m.batch.stop()
	}
	m.clf.Close()
}

// answer turns a job's rows into m's probabilities: a shared trunk's rows
// go through m's head.
func (m *model) answer(rows [][]float32) ([][]float32, error) {
	if m.trunk == nil || rows == nil {
		return rows, nil
	}
	return m.head.Probabilities(rows)
}

// resolved is where a model URI points now.
type resolved struct {
	path    string
	name    string
	version string
	num     int // registry version number, 0 when not from the registry
	// alias is the alias a models:/NAME@ALIAS URI named, as tracking's
	// ModelRef says: what poll checks (with name).
	alias string
}

// resolve finds the ONNX file a model URI names now, with the model's name
// and version, through tracking's Resolve. A models:/NAME@ALIAS URI is read
// as the version the alias points to, and that version is resolved, so the
// path and the version always agree.
func (s *Server) resolve(uri string) (resolved, error) {
	if !inStore(uri) {
		if _, err := os.Stat(uri); err != nil {
			return resolved{}, err
		}
		return resolved{path: uri, name: baseName(uri), version: "1"}, nil
	}
	store, err := s.trackingStore()
	if err != nil {
		return resolved{}, err
	}
	ref, err := store.Resolve(uri)
	if err != nil {
		return resolved{}, err
	}
	if ref.Name == "" { // runs:/
		return resolved{path: ref.Path, name: baseName(ref.Path), version: "1"}, nil
	}
	return resolved{path: ref.Path, name: ref.Name, version: strconv.Itoa(ref.Version), num: ref.Version,
		alias: ref.Alias}, nil
}

// inStore says whether a model URI is resolved in the tracking store (a
// registry or run URI) rather than being a file on disk; what it names is
// for tracking's Resolve to read.
func inStore(uri string) bool {
	return strings.HasPrefix(uri, "models:/") || strings.HasPrefix(uri, "runs:/")
}

func (s *Server) trackingStore() (tracking.ModelSource, error) {
	s.storeOnce.Do(func() {
		store, err := backend.Open(s.cfg.TrackingURI)
		if err != nil {
			s.storeErr = err
			return
		}
		s.store = store
	})
	return s.store, s.storeErr
}

func baseName(p string) string {
	b := filepath.Base(p)
	if ext := filepath.Ext(b); strings.EqualFold(ext, ".onnx") {
		b = b[:len(b)-len(ext)]
	}
	return b
}

// errLoad marks a model that was found but could not be loaded (not an
// ONNX file, not an image classifier, labels that do not fit): a reload
// answers 422 for it, and 500 for the other failures.
type errLoad struct{ err error }

func (e errLoad) Error() string { return e.err.Error() }
func (e errLoad) Unwrap() error { return e.err }

// load opens the model r points to for a slot and starts its batcher.
func (s *Server) load(sl *slot, r resolved) (*model, error) {
	start := time.Now()
	threads := s.cfg.Threads
	if sl.shadow {
		threads = s.cfg.ShadowThreads // a shadow leaves the other cores to the answers
	}
	opts := classify.Options{Threads: threads, Labels: s.cfg.Labels, Name: sl.spec.URI, LowMemory: true}
	clf, err := classify.Open(r.path, opts)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return nil, err
		}
		return nil, errLoad{err}
	}
	sess := clf.Session()
	m := &model{
		clf: clf, name: r.name, version: r.version, alias: r.alias, uri: sl.spec.URI, path: r.path, slot: sl,
		classes: clf.Classes(), labelled: clf.HasLabels(), pre: clf.Preprocess(),
	}
	m.input = sess.Inputs()[0]
	for _, o := range sess.Outputs() {
		if o.Type == "float32" && len(o.Shape) == 2 {
			m.output = o
			break
		}
	}
	// The one check of a servable model (a promotion's trial load makes it
	// too); its run also warms ONNX Runtime up.
	if err := clf.CheckServable(); err != nil {
		clf.Close()
		return nil, errLoad{fmt.Errorf("%s: %w", r.path, err)}
	}
	served := sl.spec.Name
	if served == "" {
		served = m.name
	}
	m.desc = protocol.Model{Name: served, Version: m.version, Labels: m.classes, Labelled: m.labelled,
		Input: m.input.Name, Output: m.output.Name, Size: m.pre.Size, TensorLen: clf.TensorLen(),
		Preprocess: m.pre, MaxBatch: s.cfg.MaxBatch}
	m.stats = newModelStats(s.metrics, served, m.version, m.classes)
	if err := s.share(m, func() (*classify.Classifier, error) { return classify.Open(r.path, opts) }); err != nil {
		return nil, err
	}
	if m.trunk != nil {
		m.batch = m.trunk.batch
	} else {
		m.batch = newBatcher(m.clf, s.cfg.MaxBatch, s.cfg.MaxDelay, s.cfg.Queue, &s.preparing, &s.queued, s.metrics)
		m.batch.stats = m.stats
	}
	m.loaded = time.Now()
	m.loadDur = m.loaded.Sub(start)
	return m, nil
}
