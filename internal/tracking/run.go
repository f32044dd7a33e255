package tracking

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Status is a run's status, with MLflow's integer values (RunStatus).
type Status int

// Run statuses.
const (
	Running   Status = 1
	Scheduled Status = 2
	Finished  Status = 3
	Failed    Status = 4
	Killed    Status = 5
)

var statusNames = map[Status]string{Running: "RUNNING", Scheduled: "SCHEDULED", Finished: "FINISHED", Failed: "FAILED", Killed: "KILLED"}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of MLflow's statuses.
func (s Status) Valid() bool { _, ok := statusNames[s]; return ok }

// Terminal reports whether s ends a run (FINISHED, FAILED or KILLED).
func (s Status) Terminal() bool { return s == Finished || s == Failed || s == Killed }

// ParseStatus reads a status name such as "FINISHED" (any case).
func ParseStatus(name string) (Status, error) {
	for s, n := range statusNames {
		if strings.EqualFold(n, name) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown run status %q", name)
}

// Tags MLflow sets on runs (mlflow/utils/mlflow_tags.py), and the ones
// petbreed adds to find runs whose process died.
const (
	TagRunName         = "mlflow.runName"
	TagUser            = "mlflow.user"
	TagSourceName      = "mlflow.source.name"
	TagSourceType      = "mlflow.source.type"
	TagGitCommit       = "mlflow.source.git.commit"
	TagLogModelHistory = "mlflow.log-model.history"
	TagPID             = "petbreed.pid"        // pid of the process running the run
	TagHost            = "petbreed.host"       // hostname of that process
	TagProcStart       = "petbreed.proc_start" // its start time in /proc, to tell a reused pid
)

// sourceTypeLocal is SourceType.LOCAL, which MLflow's FileStore always
// writes as the run's source_type.
const sourceTypeLocal = 4

// ErrRunEnded is wrapped by End when the run was already ended.
var ErrRunEnded = errors.New("run already ended")

// Run is a run being logged to. Its methods are safe for concurrent use.
type Run struct {
	ID           string
	ExperimentID string

	store       *Store
	dir         string
	artifactDir string

	mu      sync.Mutex // serialises meta.yaml, params and the model history tag
	metrics sync.Map   // metric keys whose file exists
}

// runMeta is a run's meta.yaml.
type runMeta struct {
	RunID          string
	ExperimentID   string
	RunName        string
	UserID         string
	ArtifactURI    string
	LifecycleStage string
	Status         Status
	StartTime      int64
	EndTime        *int64
	DeletedTime    *int64
}

// encode writes every key MLflow's FileStore writes
// (_make_persisted_run_info_dict), sorted.
func (m runMeta) encode() ([]byte, error) {
	return yEncode(yMap(map[string]*yaml.Node{
		"artifact_uri":     yStr(m.ArtifactURI),
		"deleted_time":     yOptInt(m.DeletedTime),
		"end_time":         yOptInt(m.EndTime),
		"entry_point_name": yStr(""),
		"experiment_id":    yStr(m.ExperimentID),
		"lifecycle_stage":  yStr(m.LifecycleStage),
		"run_id":           yStr(m.RunID),
		"run_name":         yStr(m.RunName),
		"run_uuid":         yStr(m.RunID),
		"source_name":      yStr(""),
		"source_type":      yInt(sourceTypeLocal),
		"source_version":   yStr(""),
		"start_time":       yInt(m.StartTime),
		"status":           yInt(int64(m.Status)),
		"tags":             yList(),
		"user_id":          yStr(m.UserID),
	}))
}

// parseRunMeta reads a run's meta.yaml and checks what MLflow requires of
// it: experiment_id, user_id, a numeric start_time, an end_time key (null
// allowed), run_id or run_uuid equal to the folder's name, an integer status
// (missing means RUNNING) and an active or deleted lifecycle_stage (missing
// means active).
func parseRunMeta(path, folder string, data []byte) (runMeta, error) {
	var m runMeta
	d, err := parseYAMLMap(path, data)
	if err != nil {
		return m, err
	}
	if m.RunID, err = d.str("run_id"); err != nil {
		return m, err
	}
	if m.RunID == "" {
		if m.RunID, err = d.str("run_uuid"); err != nil {
			return m, err
		}
	}
	if m.RunID == "" {
		return m, fmt.Errorf("%s: missing run_id", path)
	}
	if m.RunID != folder {
		return m, fmt.Errorf("%s: run_id %q is not the folder's name %q", path, m.RunID, folder)
	}
	if !d.has("experiment_id") {
		return m, fmt.Errorf("%s: missing experiment_id", path)
	}
	if m.ExperimentID, err = d.str("experiment_id"); err != nil {
		return m, err
	}
	if !d.has("user_id") || d.m["user_id"] == nil {
		return m, fmt.Errorf("%s: missing user_id", path)
	}
	if m.UserID, err = d.str("user_id"); err != nil {
		return m, err
	}
	if m.StartTime, err = d.requireInt("start_time"); err != nil {
		return m, err
	}
	if !d.has("end_time") {
		return m, fmt.Errorf("%s: missing end_time", path)
	}
	if v, ok, err := d.int("end_time"); err != nil {
		return m, err
	} else if ok && v != 0 {
		m.EndTime = &v
	}
	if v, ok, err := d.int("deleted_time"); err != nil {
		return m, err
	} else if ok {
		m.DeletedTime = &v
	}
	m.Status = Running
	if v, ok, err := d.int("status"); err != nil {
		return m, err
	} else if ok {
		m.Status = Status(v)
		if !m.Status.Valid() {
			return m, fmt.Errorf("%s: status %d is not an MLflow run status (1-5)", path, v)
		}
	}
	m.LifecycleStage = lifecycleActive
	if d.has("lifecycle_stage") {
		if m.LifecycleStage, err = d.str("lifecycle_stage"); err != nil {
			return m, err
		}
		if m.LifecycleStage != lifecycleActive && m.LifecycleStage != lifecycleDeleted {
			return m, fmt.Errorf("%s: lifecycle_stage %q is neither active nor deleted", path, m.LifecycleStage)
		}
	}
	if m.RunName, err = d.str("run_name"); err != nil {
		return m, err
	}
	if m.ArtifactURI, err = d.str("artifact_uri"); err != nil {
		return m, err
	}
	return m, nil
}

func readRunMeta(runDir string) (runMeta, error) {
	p := filepath.Join(runDir, metaFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return runMeta{}, err
	}
	return parseRunMeta(p, filepath.Base(runDir), data)
}

// currentUser is what Python's getpass.getuser() answers, as MLflow's
// mlflow.user tag and user_id.
func currentUser() string {
	for _, k := range []string{"LOGNAME", "USER", "LNAME", "USERNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// StartRun creates a RUNNING run in the experiment. An empty runName takes
// the mlflow.runName tag, or else a random name. Besides tags, the run gets
// the tags MLflow's client sets (mlflow.runName, mlflow.user,
// mlflow.source.name, mlflow.source.type and, when the working folder is in
// a git repository with a commit, mlflow.source.git.commit) and
// petbreed.pid, petbreed.host and petbreed.proc_start, which ReapStale uses.
// The run's folder, with meta.yaml and every tag, appears at once.
func (s *Store) StartRun(experimentID, runName string, tags map[string]string) (*Run, error) {
	return s.startRun(experimentID, runName, tags, nowMillis())
}

func (s *Store) startRun(experimentID, runName string, tags map[string]string, startMillis int64) (*Run, error) {
	exp, expDir, err := s.experiment(experimentID)
	if err != nil {
		return nil, fmt.Errorf("start run: %w", err)
	}
	if exp.LifecycleStage != lifecycleActive {
		return nil, fmt.Errorf("start run: experiment %s (%q) is deleted", exp.ID, exp.Name)
	}
	for k, v := range tags {
		if err := validateKey("tag", k); err != nil {
			return nil, fmt.Errorf("start run: %w", err)
		}
		if err := validateValue("tag", k, v, maxTagValueLength); err != nil {
			return nil, fmt.Errorf("start run: %w", err)
		}
	}
	if tagName, ok := tags[TagRunName]; ok && runName != "" && tagName != runName {
		return nil, fmt.Errorf("start run: run name %q and tag %s=%q disagree", runName, TagRunName, tagName)
	}
	if runName == "" {
		runName = tags[TagRunName]
	}
	if runName == "" {
		runName = randomRunName()
	}
	if err := validateValue("tag", TagRunName, runName, maxTagValueLength); err != nil {
		return nil, fmt.Errorf("start run: %w", err)
	}
	artLoc := exp.ArtifactLocation
	if artLoc == "" {
		artLoc = appendURIPath(s.rootURI, exp.ID)
	}
	artBase, err := localPath(artLoc)
	if err != nil {
		return nil, fmt.Errorf("start run: experiment %s keeps artifacts at %q, which petbreed cannot write: %w", exp.ID, artLoc, err)
	}

	all := map[string]string{
		TagRunName:    runName,
		TagUser:       currentUser(),
		TagSourceName: os.Args[0],
		TagSourceType: "LOCAL",
		TagPID:        strconv.Itoa(os.Getpid()),
	}
	if host, err := os.Hostname(); err == nil {
		all[TagHost] = host
	}
	if st := procStartTime(os.Getpid()); st != "" {
		all[TagProcStart] = st
	}
	if wd, err := os.Getwd(); err == nil {
		if c := gitCommit(wd); c != "" {
			all[TagGitCommit] = c
		}
	}
	for k, v := range tags {
		all[k] = v
	}

	id := newRunID()
	r := &Run{
		ID:           id,
		ExperimentID: exp.ID,
		store:        s,
		dir:          filepath.Join(expDir, id),
		artifactDir:  filepath.Join(artBase, id, artifactsDir),
	}
	meta := runMeta{
		RunID:          id,
		ExperimentID:   exp.ID,
		RunName:        runName,
		UserID:         all[TagUser],
		ArtifactURI:    appendURIPath(artLoc, id, artifactsDir),
		LifecycleStage: lifecycleActive,
		Status:         Running,
		StartTime:      startMillis,
	}
	metaYAML, err := meta.encode()
	if err != nil {
		return nil, err
	}
	localArtifacts := filepath.Clean(r.artifactDir) == filepath.Join(r.dir, artifactsDir)
	err = s.publishDir(r.dir, func(dir string) error {
		subdirs := []string{metricsDir, paramsDir, tagsDir}
		if localArtifacts {
			subdirs = append(subdirs, artifactsDir)
		}
		for _, sub := range subdirs {
			if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
				return err
			}
		}
		for k, v := range all {
			if err := writeIn(dir, tagsDir+"/"+k, []byte(v)); err != nil {
				return err
			}
		}
		return writeIn(dir, metaFile, metaYAML)
	})
	if err != nil {
		return nil, fmt.Errorf("start run in experiment %s: %w", exp.ID, err)
	}
	if !localArtifacts {
		if err := os.MkdirAll(r.artifactDir, 0o755); err != nil {
			return nil, fmt.Errorf("start run: %w", err)
		}
	}
	return r, nil
}

// ResumeRun returns a handle to an existing run, to log more to it (MLflow
// allows logging to ended runs). Its status is left as it is.
func (s *Store) ResumeRun(runID string) (*Run, error) {
	dir, meta, err := s.findRun(runID)
	if err != nil {
		return nil, err
	}
	if meta.LifecycleStage != lifecycleActive {
		return nil, fmt.Errorf("run %s is deleted", runID)
	}
	artDir, err := localPath(meta.ArtifactURI)
	if err != nil {
		return nil, fmt.Errorf("run %s: artifact_uri: %w", runID, err)
	}
	return &Run{ID: meta.RunID, ExperimentID: meta.ExperimentID, store: s, dir: dir, artifactDir: artDir}, nil
}

// SetRunTag sets a tag on an existing run.
func (s *Store) SetRunTag(runID, key, value string) error {
	r, err := s.ResumeRun(runID)
	if err != nil {
		return err
	}
	return r.SetTag(key, value)
}

// URI is the run's artifact root as a runs:/ URI.
func (r *Run) URI() string { return "runs:/" + r.ID }

// LogParam records a parameter. Params are immutable, as in MLflow: logging
// a key again with the same value is a no-op, with another value an error.
// The file is created exclusively (link(2)), so this holds across processes.
func (r *Run) LogParam(key, value string) error {
	if err := validateKey("param", key); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	if err := validateValue("param", key, value, maxParamValueLength); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logParamLocked(key, value)
}

func (r *Run) logParamLocked(key, value string) error {
	p := filepath.Join(r.dir, paramsDir, filepath.FromSlash(key))
	err := r.store.createFile(p, []byte(value))
	if errors.Is(err, fs.ErrExist) {
		return r.sameParam(key, value)
	}
	if err != nil {
		return fmt.Errorf("run %s: log param %q: %w", r.ID, key, err)
	}
	return nil
}

func (r *Run) sameParam(key, value string) error {
	old, err := os.ReadFile(filepath.Join(r.dir, paramsDir, filepath.FromSlash(key)))
	if err != nil {
		return fmt.Errorf("run %s: param %q: %w", r.ID, key, err)
	}
	if string(old) != value {
		return fmt.Errorf("run %s: param %q was already logged with value %q; params cannot change (new value %q)", r.ID, key, old, value)
	}
	return nil
}

// LogParams records several params: all are checked (names, lengths, and
// conflicts with params already logged) before any is written.
func (r *Run) LogParams(params map[string]string) error {
	keys := make([]string, 0, len(params))
	for k, v := range params {
		if err := validateKey("param", k); err != nil {
			return fmt.Errorf("run %s: %w", r.ID, err)
		}
		if err := validateValue("param", k, v, maxParamValueLength); err != nil {
			return fmt.Errorf("run %s: %w", r.ID, err)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if exists(filepath.Join(r.dir, paramsDir, filepath.FromSlash(k))) {
			if err := r.sameParam(k, params[k]); err != nil {
				return err
			}
		}
	}
	for _, k := range keys {
		if err := r.logParamLocked(k, params[k]); err != nil {
			return err
		}
	}
	return nil
}

// LogMetric appends "<ms timestamp> <value> <step>\n" to metrics/<key>, with
// the value formatted as Python's str(float) (so NaN and ±Inf are "nan",
// "inf" and "-inf", which MLflow's float() reads back). A metric file is
// created whole with its first line (link(2)), so MLflow never sees it empty;
// later lines are appended with one write(2) on an O_APPEND descriptor each,
// so concurrent writers never interleave and a killed process never leaves
// a partial line.
func (r *Run) LogMetric(key string, value float64, step int64) error {
	return r.logMetric(key, value, step, nowMillis())
}

func (r *Run) logMetric(key string, value float64, step, millis int64) error {
	if err := validateKey("metric", key); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	line := []byte(strconv.FormatInt(millis, 10) + " " + pyFloat(value) + " " + strconv.FormatInt(step, 10) + "\n")
	p := filepath.Join(r.dir, metricsDir, filepath.FromSlash(key))
	if _, ok := r.metrics.Load(key); !ok {
		err := r.store.createFile(p, line)
		if err == nil {
			r.metrics.Store(key, struct{}{})
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("run %s: log metric %q: %w", r.ID, key, err)
		}
		r.metrics.Store(key, struct{}{})
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("run %s: log metric %q: %w", r.ID, key, err)
	}
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("run %s: log metric %q: %w", r.ID, key, err)
	}
	return nil
}

// SetTag sets a tag, replacing its value atomically. Setting mlflow.runName
// also renames the run in meta.yaml, as MLflow does.
func (r *Run) SetTag(key, value string) error {
	if err := validateKey("tag", key); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	if err := validateValue("tag", key, value, maxTagValueLength); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	if key == TagRunName {
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := r.updateMeta(func(m *runMeta) error { m.RunName = value; return nil }); err != nil {
			return err
		}
	}
	return r.setTag(key, value)
}

func (r *Run) setTag(key, value string) error {
	if err := r.store.writeFile(filepath.Join(r.dir, tagsDir, filepath.FromSlash(key)), []byte(value)); err != nil {
		return fmt.Errorf("run %s: set tag %q: %w", r.ID, key, err)
	}
	return nil
}

// updateMeta rewrites meta.yaml atomically from its current content on disk.
// The caller holds r.mu.
func (r *Run) updateMeta(change func(*runMeta) error) error {
	return r.store.updateRunMeta(r.dir, change)
}

func (s *Store) updateRunMeta(runDir string, change func(*runMeta) error) error {
	m, err := readRunMeta(runDir)
	if err != nil {
		return err
	}
	if err := change(&m); err != nil {
		return err
	}
	data, err := m.encode()
	if err != nil {
		return err
	}
	return s.writeFile(filepath.Join(runDir, metaFile), data)
}

// LogArtifact writes data to artifacts/<relPath> atomically, replacing any
// file already there. relPath may contain '/' but must stay inside the
// artifacts folder.
func (r *Run) LogArtifact(relPath string, data []byte) error {
	return r.logArtifact(relPath, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// LogArtifactFile copies the file srcPath to artifacts/<relPath> atomically.
func (r *Run) LogArtifactFile(relPath, srcPath string) error {
	src, err := os.Open(srcPath)
	if err != nil {
		return fmt.Errorf("run %s: log artifact: %w", r.ID, err)
	}
	defer src.Close()
	if fi, err := src.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("run %s: log artifact: %s is not a regular file", r.ID, srcPath)
	}
	return r.logArtifact(relPath, func(w io.Writer) error {
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err := io.Copy(w, src)
		return err
	})
}

func (r *Run) logArtifact(relPath string, write func(io.Writer) error) error {
	if err := validateRelPath("artifact", relPath); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	dst := filepath.Join(r.artifactDir, filepath.FromSlash(relPath))
	if isDir(dst) {
		return fmt.Errorf("run %s: log artifact %q: a folder of that name exists", r.ID, relPath)
	}
	if err := r.store.place(dst, false, write); err != nil {
		return fmt.Errorf("run %s: log artifact %q: %w", r.ID, relPath, err)
	}
	return nil
}

// End sets the run's final status (FINISHED, FAILED or KILLED) and its
// end_time. It reads the status on disk first: ending a run that is no
// longer RUNNING (ended before, by this or another process, or marked
// KILLED by ReapStale) changes nothing and returns an error wrapping
// ErrRunEnded.
func (r *Run) End(status Status) error {
	return r.end(status, nowMillis())
}

func (r *Run) end(status Status, endMillis int64) error {
	if !status.Terminal() {
		return fmt.Errorf("run %s: cannot end with status %s (want FINISHED, FAILED or KILLED)", r.ID, status)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.updateMeta(func(m *runMeta) error {
		if m.Status != Running && m.Status != Scheduled {
			return fmt.Errorf("run %s is %s: %w", r.ID, m.Status, ErrRunEnded)
		}
		end := endMillis
		m.Status, m.EndTime = status, &end
		return nil
	})
	if err != nil && !errors.Is(err, ErrRunEnded) {
		return fmt.Errorf("run %s: end: %w", r.ID, err)
	}
	return err
}

// ReapStale marks KILLED, with an end_time, every active run left RUNNING by
// a process of this host that no longer exists (judged from the run's
// petbreed.pid, petbreed.host and petbreed.proc_start tags; runs without them
// are left alone). It returns how many runs it marked; runs it could not
// read are reported in the error, after the others were handled.
func (s *Store) ReapStale() (int, error) {
	host, err := os.Hostname()
	if err != nil {
		return 0, fmt.Errorf("reap stale runs: %w", err)
	}
	exps, err := s.Experiments()
	if err != nil {
		return 0, fmt.Errorf("reap stale runs: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range exps {
		dirs, err := s.runDirs(filepath.Join(s.root, e.ID))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, dir := range dirs {
			reaped, err := s.reap(dir, e.ID, host)
			if err != nil {
				errs = append(errs, err)
			}
			if reaped {
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

func (s *Store) reap(dir, expID, host string) (bool, error) {
	m, err := readRunMeta(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil || m.Status != Running || m.ExperimentID != expID || m.LifecycleStage != lifecycleActive {
		return false, err
	}
	tag := func(k string) string {
		b, _ := os.ReadFile(filepath.Join(dir, tagsDir, k))
		return string(b)
	}
	pid, err := strconv.Atoi(tag(TagPID))
	if err != nil || tag(TagHost) != host || !processGone(pid, tag(TagProcStart)) {
		return false, nil
	}
	reaped := false
	err = s.updateRunMeta(dir, func(m *runMeta) error {
		if m.Status != Running {
			return nil // ended meanwhile
		}
		end := nowMillis()
		m.Status, m.EndTime = Killed, &end
		reaped = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("reap run %s: %w", m.RunID, err)
	}
	return reaped, nil
}

// runDirs lists the folders of an experiment that can be runs.
func (s *Store) runDirs(expDir string) ([]string, error) {
	ents, err := os.ReadDir(expDir)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(expDir, e.Name())
		if reservedExperimentFolders[e.Name()] || !isDir(p) {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }
