package tracking

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// artifactRoot is the local folder of a run's artifacts: its meta.yaml's
// artifact_uri, relocated when the store was moved.
func (s *Store) artifactRoot(runID string) (string, error) {
	_, m, err := s.findRun(runID)
	if err != nil {
		return "", err
	}
	dir, err := localPath(m.ArtifactURI)
	if err != nil {
		return "", fmt.Errorf("run %s: artifact_uri: %w", runID, err)
	}
	return s.relocate(dir), nil
}

// relocate finds a location recorded in the store when the store has been
// moved. MLflow records absolute locations (artifact_uri, a version's
// source); a store copied to another machine or mounted elsewhere (at /data
// in a container) keeps the old ones. When p does not exist but lies under
// a root the store was written at, and the same path relative to that root
// exists under the current root, that is the one. Otherwise p is returned
// as it is (and its absence reported by whoever opens it).
func (s *Store) relocate(p string) string {
	if exists(p) {
		return p
	}
	for _, old := range s.recordedRoots() {
		rel, err := filepath.Rel(old, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if q := filepath.Join(s.root, rel); exists(q) {
			return q
		}
	}
	return p
}

// recordedRoots are the roots the store was written at, other than the
// current one: each experiment's artifact_location is <root>/<id> when
// MLflow or petbreed made it. Unreadable experiments are skipped (this only
// helps find files).
func (s *Store) recordedRoots() []string {
	seen := map[string]bool{s.root: true}
	var out []string
	for _, base := range []string{s.root, filepath.Join(s.root, trashDir)} {
		ents, err := os.ReadDir(base)
		if err != nil {
			continue
		}
		for _, e := range ents {
			id := e.Name()
			if !e.IsDir() || !experimentIDPattern.MatchString(id) {
				continue
			}
			info, ok, err := readExperiment(filepath.Join(base, id), id)
			if err != nil || !ok {
				continue
			}
			loc, err := localPath(info.ArtifactLocation)
			if err != nil || filepath.Base(loc) != id {
				continue
			}
			if root := filepath.Dir(loc); !seen[root] {
				seen[root] = true
				out = append(out, root)
			}
		}
	}
	return out
}

// artifactPath checks a '/'-separated artifact path and joins it to the
// run's artifact folder.
func (s *Store) artifactPath(runID, rel string, allowRoot bool) (string, error) {
	rel = strings.Trim(rel, "/")
	if rel != "" || !allowRoot {
		if err := validateRelPath("artifact", rel); err != nil {
			return "", fmt.Errorf("run %s: %w", runID, err)
		}
	}
	root, err := s.artifactRoot(runID)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, filepath.FromSlash(rel)), nil
}

// OpenArtifact opens one of a run's artifact files. The error wraps
// ErrNotFound when the run or the file does not exist.
func (s *Store) OpenArtifact(runID, rel string) (io.ReadCloser, error) {
	p, err := s.artifactPath(runID, rel, false)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("run %s: artifact %s: %w", runID, rel, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: artifact %s: %w", runID, rel, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("run %s: artifact %s is not a file", runID, rel)
	}
	return f, nil
}

// ListArtifacts lists an artifact folder of a run ("" is the root), sorted
// by path, as MLflow's list_artifacts does; a folder that does not exist
// is empty.
func (s *Store) ListArtifacts(runID, dir string) ([]ArtifactEntry, error) {
	p, err := s.artifactPath(runID, dir, true)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) {
		return []ArtifactEntry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: artifacts %q: %w", runID, dir, err)
	}
	out := make([]ArtifactEntry, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		ae := ArtifactEntry{Path: path.Join(strings.Trim(dir, "/"), e.Name()), IsDir: fi.IsDir()}
		if fi.Mode().IsRegular() {
			ae.Size = fi.Size()
		}
		out = append(out, ae)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
