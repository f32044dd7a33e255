package tracking

import "time"

// CreateRunAt is CreateRun with the run's start time given, for a run
// copied from another store (TimedTracker).
func (s *Store) CreateRunAt(experimentID, runName string, tags map[string]string, start time.Time) (RunWriter, error) {
	r, err := s.startRun(experimentID, runName, tags, start.UnixMilli())
	if err != nil {
		return nil, err
	}
	return r, nil
}

// EndAt is End with the end time given (TimedEnder).
func (r *Run) EndAt(status Status, end time.Time) error { return r.end(status, end.UnixMilli()) }
