package tracking

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// ExperimentInfo describes one experiment.
type ExperimentInfo struct {
	ID               string
	Name             string
	ArtifactLocation string // URI under which its runs keep their artifacts
	LifecycleStage   string // "active" or "deleted"
	Created, Updated time.Time
}

// Experiments lists the active experiments, newest first (MLflow's default
// order: creation time descending, then id). Folders MLflow skips are
// skipped: those without meta.yaml and those whose meta.yaml names another
// id. A folder whose name is not a valid experiment id, or a corrupt
// meta.yaml, is an error, since either makes MLflow's listing fail too.
func (s *Store) Experiments() ([]ExperimentInfo, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list experiments: %w", err)
	}
	var out []ExperimentInfo
	for _, e := range ents {
		name := e.Name()
		if !isDir(filepath.Join(s.root, name)) || name == modelsDir || strings.HasSuffix(name, trashDir) {
			continue
		}
		if !experimentIDPattern.MatchString(name) {
			return nil, fmt.Errorf("%s: folder %q in the store root is not an experiment id; MLflow cannot list experiments while it is there", s.root, name)
		}
		info, ok, err := readExperiment(filepath.Join(s.root, name), name)
		if err != nil {
			return nil, err
		}
		if ok && info.LifecycleStage == lifecycleActive {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// deletedExperiments lists the experiments in .trash.
func (s *Store) deletedExperiments() ([]ExperimentInfo, error) {
	dir := filepath.Join(s.root, trashDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list deleted experiments: %w", err)
	}
	var out []ExperimentInfo
	for _, e := range ents {
		if !isDir(filepath.Join(dir, e.Name())) {
			continue
		}
		info, ok, err := readExperiment(filepath.Join(dir, e.Name()), e.Name())
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, info)
		}
	}
	return out, nil
}

// readExperiment reads dir/meta.yaml. ok is false for the folders MLflow
// skips: no meta.yaml, or an experiment_id that is not the folder's name.
func readExperiment(dir, id string) (info ExperimentInfo, ok bool, err error) {
	p := filepath.Join(dir, metaFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return info, false, nil
	}
	if err != nil {
		return info, false, err
	}
	d, err := parseYAMLMap(p, data)
	if err != nil {
		return info, false, err
	}
	if info.ID, err = d.str("experiment_id"); err != nil {
		return info, false, err
	}
	if !d.has("experiment_id") {
		return info, false, fmt.Errorf("%s: missing experiment_id", p)
	}
	if info.ID != id {
		return info, false, nil
	}
	if info.Name, err = d.str("name"); err != nil {
		return info, false, err
	}
	if info.Name == "" {
		return info, false, fmt.Errorf("%s: missing name", p)
	}
	if info.ArtifactLocation, err = d.str("artifact_location"); err != nil {
		return info, false, err
	}
	if info.LifecycleStage, err = d.str("lifecycle_stage"); err != nil {
		return info, false, err
	}
	if info.LifecycleStage != lifecycleActive && info.LifecycleStage != lifecycleDeleted {
		return info, false, fmt.Errorf("%s: lifecycle_stage %q is neither active nor deleted", p, info.LifecycleStage)
	}
	for key, t := range map[string]*time.Time{"creation_time": &info.Created, "last_update_time": &info.Updated} {
		ms, ok, err := d.int(key)
		if err != nil {
			return info, false, err
		}
		if ok {
			*t = time.UnixMilli(ms)
		}
	}
	return info, true, nil
}

// experiment returns an experiment by id, active or deleted, with its folder.
func (s *Store) experiment(id string) (ExperimentInfo, string, error) {
	if !experimentIDPattern.MatchString(id) {
		return ExperimentInfo{}, "", fmt.Errorf("invalid experiment id %q", id)
	}
	for _, dir := range []string{filepath.Join(s.root, id), filepath.Join(s.root, trashDir, id)} {
		if !isDir(dir) {
			continue
		}
		info, ok, err := readExperiment(dir, id)
		if err != nil {
			return info, "", err
		}
		if ok {
			return info, dir, nil
		}
	}
	return ExperimentInfo{}, "", fmt.Errorf("experiment %q: %w", id, ErrNotFound)
}

// Experiment returns the id of the active experiment called name, creating
// it if there is none. "Default" is the experiment "0" every store has. New
// experiments get an 18-digit random id, as MLflow's FileStore gives them.
// Creation is serialised across processes, so two processes asking for the
// same new name get the same experiment.
func (s *Store) Experiment(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("experiment name must not be empty")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxExperimentName {
		return "", fmt.Errorf("invalid experiment name %.60q: must be valid UTF-8 of at most %d characters", name, maxExperimentName)
	}
	if id, err := s.findExperiment(name); err != nil || id != "" {
		return id, err
	}
	unlock, err := s.lock("experiments")
	if err != nil {
		return "", err
	}
	defer unlock()
	if id, err := s.findExperiment(name); err != nil || id != "" {
		return id, err
	}
	deleted, err := s.deletedExperiments()
	if err != nil {
		return "", err
	}
	for _, e := range deleted {
		if e.Name == name {
			return "", fmt.Errorf("experiment %q (id %s) exists in the deleted state: restore it, or remove %s from the .trash folder, to use this name again", name, e.ID, e.ID)
		}
	}
	for range 10 {
		id := newExperimentID()
		err := s.createExperiment(id, name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return id, err
	}
	return "", fmt.Errorf("create experiment %q: could not find a free id", name)
}

func (s *Store) findExperiment(name string) (string, error) {
	exps, err := s.Experiments()
	if err != nil {
		return "", err
	}
	for _, e := range exps {
		if e.Name == name {
			return e.ID, nil
		}
	}
	return "", nil
}

// createExperiment writes <root>/<id>/meta.yaml, the folder appearing whole.
func (s *Store) createExperiment(id, name string) error {
	if exists(filepath.Join(s.root, trashDir, id)) {
		return fmt.Errorf("experiment %s: %w", id, fs.ErrExist)
	}
	now := nowMillis()
	meta, err := yEncode(yMap(map[string]*yaml.Node{
		"artifact_location": yStr(appendURIPath(s.rootURI, id)),
		"creation_time":     yInt(now),
		"experiment_id":     yStr(id),
		"last_update_time":  yInt(now),
		"lifecycle_stage":   yStr(lifecycleActive),
		"name":              yStr(name),
	}))
	if err != nil {
		return err
	}
	err = s.publishDir(filepath.Join(s.root, id), func(dir string) error {
		return writeIn(dir, metaFile, meta)
	})
	if err != nil {
		return fmt.Errorf("create experiment %q: %w", name, err)
	}
	return nil
}

// ensureDefaultExperiment creates experiment "0" when the store has neither
// it nor a deleted one.
func (s *Store) ensureDefaultExperiment() error {
	if exists(filepath.Join(s.root, defaultExpID)) || exists(filepath.Join(s.root, trashDir, defaultExpID)) {
		return nil
	}
	unlock, err := s.lock("experiments")
	if err != nil {
		return err
	}
	defer unlock()
	err = s.createExperiment(defaultExpID, defaultExpName)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}
