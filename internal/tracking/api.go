package tracking

import (
	"io"
	"time"
)

// The interfaces below are what the rest of petbreed needs of a tracking
// backend, one per use. *Store (MLflow's file store) implements them all;
// trackingtest.Store is an in-memory fake for unit tests; an MLflow REST
// client would implement them too. Callers take the smallest one they need.

// ExperimentReader lists experiments.
type ExperimentReader interface {
	// Experiments lists the active experiments, newest first.
	Experiments() ([]ExperimentInfo, error)
}

// RunReader reads runs back.
type RunReader interface {
	// Runs lists an experiment's active runs, newest first.
	Runs(experimentID string) ([]RunInfo, error)
	// GetRun reads one run; the error wraps ErrNotFound when it does not exist.
	GetRun(runID string) (*RunInfo, error)
	// MetricHistory is every logged value of a run's metric, in logging
	// order; a metric never logged is an empty history.
	MetricHistory(runID, key string) ([]MetricPoint, error)
}

// ArtifactReader opens and lists a run's artifacts by run id and path
// ('/'-separated, below the run's artifact root). Where the files are is the
// backend's business.
type ArtifactReader interface {
	// OpenArtifact opens one artifact file; the error wraps ErrNotFound
	// when the run or the file does not exist.
	OpenArtifact(runID, path string) (io.ReadCloser, error)
	// ListArtifacts lists the entries of an artifact folder ("" is the
	// root), sorted by path; a folder that does not exist is empty.
	ListArtifacts(runID, dir string) ([]ArtifactEntry, error)
}

// ArtifactEntry is one entry of an artifact folder (MLflow's FileInfo).
type ArtifactEntry struct {
	Path  string // from the artifact root, '/'-separated
	IsDir bool
	Size  int64 // bytes; 0 for a folder
}

// RegistryReader reads the model registry.
type RegistryReader interface {
	// RegisteredModels lists the registered models' names, sorted.
	RegisteredModels() ([]string, error)
	// ModelVersions lists a registered model's versions, oldest first;
	// the error wraps ErrNotFound for a model that does not exist.
	ModelVersions(name string) ([]ModelVersion, error)
	// Alias is the version an alias points to (ErrNotFound if none).
	Alias(name, alias string) (int, error)
}

// Registry reads the model registry and moves aliases.
type Registry interface {
	RegistryReader
	SetAlias(name, alias string, version int) error
}

// Resolver turns a model URI into the model it names now.
type Resolver interface {
	// Resolve resolves models:/NAME/VERSION, models:/NAME@ALIAS,
	// models:/NAME/latest, models:/NAME/STAGE, runs:/RUN_ID/PATH and
	// file: URIs; a plain path is returned as it is.
	Resolve(uri string) (ModelRef, error)
}

// ModelRef is what a model URI resolved to.
type ModelRef struct {
	URI     string // as given
	Name    string // the registered model's name; "" unless the URI is models:/
	Version int    // the registry's version number; 0 unless the URI is models:/
	Alias   string // for models:/NAME@ALIAS, the alias (what a server polls for a new version)
	RunID   string // the run that made it, when known
	// Path is the local ONNX file. A file store gives the file in place
	// (found under the store's current root when the store was moved); a
	// remote backend downloads the model to a local cache first.
	Path string
}

// Browser is what the web page's experiments view and the CLI's listings
// need: experiments, runs, their metrics and artifacts, the registry with
// its aliases, and model resolution (a promotion's trial load).
type Browser interface {
	ExperimentReader
	RunReader
	ArtifactReader
	Registry
	Resolver
}

// ModelSource is what the model server needs: resolution, and the alias
// it polls.
type ModelSource interface {
	Resolver
	Alias(name, alias string) (int, error)
}

var (
	_ Browser     = (*Store)(nil)
	_ ModelSource = (*Store)(nil)
)

// The write side: what the training pipeline needs to record runs and
// register a model, in the style of an appender (a run handle the caller
// logs to and ends). *Store implements Tracker and RegistryWriter, *Run
// implements RunWriter; an MLflow REST client would implement them over
// runs/create, runs/log-batch, runs/update and the registry's endpoints.

// MaxMetricsPerBatch is the most metrics MLflow's runs/log-batch takes in
// one call. A backend with such a limit splits a longer LogMetrics batch
// into calls of at most this many; the file store has no limit.
const MaxMetricsPerBatch = 1000

// Metric is one value of a metric at a step, an entry of a LogMetrics batch.
type Metric struct {
	Key   string
	Value float64
	Step  int64
	// Timestamp is when the value was logged; zero means now. A run copied
	// from another store (trackingsync) keeps its own.
	Timestamp time.Time
}

// Tracker creates experiments and runs.
type Tracker interface {
	// URI is where the backend keeps its data: a file store's file:// URI,
	// a server's http(s):// URI.
	URI() string
	// Experiment is the id of the active experiment of that name, created
	// if there is none.
	Experiment(name string) (string, error)
	// CreateRun starts a RUNNING run in the experiment (see StartRun).
	CreateRun(experimentID, runName string, tags map[string]string) (RunWriter, error)
	// OpenRun returns a writer for an existing run, to log more to it; its
	// status is left as it is.
	OpenRun(runID string) (RunWriter, error)
}

// RunWriter logs to one run. A failed call has logged nothing of a batch
// that failed validation; a batch that failed midway (an I/O error) may
// have logged a prefix, as MLflow's log-batch may.
type RunWriter interface {
	// RunID is the run's id.
	RunID() string
	// LogParams records params; params are immutable (same value again is
	// a no-op, another value an error).
	LogParams(params map[string]string) error
	// LogMetrics records a batch of metric values, in order.
	LogMetrics(batch []Metric) error
	// SetTags sets tags, replacing their values.
	SetTags(tags map[string]string) error
	// LogArtifact writes one artifact file at relPath ('/'-separated).
	LogArtifact(relPath string, data []byte) error
	// LogONNXModel logs an ONNX file as an MLflow model folder at
	// artifactPath and returns its runs:/ URI.
	LogONNXModel(artifactPath, onnxFile string, meta ModelMeta) (string, error)
	// End sets the run's terminal status (FINISHED, FAILED or KILLED); the
	// error wraps ErrRunEnded when the run had already ended.
	End(status Status) error
}

// RegistryWriter registers model versions and points aliases at them.
type RegistryWriter interface {
	// CreateModelVersion registers source (a runs:/ URI) made by runID as
	// the next version of the named model, created if needed.
	CreateModelVersion(name, source, runID string) (int, error)
	SetAlias(name, alias string, version int) error
}

var (
	_ Tracker        = (*Store)(nil)
	_ RegistryWriter = (*Store)(nil)
	_ RunWriter      = (*Run)(nil)
)

// A copied run keeps its own times: trackingsync records a run made
// elsewhere through these when the destination has them (*Store and *Run
// do; a REST client would, with runs/create's start_time and runs/update's
// end_time), and Metric.Timestamp keeps each value's time.

// TimedTracker is a Tracker that creates a run with a given start time.
type TimedTracker interface {
	CreateRunAt(experimentID, runName string, tags map[string]string, start time.Time) (RunWriter, error)
}

// TimedEnder is a RunWriter that ends its run at a given time (as End).
type TimedEnder interface {
	EndAt(status Status, end time.Time) error
}

var (
	_ TimedTracker = (*Store)(nil)
	_ TimedEnder   = (*Run)(nil)
)

// Backend is a whole tracking backend: what the pipeline writes, what the
// page and the CLI read, and the model resolution the server and predict
// use. *Store (MLflow's file store) and the MLflow REST client
// (internal/tracking/mlflowrest) implement it; internal/tracking/backend
// opens one from a tracking URI.
type Backend interface {
	Tracker
	RegistryWriter
	Browser
}

var _ Backend = (*Store)(nil)
