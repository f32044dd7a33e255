package tracking

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RunInfo is a run as read back from the store.
type RunInfo struct {
	ID, ExperimentID, Name, User string
	Status                       Status
	Start, End                   time.Time // End is zero while the run has no end_time
	ArtifactURI                  string
	LifecycleStage               string // "active" or "deleted"
	Params                       map[string]string
	Metrics                      map[string]float64 // latest value of each metric, chosen as MLflow does
	Tags                         map[string]string
	// Inputs are the datasets the run used (MLflow's run inputs), sorted
	// by SortInputs.
	Inputs []DatasetInput
}

// MetricPoint is one logged value of a metric.
type MetricPoint struct {
	Step      int64
	Value     float64
	Timestamp time.Time
}

// Runs lists the active runs of an experiment, newest first (start time
// descending, then id). Folders MLflow skips are skipped: those without
// meta.yaml, the reserved tags/, datasets/ and traces/ folders, and runs
// whose meta.yaml names another experiment. A corrupt file (meta.yaml,
// metric, param or tag) is an error naming the file, since it makes
// MLflow's search fail for the whole experiment too.
func (s *Store) Runs(experimentID string) ([]RunInfo, error) {
	_, expDir, err := s.experiment(experimentID)
	if err != nil {
		return nil, err
	}
	dirs, err := s.runDirs(expDir)
	if err != nil {
		return nil, err
	}
	var out []RunInfo
	for _, dir := range dirs {
		m, err := readRunMeta(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m.ExperimentID != experimentID || m.LifecycleStage != lifecycleActive {
			continue
		}
		info, err := loadRun(dir, m)
		if err != nil {
			return nil, err
		}
		out = append(out, *info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.After(out[j].Start)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// GetRun reads one run, searching every experiment (deleted ones and
// deleted runs included, as MLflow's get_run does).
func (s *Store) GetRun(runID string) (*RunInfo, error) {
	dir, m, err := s.findRun(runID)
	if err != nil {
		return nil, err
	}
	return loadRun(dir, m)
}

// findRun locates a run's folder as MLflow's _find_run_root does (the first
// experiment holding a folder of that name) and reads its meta.yaml.
func (s *Store) findRun(runID string) (string, runMeta, error) {
	if !runIDPattern.MatchString(runID) {
		return "", runMeta{}, fmt.Errorf("invalid run id %q", runID)
	}
	var parents []string
	for _, base := range []string{s.root, filepath.Join(s.root, trashDir)} {
		ents, err := os.ReadDir(base)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return "", runMeta{}, err
		}
		for _, e := range ents {
			name := e.Name()
			if base == s.root && (name == modelsDir || strings.HasSuffix(name, trashDir)) {
				continue
			}
			parents = append(parents, filepath.Join(base, name))
		}
	}
	for _, expDir := range parents {
		dir := filepath.Join(expDir, runID)
		if !isDir(dir) {
			continue
		}
		m, err := readRunMeta(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return "", m, fmt.Errorf("run %s: %s has no %s", runID, dir, metaFile)
		}
		if err != nil {
			return "", m, err
		}
		if m.ExperimentID != filepath.Base(expDir) {
			return "", m, fmt.Errorf("run %s: %s says experiment %q but the run is in experiment folder %q", runID, filepath.Join(dir, metaFile), m.ExperimentID, filepath.Base(expDir))
		}
		return dir, m, nil
	}
	return "", runMeta{}, fmt.Errorf("run %s: %w", runID, ErrNotFound)
}

func loadRun(dir string, m runMeta) (*RunInfo, error) {
	info := &RunInfo{
		ID:             m.RunID,
		ExperimentID:   m.ExperimentID,
		Name:           m.RunName,
		User:           m.UserID,
		Status:         m.Status,
		Start:          msTime(m.StartTime),
		ArtifactURI:    m.ArtifactURI,
		LifecycleStage: m.LifecycleStage,
		Metrics:        map[string]float64{},
	}
	if m.EndTime != nil {
		info.End = msTime(*m.EndTime)
	}
	var err error
	if info.Params, err = readValues(filepath.Join(dir, paramsDir), "param"); err != nil {
		return nil, err
	}
	if info.Tags, err = readValues(filepath.Join(dir, tagsDir), "tag"); err != nil {
		return nil, err
	}
	if info.Name == "" {
		info.Name = info.Tags[TagRunName]
	}
	if info.Inputs, err = readInputs(dir); err != nil {
		return nil, err
	}
	keys, err := listKeys(filepath.Join(dir, metricsDir), "metric")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		pts, err := readMetricFile(filepath.Join(dir, metricsDir, filepath.FromSlash(k)))
		if err != nil {
			return nil, err
		}
		info.Metrics[k] = latest(pts).Value
	}
	return info, nil
}

// latest is the point MLflow reports as a metric's value: the largest
// (step, timestamp, value).
func latest(pts []MetricPoint) MetricPoint {
	best := pts[0]
	for _, p := range pts[1:] {
		switch {
		case p.Step != best.Step:
			if p.Step > best.Step {
				best = p
			}
		case !p.Timestamp.Equal(best.Timestamp):
			if p.Timestamp.After(best.Timestamp) {
				best = p
			}
		case p.Value > best.Value || math.IsNaN(best.Value) && !math.IsNaN(p.Value):
			best = p
		}
	}
	return best
}

// listKeys lists the files under dir as slash-separated names, checking each
// the way MLflow checks it when reading; a missing dir has no keys.
func listKeys(dir, kind string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if err := validateKey(kind, key); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		keys = append(keys, key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	return keys, nil
}

// readValues reads a params/ or tags/ folder: each file's whole content is
// the value (MLflow writes no trailing newline, and keeps one if present).
func readValues(dir, kind string) (map[string]string, error) {
	keys, err := listKeys(dir, kind)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil {
			return nil, err
		}
		out[k] = string(b)
	}
	return out, nil
}

// MetricHistory returns every logged value of a metric, in file order
// (logging order). A run without that metric gives an empty history, as in
// MLflow; an unknown run is an error wrapping ErrNotFound.
func (s *Store) MetricHistory(runID, key string) ([]MetricPoint, error) {
	if err := validateKey("metric", key); err != nil {
		return nil, err
	}
	dir, _, err := s.findRun(runID)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, metricsDir, filepath.FromSlash(key))
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return []MetricPoint{}, nil
		}
		return nil, err
	}
	return readMetricFile(p)
}

// readMetricFile parses a metric file with MLflow's rules
// (_get_metric_from_line): each line, stripped of surrounding white space,
// is 2 or 3 fields separated by single spaces: an integer timestamp, a
// float, and an optional integer step (0 when absent). An empty file, a
// blank line, or any other shape is an error naming the file and line.
func readMetricFile(path string) ([]MetricPoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("metric file %s is malformed: no data", path)
	}
	pts := make([]MetricPoint, 0, len(lines))
	for i, line := range lines {
		pt, err := parseMetricLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("metric file %s, line %d: %w", path, i+1, err)
		}
		pts = append(pts, pt)
	}
	return pts, nil
}

func parseMetricLine(line string) (MetricPoint, error) {
	fields := strings.Split(strings.TrimSpace(line), " ")
	if len(fields) != 2 && len(fields) != 3 {
		return MetricPoint{}, fmt.Errorf("malformed line %q: %d fields, want \"<timestamp> <value> [<step>]\"", strings.TrimRight(line, "\n"), len(fields))
	}
	ts, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return MetricPoint{}, fmt.Errorf("malformed line %q: timestamp %q is not an integer", strings.TrimRight(line, "\n"), fields[0])
	}
	v, err := parsePyFloat(fields[1])
	if err != nil {
		return MetricPoint{}, fmt.Errorf("malformed line %q: value %q is not a number", strings.TrimRight(line, "\n"), fields[1])
	}
	var step int64
	if len(fields) == 3 {
		if step, err = strconv.ParseInt(fields[2], 10, 64); err != nil {
			return MetricPoint{}, fmt.Errorf("malformed line %q: step %q is not an integer", strings.TrimRight(line, "\n"), fields[2])
		}
	}
	return MetricPoint{Step: step, Value: v, Timestamp: msTime(ts)}, nil
}
