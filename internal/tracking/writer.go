package tracking

import (
	"fmt"
	"sort"
)

// CreateRun is StartRun as a RunWriter (Tracker).
func (s *Store) CreateRun(experimentID, runName string, tags map[string]string) (RunWriter, error) {
	r, err := s.StartRun(experimentID, runName, tags)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// OpenRun is ResumeRun as a RunWriter (Tracker).
func (s *Store) OpenRun(runID string) (RunWriter, error) {
	r, err := s.ResumeRun(runID)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// RunID is the run's id (RunWriter).
func (r *Run) RunID() string { return r.ID }

// LogMetrics logs a batch of metrics in order, each as LogMetric does. Every
// key is checked before any value is written.
func (r *Run) LogMetrics(batch []Metric) error {
	for _, m := range batch {
		if err := validateKey("metric", m.Key); err != nil {
			return fmt.Errorf("run %s: %w", r.ID, err)
		}
	}
	now := nowMillis()
	for _, m := range batch {
		ms := now
		if !m.Timestamp.IsZero() {
			ms = m.Timestamp.UnixMilli()
		}
		if err := r.logMetric(m.Key, m.Value, m.Step, ms); err != nil {
			return err
		}
	}
	return nil
}

// SetTags sets several tags, in key order, each as SetTag does. Every key
// and value is checked before any is written.
func (r *Run) SetTags(tags map[string]string) error {
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if err := validateKey("tag", k); err != nil {
			return fmt.Errorf("run %s: %w", r.ID, err)
		}
		if err := validateValue("tag", k, v, maxTagValueLength); err != nil {
			return fmt.Errorf("run %s: %w", r.ID, err)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := r.SetTag(k, tags[k]); err != nil {
			return err
		}
	}
	return nil
}

// LocalPath is the folder a file: tracking URI names, and any other URI (a
// server's) unchanged: what a summary reports as where the runs went.
func LocalPath(uri string) string {
	if uriScheme(uri) == "file" {
		if p, err := fileURIToPath(uri); err == nil {
			return p
		}
	}
	return uri
}
