package mlflowrest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"petbreed/internal/tracking"
)

// MLflow's limits on one runs/log-batch call (mlflow/utils/validation.py).
const (
	maxParamsPerBatch = 100
	maxTagsPerBatch   = 100
)

// TagRequestID marks a run or a model version with the id of the request
// that created it, so that a create whose answer was lost is found on the
// server instead of being made twice.
const TagRequestID = "petbreed.request_id"

var (
	_ tracking.Backend     = (*Client)(nil)
	_ tracking.RunWriter   = (*Run)(nil)
	_ tracking.InputLogger = (*Run)(nil)
)

// Experiment is the id of the active experiment called name, created if
// there is none (get-by-name, then create; a create racing another client's
// is answered by a second get-by-name).
func (c *Client) Experiment(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("experiment name must not be empty")
	}
	for try := 0; ; try++ {
		var got struct {
			Experiment experimentJSON `json:"experiment"`
		}
		err := c.get(apiPrefix+"experiments/get-by-name", url.Values{"experiment_name": {name}}, &got)
		if err == nil {
			if got.Experiment.LifecycleStage == "deleted" {
				return "", fmt.Errorf("experiment %q (id %s) on %s is deleted: restore it, or use another name", name, got.Experiment.ID, c.uri)
			}
			return got.Experiment.ID, nil
		}
		if !errors.Is(err, tracking.ErrNotFound) || try > 2 {
			return "", err
		}
		var created struct {
			ID string `json:"experiment_id"`
		}
		err = c.post(apiPrefix+"experiments/create", map[string]any{"name": name}, &created, once)
		if err == nil {
			return created.ID, nil
		}
		if !IsCode(err, "RESOURCE_ALREADY_EXISTS") && !(transient(err) && maybeApplied(err)) {
			return "", err
		}
		// Made by another client meanwhile, or by us with the answer lost.
	}
}

// CreateRun starts a RUNNING run in the experiment with the tags MLflow's
// client sets (tracking.SystemTags, mlflow.runName) and tags. runs/create is
// not repeated blindly: the run carries a petbreed.request_id tag, and a
// create whose answer was lost is looked for by it before another is made.
func (c *Client) CreateRun(experimentID, runName string, tags map[string]string) (tracking.RunWriter, error) {
	return c.CreateRunAt(experimentID, runName, tags, time.Now())
}

// CreateRunAt is CreateRun with the run's start time given, for a run
// copied from another store (tracking.TimedTracker).
func (c *Client) CreateRunAt(experimentID, runName string, tags map[string]string, start time.Time) (tracking.RunWriter, error) {
	if experimentID == "" {
		return nil, fmt.Errorf("start run: no experiment id")
	}
	for k, v := range tags {
		if err := tracking.ValidateTag(k, v); err != nil {
			return nil, fmt.Errorf("start run: %w", err)
		}
	}
	if tagName, ok := tags[tracking.TagRunName]; ok && runName != "" && tagName != runName {
		return nil, fmt.Errorf("start run: run name %q and tag %s=%q disagree", runName, tracking.TagRunName, tagName)
	}
	if runName == "" {
		runName = tags[tracking.TagRunName]
	}
	if runName == "" {
		runName = tracking.RandomRunName()
	}
	if err := tracking.ValidateTag(tracking.TagRunName, runName); err != nil {
		return nil, fmt.Errorf("start run: %w", err)
	}
	all := tracking.SystemTags()
	for k, v := range tags {
		all[k] = v
	}
	all[tracking.TagRunName] = runName
	reqID := newRequestID()
	all[TagRequestID] = reqID
	body := map[string]any{
		"experiment_id": experimentID,
		"run_name":      runName,
		"user_id":       all[tracking.TagUser],
		"start_time":    start.UnixMilli(),
		"tags":          kvList(all),
	}
	var got struct {
		Run runJSON `json:"run"`
	}
	for try := 0; ; try++ {
		err := c.post(apiPrefix+"runs/create", body, &got, once)
		if err == nil {
			break
		}
		if !transient(err) || !maybeApplied(err) || try >= c.opt.MaxRetries {
			return nil, fmt.Errorf("start run: %w", err)
		}
		time.Sleep(c.backoff(try+1, err))
		found, ferr := c.findRunByRequest(experimentID, reqID)
		if ferr != nil {
			return nil, fmt.Errorf("start run: %w (and finding whether it was made failed: %v)", err, ferr)
		}
		if found != nil {
			got.Run = *found
			break
		}
	}
	r := &Run{c: c, id: got.Run.Info.id(), expID: got.Run.Info.ExperimentID, artifactURI: got.Run.Info.ArtifactURI}
	c.rememberArtifacts(r.id, r.artifactURI)
	return r, nil
}

func (c *Client) findRunByRequest(expID, reqID string) (*runJSON, error) {
	var got struct {
		Runs []runJSON `json:"runs"`
	}
	err := c.post(apiPrefix+"runs/search", map[string]any{
		"experiment_ids": []string{expID},
		"filter":         "tags.`" + TagRequestID + "` = '" + reqID + "'",
		"run_view_type":  "ALL",
		"max_results":    10,
	}, &got, idempotent)
	if err != nil || len(got.Runs) == 0 {
		return nil, err
	}
	return &got.Runs[0], nil
}

// OpenRun returns a writer for an existing run.
func (c *Client) OpenRun(runID string) (tracking.RunWriter, error) {
	info, err := c.runInfo(runID)
	if err != nil {
		return nil, err
	}
	if info.LifecycleStage == "deleted" {
		return nil, fmt.Errorf("run %s is deleted", runID)
	}
	return &Run{c: c, id: info.id(), expID: info.ExperimentID, artifactURI: info.ArtifactURI}, nil
}

func (c *Client) runInfo(runID string) (runInfoJSON, error) {
	r, err := c.getRun(runID)
	if err != nil {
		return runInfoJSON{}, err
	}
	return r.Info, nil
}

func (c *Client) getRun(runID string) (*runJSON, error) {
	if err := tracking.ValidateRunID(runID); err != nil {
		return nil, err
	}
	var got struct {
		Run runJSON `json:"run"`
	}
	if err := c.get(apiPrefix+"runs/get", url.Values{"run_id": {runID}}, &got); err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	c.rememberArtifacts(runID, got.Run.Info.ArtifactURI)
	return &got.Run, nil
}

func (c *Client) rememberArtifacts(runID, uri string) {
	c.artMu.Lock()
	c.artifacts[runID] = uri
	c.artMu.Unlock()
}

// artifactBase is the proxy path of a run's artifact root: the path of its
// mlflow-artifacts: URI.
func (c *Client) artifactBase(runID string) (string, error) {
	c.artMu.Lock()
	uri, ok := c.artifacts[runID]
	c.artMu.Unlock()
	if !ok {
		info, err := c.runInfo(runID)
		if err != nil {
			return "", err
		}
		uri = info.ArtifactURI
	}
	return proxyPath(uri)
}

// proxyPath is the path below the artifact proxy of an mlflow-artifacts:
// URI (mlflow-artifacts:/p or mlflow-artifacts://host/p).
func proxyPath(uri string) (string, error) {
	rest, ok := strings.CutPrefix(uri, "mlflow-artifacts:")
	if !ok {
		return "", fmt.Errorf("artifacts at %q are not served by the tracking server's artifact proxy (want mlflow-artifacts:/...; start the server with --serve-artifacts)", uri)
	}
	if strings.HasPrefix(rest, "//") {
		if i := strings.IndexByte(rest[2:], '/'); i >= 0 {
			rest = rest[2+i:]
		} else {
			rest = ""
		}
	}
	p := strings.Trim(rest, "/")
	if p == "" {
		return "", fmt.Errorf("artifact URI %q has no path", uri)
	}
	return p, nil
}

// escapePath percent-encodes each '/'-separated segment.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

func kvList(m map[string]string) []keyValue {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]keyValue, len(keys))
	for i, k := range keys {
		out[i] = keyValue{Key: k, Value: m[k]}
	}
	return out
}

// Run is a run on the server being logged to (tracking.RunWriter).
type Run struct {
	c           *Client
	id, expID   string
	artifactURI string
	mu          sync.Mutex // serialises the model history tag
}

// RunID is the run's id.
func (r *Run) RunID() string { return r.id }

// ArtifactURI is the run's artifact root on the server.
func (r *Run) ArtifactURI() string { return r.artifactURI }

// LogParams logs params through log-batch, at most 100 a call. Every name
// and value is checked before any is sent. A param logged again with the
// same value is accepted by the server, so the calls are retried freely.
func (r *Run) LogParams(params map[string]string) error {
	for k, v := range params {
		if err := tracking.ValidateParam(k, v); err != nil {
			return fmt.Errorf("run %s: %w", r.id, err)
		}
	}
	kvs := kvList(params)
	for len(kvs) > 0 {
		n := min(len(kvs), maxParamsPerBatch)
		if err := r.c.post(apiPrefix+"runs/log-batch", map[string]any{"run_id": r.id, "params": kvs[:n]}, nil, idempotent); err != nil {
			return fmt.Errorf("run %s: log params: %w", r.id, err)
		}
		kvs = kvs[n:]
	}
	return nil
}

// SetTags sets tags through log-batch, at most 100 a call (idempotent).
func (r *Run) SetTags(tags map[string]string) error {
	for k, v := range tags {
		if err := tracking.ValidateTag(k, v); err != nil {
			return fmt.Errorf("run %s: %w", r.id, err)
		}
	}
	kvs := kvList(tags)
	for len(kvs) > 0 {
		n := min(len(kvs), maxTagsPerBatch)
		if err := r.c.post(apiPrefix+"runs/log-batch", map[string]any{"run_id": r.id, "tags": kvs[:n]}, nil, idempotent); err != nil {
			return fmt.Errorf("run %s: set tags: %w", r.id, err)
		}
		kvs = kvs[n:]
	}
	return nil
}

// LogInputs records dataset inputs through runs/log-inputs, at most
// tracking.MaxInputsPerCall a call, every input checked before any is sent.
// Both of MLflow's stores keep one input per dataset (name and digest) and
// run, so a call is retried freely.
func (r *Run) LogInputs(inputs []tracking.DatasetInput) error {
	ds := make([]datasetInputJSON, len(inputs))
	for i, in := range inputs {
		if err := tracking.ValidateDatasetInput(in); err != nil {
			return fmt.Errorf("run %s: %w", r.id, err)
		}
		d := &ds[i].Dataset
		d.Name, d.Digest, d.SourceType, d.Source = in.Dataset.Name, in.Dataset.Digest, in.Dataset.SourceType, in.Dataset.Source
		d.Schema, d.Profile = in.Dataset.Schema, in.Dataset.Profile
		ds[i].Tags = kvList(in.Tags)
	}
	for len(ds) > 0 {
		n := min(len(ds), tracking.MaxInputsPerCall)
		if err := r.c.post(apiPrefix+"runs/log-inputs", map[string]any{"run_id": r.id, "datasets": ds[:n]}, nil, idempotent); err != nil {
			return fmt.Errorf("run %s: log inputs: %w", r.id, err)
		}
		ds = ds[n:]
	}
	return nil
}

// LogMetrics logs a batch of metric values through log-batch, at most
// tracking.MaxMetricsPerBatch a call, every value stamped with the same
// timestamp. Names are checked before anything is sent; values may be any
// float64 (NaN and ±Inf are sent as proto3 JSON's "NaN", "Infinity" and
// "-Infinity", which MLflow stores as such).
//
// log-batch is not idempotent for metrics: MLflow's file store appends a
// line per value, and its sqlite store drops only exact duplicates. So a
// call that failed after it may have reached the server is not sent again
// as it was: the metrics' histories are read back first, and only the
// values not found there (same key, step, timestamp and value) are sent.
func (r *Run) LogMetrics(batch []tracking.Metric) error {
	for _, m := range batch {
		if err := tracking.ValidateKey("metric", m.Key); err != nil {
			return fmt.Errorf("run %s: %w", r.id, err)
		}
	}
	ts := time.Now().UnixMilli()
	ms := make([]metricJSON, len(batch))
	for i, m := range batch {
		t := ts
		if !m.Timestamp.IsZero() {
			t = m.Timestamp.UnixMilli() // a copied run keeps its values' times
		}
		ms[i] = metricJSON{Key: m.Key, Value: f64(m.Value), Timestamp: i64(t), Step: i64(m.Step)}
	}
	for len(ms) > 0 {
		n := min(len(ms), tracking.MaxMetricsPerBatch)
		if err := r.logMetricChunk(ms[:n]); err != nil {
			return fmt.Errorf("run %s: log metrics: %w", r.id, err)
		}
		ms = ms[n:]
	}
	return nil
}

func (r *Run) logMetricChunk(ms []metricJSON) error {
	for try := 0; ; try++ {
		err := r.c.post(apiPrefix+"runs/log-batch", map[string]any{"run_id": r.id, "metrics": ms}, nil, once)
		if err == nil {
			return nil
		}
		if !transient(err) || !maybeApplied(err) || try >= r.c.opt.MaxRetries {
			return err
		}
		time.Sleep(r.c.backoff(try+1, err))
		rest, rerr := r.notLogged(ms)
		if rerr != nil {
			return fmt.Errorf("%w (and reading back what was logged failed: %v)", err, rerr)
		}
		if len(rest) == 0 {
			return nil
		}
		ms = rest
	}
}

// notLogged is the part of ms not in the run's metric histories, counting
// repeats (a value sent twice in ms and found once is sent once more).
func (r *Run) notLogged(ms []metricJSON) ([]metricJSON, error) {
	type point struct {
		key        string
		ts, step   int64
		value      uint64 // bits; NaN normalised
		isNaN, inf bool
	}
	key := func(m metricJSON) point {
		v := float64(m.Value)
		p := point{key: m.Key, ts: int64(m.Timestamp), step: int64(m.Step)}
		if math.IsNaN(v) {
			p.isNaN = true
		} else {
			p.value = math.Float64bits(v)
		}
		return p
	}
	have := map[point]int{}
	seen := map[string]bool{}
	for _, m := range ms {
		if seen[m.Key] {
			continue
		}
		seen[m.Key] = true
		h, err := r.c.history(r.id, m.Key)
		if err != nil {
			return nil, err
		}
		for _, p := range h {
			have[key(p)]++
		}
	}
	var rest []metricJSON
	for _, m := range ms {
		k := key(m)
		if have[k] > 0 {
			have[k]--
			continue
		}
		rest = append(rest, m)
	}
	return rest, nil
}

// LogArtifact uploads data as the artifact at relPath (a PUT through the
// proxy, which replaces the file: retried freely).
func (r *Run) LogArtifact(relPath string, data []byte) error {
	if err := tracking.ValidateArtifactPath(relPath); err != nil {
		return fmt.Errorf("run %s: %w", r.id, err)
	}
	return r.upload(relPath, func() (io.ReadCloser, int64, error) {
		return io.NopCloser(strings.NewReader(string(data))), int64(len(data)), nil
	})
}

// LogArtifactFile uploads the file srcPath as the artifact at relPath,
// streamed from the file (never held in memory).
func (r *Run) LogArtifactFile(relPath, srcPath string) error {
	if err := tracking.ValidateArtifactPath(relPath); err != nil {
		return fmt.Errorf("run %s: %w", r.id, err)
	}
	fi, err := os.Stat(srcPath)
	if err != nil {
		return fmt.Errorf("run %s: log artifact: %w", r.id, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("run %s: log artifact: %s is not a regular file", r.id, srcPath)
	}
	return r.upload(relPath, fileBody(srcPath))
}

// fileBody opens the file afresh for each attempt, and checks that it did
// not change size (a body shorter than its Content-Length would tear).
func fileBody(path string) func() (io.ReadCloser, int64, error) {
	return func() (io.ReadCloser, int64, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, fi.Size(), nil
	}
}

func (r *Run) upload(relPath string, body func() (io.ReadCloser, int64, error)) error {
	base, err := proxyPath(r.artifactURI)
	if err != nil {
		return fmt.Errorf("run %s: log artifact %q: %w", r.id, relPath, err)
	}
	// No deadline for the whole transfer (a large model on a slow link takes
	// what it takes): each wait for the transport to take more bytes, and
	// then for the answer, is bounded by Timeout.
	err = r.c.retryPolicy(idempotent, func(context.Context) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var watch *idleReader
		req := &request{method: http.MethodPut, path: artifactPrefix + escapePath(base+"/"+relPath), policy: idempotent,
			upload: func() (io.ReadCloser, int64, error) {
				rc, n, err := body()
				if err != nil {
					return nil, 0, err
				}
				watch = newIdleReader(rc, r.c.opt.Timeout, cancel)
				watch.keepOnClose = true // the answer is still to come
				return watch, n, nil
			}}
		resp, err := r.c.send(ctx, req)
		if watch != nil {
			defer watch.timer.Stop()
		}
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return nil
	})
	if err != nil {
		return fmt.Errorf("run %s: log artifact %q: %w", r.id, relPath, err)
	}
	return nil
}

// LogONNXModel uploads onnxFile as an MLflow model folder at artifactPath
// (the same folder the file store writes: tracking.NewModelFolder), the
// ONNX file streamed first and MLmodel last, so a reader that finds the
// MLmodel finds the model; then appends it to the run's
// mlflow.log-model.history tag. The folder must not hold a model yet.
func (r *Run) LogONNXModel(artifactPath, onnxFile string, meta tracking.ModelMeta) (string, error) {
	if err := tracking.ValidateArtifactPath(artifactPath); err != nil {
		return "", fmt.Errorf("run %s: %w", r.id, err)
	}
	fi, err := os.Stat(onnxFile)
	if err != nil {
		return "", fmt.Errorf("run %s: log model: %w", r.id, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("run %s: log model: %s is not a regular file", r.id, onnxFile)
	}
	folder, err := tracking.NewModelFolder(r.id, artifactPath, fi.Size(), meta)
	if err != nil {
		return "", fmt.Errorf("run %s: log model: %w", r.id, err)
	}
	existing, err := r.c.ListArtifacts(r.id, artifactPath)
	if err != nil {
		return "", fmt.Errorf("run %s: log model: %w", r.id, err)
	}
	// A folder with an MLmodel is a logged model; one without is what a
	// failed attempt left (MLmodel goes last), and is written over.
	for _, e := range existing {
		if e.Path == artifactPath+"/"+tracking.MLmodelFile {
			return "", fmt.Errorf("run %s: log model: artifact path %q already exists", r.id, artifactPath)
		}
	}
	if err := r.upload(artifactPath+"/"+folder.ONNXFile, fileBody(onnxFile)); err != nil {
		return "", err
	}
	names := make([]string, 0, len(folder.Files))
	for n := range folder.Files {
		if n != tracking.MLmodelFile {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range append(names, tracking.MLmodelFile) {
		if err := r.LogArtifact(artifactPath+"/"+n, folder.Files[n]); err != nil {
			return "", err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	run, err := r.c.getRun(r.id)
	if err != nil {
		return "", err
	}
	old := ""
	for _, t := range run.Data.Tags {
		if t.Key == tracking.TagLogModelHistory {
			old = t.Value
		}
	}
	tag, err := tracking.AppendModelHistory(old, folder.HistoryEntry)
	if err != nil {
		return "", fmt.Errorf("run %s: %w", r.id, err)
	}
	// Not through SetTags: MLflow puts no length limit on this tag.
	if err := r.c.post(apiPrefix+"runs/set-tag", map[string]any{"run_id": r.id, "key": tracking.TagLogModelHistory, "value": tag}, nil, idempotent); err != nil {
		return "", fmt.Errorf("run %s: log model: %w", r.id, err)
	}
	return "runs:/" + r.id + "/" + artifactPath, nil
}

// End sets the run's terminal status and end time (runs/update). Like the
// file store, ending a run that is no longer RUNNING changes nothing and
// returns an error wrapping tracking.ErrRunEnded.
func (r *Run) End(status tracking.Status) error { return r.EndAt(status, time.Now()) }

// EndAt is End with the end time given (tracking.TimedEnder).
func (r *Run) EndAt(status tracking.Status, end time.Time) error {
	if !status.Terminal() {
		return fmt.Errorf("run %s: cannot end with status %s (want FINISHED, FAILED or KILLED)", r.id, status)
	}
	info, err := r.c.runInfo(r.id)
	if err != nil {
		return fmt.Errorf("run %s: end: %w", r.id, err)
	}
	if info.Status != "RUNNING" && info.Status != "SCHEDULED" {
		return fmt.Errorf("run %s is %s: %w", r.id, info.Status, tracking.ErrRunEnded)
	}
	err = r.c.post(apiPrefix+"runs/update", map[string]any{
		"run_id": r.id, "status": status.String(), "end_time": end.UnixMilli(),
	}, nil, idempotent)
	if err != nil {
		return fmt.Errorf("run %s: end: %w", r.id, err)
	}
	return nil
}

// CreateModelVersion registers source as the next version of the named
// model, creating the registered model if needed. A runs:/ source is
// registered as the artifact URI it stands for, as mlflow.register_model
// does, and gives the run id when runID is empty. model-versions/create is
// not repeated blindly: the version carries a petbreed.request_id tag, and
// a create whose answer was lost is looked for by it first.
func (c *Client) CreateModelVersion(name, source, runID string) (int, error) {
	if err := tracking.ValidateModelName(name); err != nil {
		return 0, err
	}
	if source == "" {
		return 0, fmt.Errorf("register %q: empty source", name)
	}
	if strings.HasPrefix(source, "runs:") {
		id, rel, err := tracking.ParseRunsURI(source)
		if err != nil {
			return 0, fmt.Errorf("register %q: %w", name, err)
		}
		info, err := c.runInfo(id)
		if err != nil {
			return 0, fmt.Errorf("register %q: %w", name, err)
		}
		source = strings.TrimRight(info.ArtifactURI, "/")
		if rel != "" {
			source += "/" + rel
		}
		if runID == "" {
			runID = id
		}
	}
	if runID != "" {
		if err := tracking.ValidateRunID(runID); err != nil {
			return 0, fmt.Errorf("register %q: %w", name, err)
		}
	}
	err := c.post(apiPrefix+"registered-models/create", map[string]any{"name": name}, nil, idempotent)
	if err != nil && !IsCode(err, "RESOURCE_ALREADY_EXISTS") {
		return 0, fmt.Errorf("register %q: %w", name, err)
	}
	reqID := newRequestID()
	body := map[string]any{"name": name, "source": source, "tags": []keyValue{{Key: TagRequestID, Value: reqID}}}
	if runID != "" {
		body["run_id"] = runID
	}
	var got struct {
		ModelVersion modelVersionJSON `json:"model_version"`
	}
	for try := 0; ; try++ {
		err = c.post(apiPrefix+"model-versions/create", body, &got, once)
		if err == nil {
			break
		}
		if !transient(err) || !maybeApplied(err) || try >= c.opt.MaxRetries {
			return 0, fmt.Errorf("register %q: %w", name, err)
		}
		time.Sleep(c.backoff(try+1, err))
		vs, ferr := c.searchVersions(name)
		if ferr != nil {
			return 0, fmt.Errorf("register %q: %w (and finding whether it was made failed: %v)", name, err, ferr)
		}
		if v := findRequest(vs, reqID); v != nil {
			got.ModelVersion = *v
			break
		}
	}
	v, err := strconv.Atoi(got.ModelVersion.Version)
	if err != nil {
		return 0, fmt.Errorf("register %q: the server answered version %q", name, got.ModelVersion.Version)
	}
	return v, nil
}

func findRequest(vs []modelVersionJSON, reqID string) *modelVersionJSON {
	for i := range vs {
		for _, t := range vs[i].Tags {
			if t.Key == TagRequestID && t.Value == reqID {
				return &vs[i]
			}
		}
	}
	return nil
}

// SetAlias points alias at a version (idempotent).
func (c *Client) SetAlias(name, alias string, version int) error {
	if err := tracking.ValidateModelName(name); err != nil {
		return err
	}
	if err := tracking.ValidateAlias(alias); err != nil {
		return err
	}
	err := c.post(apiPrefix+"registered-models/alias", map[string]any{"name": name, "alias": alias, "version": strconv.Itoa(version)}, nil, idempotent)
	if err != nil {
		return fmt.Errorf("set alias %q of %q to version %d: %w", alias, name, version, err)
	}
	return nil
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
