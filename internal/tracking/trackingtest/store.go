// Package trackingtest is an in-memory tracking backend for fast unit tests
// of what reads the tracking store (the web page's handlers, the CLI): it
// implements tracking.Browser without files, and can be told to fail. Tests
// that need MLflow's real layout use tracking.Store on a temporary folder.
package trackingtest

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

	"petbreed/internal/tracking"
)

// Store is an in-memory tracking.Browser. The zero value is empty and
// ready; it is safe for concurrent use.
type Store struct {
	mu          sync.Mutex
	experiments []tracking.ExperimentInfo
	runs        map[string]*tracking.RunInfo
	history     map[string]map[string][]tracking.MetricPoint // run, key
	artifacts   map[string]map[string][]byte                 // run, path
	models      map[string][]tracking.ModelVersion
	aliases     map[string]map[string]int
	paths       map[string]string // model URI -> local path, for Resolve

	// Fail, when it holds a method's name ("Runs", "GetRun",
	// "OpenArtifact", ...), makes that method return the error.
	Fail map[string]error
}

var _ tracking.Browser = (*Store)(nil)

func (s *Store) fail(method string) error {
	if s.Fail == nil {
		return nil
	}
	return s.Fail[method]
}

// AddExperiment adds an experiment.
func (s *Store) AddExperiment(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.experiments = append(s.experiments, tracking.ExperimentInfo{ID: id, Name: name, LifecycleStage: "active"})
}

// AddRun adds a run (a copy of ri).
func (s *Store) AddRun(ri tracking.RunInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs == nil {
		s.runs = map[string]*tracking.RunInfo{}
	}
	s.runs[ri.ID] = &ri
}

// AddMetric appends a point to a run's metric history.
func (s *Store) AddMetric(runID, key string, p tracking.MetricPoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.history == nil {
		s.history = map[string]map[string][]tracking.MetricPoint{}
	}
	if s.history[runID] == nil {
		s.history[runID] = map[string][]tracking.MetricPoint{}
	}
	s.history[runID][key] = append(s.history[runID][key], p)
}

// AddArtifact stores an artifact file of a run.
func (s *Store) AddArtifact(runID, p string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.artifacts == nil {
		s.artifacts = map[string]map[string][]byte{}
	}
	if s.artifacts[runID] == nil {
		s.artifacts[runID] = map[string][]byte{}
	}
	s.artifacts[runID][p] = bytes.Clone(data)
}

// AddVersion registers the next version of a model, made by runID, whose
// ONNX file is at localPath; it returns the version number.
func (s *Store) AddVersion(name, runID, localPath string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.models == nil {
		s.models, s.paths = map[string][]tracking.ModelVersion{}, map[string]string{}
	}
	v := len(s.models[name]) + 1
	s.models[name] = append(s.models[name], tracking.ModelVersion{Name: name, Version: v, RunID: runID, Status: "READY", Stage: "None"})
	s.paths[fmt.Sprintf("models:/%s/%d", name, v)] = localPath
	return v
}

// Experiments implements tracking.ExperimentReader.
func (s *Store) Experiments() ([]tracking.ExperimentInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("Experiments"); err != nil {
		return nil, err
	}
	return append([]tracking.ExperimentInfo(nil), s.experiments...), nil
}

// Runs implements tracking.RunReader.
func (s *Store) Runs(experimentID string) ([]tracking.RunInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("Runs"); err != nil {
		return nil, err
	}
	var out []tracking.RunInfo
	for _, r := range s.runs {
		if r.ExperimentID == experimentID {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	return out, nil
}

// GetRun implements tracking.RunReader.
func (s *Store) GetRun(runID string) (*tracking.RunInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("GetRun"); err != nil {
		return nil, err
	}
	r, ok := s.runs[runID]
	if !ok {
		return nil, fmt.Errorf("run %s: %w", runID, tracking.ErrNotFound)
	}
	c := *r
	return &c, nil
}

// MetricHistory implements tracking.RunReader.
func (s *Store) MetricHistory(runID, key string) ([]tracking.MetricPoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("MetricHistory"); err != nil {
		return nil, err
	}
	if _, ok := s.runs[runID]; !ok {
		return nil, fmt.Errorf("run %s: %w", runID, tracking.ErrNotFound)
	}
	return append([]tracking.MetricPoint(nil), s.history[runID][key]...), nil
}

// OpenArtifact implements tracking.ArtifactReader.
func (s *Store) OpenArtifact(runID, p string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("OpenArtifact"); err != nil {
		return nil, err
	}
	b, ok := s.artifacts[runID][p]
	if !ok {
		return nil, fmt.Errorf("run %s: artifact %s: %w", runID, p, tracking.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// ListArtifacts implements tracking.ArtifactReader.
func (s *Store) ListArtifacts(runID, dir string) ([]tracking.ArtifactEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("ListArtifacts"); err != nil {
		return nil, err
	}
	dir = strings.Trim(dir, "/")
	seen := map[string]tracking.ArtifactEntry{}
	for p, b := range s.artifacts[runID] {
		rest := p
		if dir != "" {
			var ok bool
			if rest, ok = strings.CutPrefix(p, dir+"/"); !ok {
				continue
			}
		}
		first, _, isDir := strings.Cut(rest, "/")
		e := tracking.ArtifactEntry{Path: path.Join(dir, first), IsDir: isDir}
		if !isDir {
			e.Size = int64(len(b))
		}
		seen[e.Path] = e
	}
	out := make([]tracking.ArtifactEntry, 0, len(seen))
	for _, e := range seen {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// RegisteredModels implements tracking.RegistryReader.
func (s *Store) RegisteredModels() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("RegisteredModels"); err != nil {
		return nil, err
	}
	out := []string{}
	for n := range s.models {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// ModelVersions implements tracking.RegistryReader.
func (s *Store) ModelVersions(name string) ([]tracking.ModelVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("ModelVersions"); err != nil {
		return nil, err
	}
	vs, ok := s.models[name]
	if !ok {
		return nil, fmt.Errorf("registered model %q: %w", name, tracking.ErrNotFound)
	}
	out := make([]tracking.ModelVersion, len(vs))
	for i, v := range vs {
		v.Aliases = nil
		for a, n := range s.aliases[name] {
			if n == v.Version {
				v.Aliases = append(v.Aliases, a)
			}
		}
		sort.Strings(v.Aliases)
		out[i] = v
	}
	return out, nil
}

// Alias implements tracking.RegistryReader.
func (s *Store) Alias(name, alias string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("Alias"); err != nil {
		return 0, err
	}
	v, ok := s.aliases[name][alias]
	if !ok {
		return 0, fmt.Errorf("model %q has no alias %q: %w", name, alias, tracking.ErrNotFound)
	}
	return v, nil
}

// SetAlias implements tracking.Registry.
func (s *Store) SetAlias(name, alias string, version int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("SetAlias"); err != nil {
		return err
	}
	if version < 1 || version > len(s.models[name]) {
		return fmt.Errorf("model %q has no version %d: %w", name, version, tracking.ErrNotFound)
	}
	if s.aliases == nil {
		s.aliases = map[string]map[string]int{}
	}
	if s.aliases[name] == nil {
		s.aliases[name] = map[string]int{}
	}
	s.aliases[name][alias] = version
	return nil
}

// Resolve implements tracking.Resolver for models:/NAME/VERSION and
// models:/NAME@ALIAS (other URIs are passed through as paths).
func (s *Store) Resolve(uri string) (tracking.ModelRef, error) {
	if err := s.fail("Resolve"); err != nil {
		return tracking.ModelRef{URI: uri}, err
	}
	rest, ok := strings.CutPrefix(uri, "models:/")
	if !ok {
		return tracking.ModelRef{URI: uri, Path: uri}, nil
	}
	target, alias := uri, ""
	if name, a, ok := strings.Cut(rest, "@"); ok {
		alias = a
		v, err := s.Alias(name, alias)
		if err != nil {
			return tracking.ModelRef{URI: uri}, fmt.Errorf("resolve %s: %w", uri, err)
		}
		target = fmt.Sprintf("models:/%s/%d", name, v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.paths[target]
	if !ok {
		return tracking.ModelRef{URI: uri}, fmt.Errorf("resolve %s: %w", uri, tracking.ErrNotFound)
	}
	var v int
	name, vs, _ := strings.Cut(strings.TrimPrefix(target, "models:/"), "/")
	fmt.Sscanf(vs, "%d", &v)
	return tracking.ModelRef{URI: uri, Name: name, Version: v, Alias: alias, RunID: s.models[name][v-1].RunID, Path: p}, nil
}
