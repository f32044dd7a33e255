package mlflowrest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"petbreed/internal/tracking"
)

// pageSize is how many entries one page of a search asks for.
const (
	searchPage  = 1000  // runs/search and experiments/search take at most 50000 / 1000
	historyPage = 25000 // metrics/get-history
)

// Experiments lists the active experiments, newest first.
func (c *Client) Experiments() ([]tracking.ExperimentInfo, error) {
	var out []tracking.ExperimentInfo
	token := ""
	for {
		q := url.Values{"max_results": {strconv.Itoa(searchPage)}, "view_type": {"ACTIVE_ONLY"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var got struct {
			Experiments []experimentJSON `json:"experiments"`
			Next        string           `json:"next_page_token"`
		}
		if err := c.get(apiPrefix+"experiments/search", q, &got); err != nil {
			return nil, err
		}
		for _, e := range got.Experiments {
			out = append(out, tracking.ExperimentInfo{
				ID: e.ID, Name: e.Name, ArtifactLocation: e.ArtifactLocation, LifecycleStage: e.LifecycleStage,
				Created: msTime(e.CreationTime), Updated: msTime(e.LastUpdateTime),
			})
		}
		if got.Next == "" {
			break
		}
		token = got.Next
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Runs lists an experiment's active runs, newest first.
func (c *Client) Runs(experimentID string) ([]tracking.RunInfo, error) {
	var out []tracking.RunInfo
	token := ""
	for {
		body := map[string]any{
			"experiment_ids": []string{experimentID},
			"run_view_type":  "ACTIVE_ONLY",
			"max_results":    searchPage,
			"order_by":       []string{"attributes.start_time DESC"},
		}
		if token != "" {
			body["page_token"] = token
		}
		var got struct {
			Runs []runJSON `json:"runs"`
			Next string    `json:"next_page_token"`
		}
		if err := c.post(apiPrefix+"runs/search", body, &got, idempotent); err != nil {
			return nil, fmt.Errorf("runs of experiment %s: %w", experimentID, err)
		}
		for i := range got.Runs {
			info, err := runInfo(&got.Runs[i])
			if err != nil {
				return nil, err
			}
			c.rememberArtifacts(info.ID, info.ArtifactURI)
			out = append(out, *info)
		}
		if got.Next == "" {
			break
		}
		token = got.Next
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.After(out[j].Start)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func runInfo(r *runJSON) (*tracking.RunInfo, error) {
	st, err := tracking.ParseStatus(r.Info.Status)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", r.Info.id(), err)
	}
	info := &tracking.RunInfo{
		ID: r.Info.id(), ExperimentID: r.Info.ExperimentID, Name: r.Info.RunName, User: r.Info.UserID,
		Status: st, Start: msTime(r.Info.StartTime), End: msTime(r.Info.EndTime),
		ArtifactURI: r.Info.ArtifactURI, LifecycleStage: r.Info.LifecycleStage,
		Params: map[string]string{}, Metrics: map[string]float64{}, Tags: map[string]string{},
	}
	for _, p := range r.Data.Params {
		info.Params[p.Key] = p.Value
	}
	for _, t := range r.Data.Tags {
		info.Tags[t.Key] = t.Value
	}
	for _, m := range r.Data.Metrics {
		info.Metrics[m.Key] = float64(m.Value) // the server's latest value
	}
	if info.Name == "" {
		info.Name = info.Tags[tracking.TagRunName]
	}
	for _, in := range r.Inputs.DatasetInputs {
		d := in.Dataset
		di := tracking.DatasetInput{
			Dataset: tracking.Dataset{Name: d.Name, Digest: d.Digest, SourceType: d.SourceType, Source: d.Source, Schema: d.Schema, Profile: d.Profile},
			Tags:    map[string]string{},
		}
		for _, t := range in.Tags {
			di.Tags[t.Key] = t.Value
		}
		info.Inputs = append(info.Inputs, di)
	}
	tracking.SortInputs(info.Inputs)
	return info, nil
}

// GetRun reads one run; the error wraps tracking.ErrNotFound when it does
// not exist.
func (c *Client) GetRun(runID string) (*tracking.RunInfo, error) {
	r, err := c.getRun(runID)
	if err != nil {
		return nil, err
	}
	return runInfo(r)
}

// MetricHistory is every logged value of a run's metric, in logging order
// (timestamp order, then the server's order), read page by page.
func (c *Client) MetricHistory(runID, key string) ([]tracking.MetricPoint, error) {
	if err := tracking.ValidateKey("metric", key); err != nil {
		return nil, err
	}
	if _, err := c.runInfo(runID); err != nil {
		return nil, err
	}
	h, err := c.history(runID, key)
	if err != nil {
		return nil, err
	}
	out := make([]tracking.MetricPoint, len(h))
	for i, m := range h {
		out[i] = tracking.MetricPoint{Step: int64(m.Step), Value: float64(m.Value), Timestamp: msTime(m.Timestamp)}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Timestamp.Before(out[j].Timestamp) })
	return out, nil
}

func (c *Client) history(runID, key string) ([]metricJSON, error) {
	var out []metricJSON
	token := ""
	for {
		q := url.Values{"run_id": {runID}, "metric_key": {key}, "max_results": {strconv.Itoa(historyPage)}}
		if token != "" {
			q.Set("page_token", token)
		}
		var got struct {
			Metrics []metricJSON `json:"metrics"`
			Next    string       `json:"next_page_token"`
		}
		if err := c.get(apiPrefix+"metrics/get-history", q, &got); err != nil {
			return nil, fmt.Errorf("run %s: metric %q: %w", runID, key, err)
		}
		out = append(out, got.Metrics...)
		if got.Next == "" || len(got.Metrics) == 0 {
			return out, nil
		}
		token = got.Next
	}
}

// ListArtifacts lists an artifact folder of a run ("" is the root), sorted
// by path; a folder that does not exist is empty.
func (c *Client) ListArtifacts(runID, dir string) ([]tracking.ArtifactEntry, error) {
	dir = strings.Trim(dir, "/")
	if dir != "" {
		if err := tracking.ValidateArtifactPath(dir); err != nil {
			return nil, fmt.Errorf("run %s: %w", runID, err)
		}
	}
	if err := tracking.ValidateRunID(runID); err != nil {
		return nil, err
	}
	out := []tracking.ArtifactEntry{}
	token := ""
	for {
		q := url.Values{"run_id": {runID}}
		if dir != "" {
			q.Set("path", dir)
		}
		if token != "" {
			q.Set("page_token", token)
		}
		var got struct {
			Files []fileInfoJSON `json:"files"`
			Next  string         `json:"next_page_token"`
		}
		if err := c.get(apiPrefix+"artifacts/list", q, &got); err != nil {
			return nil, fmt.Errorf("run %s: artifacts %q: %w", runID, dir, err)
		}
		for _, f := range got.Files {
			p := strings.Trim(f.Path, "/")
			if dir != "" && !strings.HasPrefix(p, dir+"/") {
				p = path.Join(dir, path.Base(p))
			}
			e := tracking.ArtifactEntry{Path: p, IsDir: f.IsDir}
			if !f.IsDir {
				e.Size = int64(f.FileSize)
			}
			out = append(out, e)
		}
		if got.Next == "" || len(got.Files) == 0 {
			break
		}
		token = got.Next
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// OpenArtifact opens one artifact file, streamed from the artifact proxy;
// the error wraps tracking.ErrNotFound when the run or file does not exist.
func (c *Client) OpenArtifact(runID, rel string) (io.ReadCloser, error) {
	if err := tracking.ValidateArtifactPath(rel); err != nil {
		return nil, fmt.Errorf("run %s: %w", runID, err)
	}
	if err := tracking.ValidateRunID(runID); err != nil {
		return nil, err
	}
	base, err := c.artifactBase(runID)
	if err != nil {
		return nil, err
	}
	rc, err := c.download(base + "/" + rel)
	if err != nil {
		if c.missing(runID, rel, err) {
			return nil, fmt.Errorf("run %s: artifact %s: %w", runID, rel, tracking.ErrNotFound)
		}
		return nil, fmt.Errorf("run %s: artifact %s: %w", runID, rel, err)
	}
	return rc, nil
}

// missing tells a missing artifact (which the proxy answers with a 500 or
// a 404) from a failing server, by listing the file's folder.
func (c *Client) missing(runID, rel string, err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || (ae.Status != 404 && ae.Status != 500) {
		return false
	}
	dir := path.Dir(rel)
	if dir == "." {
		dir = ""
	}
	ents, lerr := c.ListArtifacts(runID, dir)
	if lerr != nil {
		return false
	}
	for _, e := range ents {
		if e.Path == rel && !e.IsDir {
			return false
		}
	}
	return true
}

// download GETs a file of the artifact proxy (its path below the proxy),
// retrying until the answer starts; the body is then streamed, with each
// wait for more bytes bounded by Timeout.
func (c *Client) download(proxyPath string) (io.ReadCloser, error) {
	req := &request{method: http.MethodGet, path: artifactPrefix + escapePath(proxyPath), policy: idempotent}
	var out io.ReadCloser
	err := c.retryPolicy(idempotent, func(context.Context) error {
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := c.send(ctx, req)
		if err != nil {
			cancel()
			return err
		}
		out = newIdleReader(resp.Body, c.opt.Timeout, cancel)
		return nil
	})
	return out, err
}

// idleReader cancels a transfer when no byte came for a while.
type idleReader struct {
	rc     io.ReadCloser
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelFunc
	// keepOnClose: an upload's body, closed by the transport once sent;
	// the timer goes on bounding the wait for the answer.
	keepOnClose bool
}

func newIdleReader(rc io.ReadCloser, idle time.Duration, cancel context.CancelFunc) *idleReader {
	return &idleReader{rc: rc, idle: idle, cancel: cancel, timer: time.AfterFunc(idle, cancel)}
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.timer.Reset(r.idle)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("artifact download: %w", err)
	}
	return n, err
}

func (r *idleReader) Close() error {
	err := r.rc.Close()
	if !r.keepOnClose {
		r.timer.Stop()
		r.cancel()
	}
	return err
}

// RegisteredModels lists the registered models' names, sorted.
func (c *Client) RegisteredModels() ([]string, error) {
	var out []string
	token := ""
	for {
		q := url.Values{"max_results": {strconv.Itoa(searchPage)}}
		if token != "" {
			q.Set("page_token", token)
		}
		var got struct {
			Models []registeredModelJSON `json:"registered_models"`
			Next   string                `json:"next_page_token"`
		}
		if err := c.get(apiPrefix+"registered-models/search", q, &got); err != nil {
			return nil, err
		}
		for _, m := range got.Models {
			out = append(out, m.Name)
		}
		if got.Next == "" || len(got.Models) == 0 {
			break
		}
		token = got.Next
	}
	sort.Strings(out)
	return out, nil
}

func (c *Client) registeredModel(name string) (*registeredModelJSON, error) {
	if err := tracking.ValidateModelName(name); err != nil {
		return nil, err
	}
	var got struct {
		Model registeredModelJSON `json:"registered_model"`
	}
	if err := c.get(apiPrefix+"registered-models/get", url.Values{"name": {name}}, &got); err != nil {
		return nil, fmt.Errorf("registered model %q: %w", name, err)
	}
	return &got.Model, nil
}

func (c *Client) searchVersions(name string) ([]modelVersionJSON, error) {
	var out []modelVersionJSON
	token := ""
	for {
		q := url.Values{"filter": {"name='" + strings.ReplaceAll(name, "'", `\'`) + "'"}, "max_results": {"10000"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var got struct {
			Versions []modelVersionJSON `json:"model_versions"`
			Next     string             `json:"next_page_token"`
		}
		if err := c.get(apiPrefix+"model-versions/search", q, &got); err != nil {
			return nil, fmt.Errorf("versions of %q: %w", name, err)
		}
		out = append(out, got.Versions...)
		if got.Next == "" || len(got.Versions) == 0 {
			return out, nil
		}
		token = got.Next
	}
}

// ModelVersions lists a registered model's versions, oldest first, each
// with its aliases; the error wraps tracking.ErrNotFound for a model that
// does not exist.
func (c *Client) ModelVersions(name string) ([]tracking.ModelVersion, error) {
	m, err := c.registeredModel(name)
	if err != nil {
		return nil, err
	}
	vs, err := c.searchVersions(name)
	if err != nil {
		return nil, err
	}
	byVersion := map[int][]string{}
	for _, a := range m.Aliases {
		if v, err := strconv.Atoi(a.Version); err == nil {
			byVersion[v] = append(byVersion[v], a.Alias)
		}
	}
	out := make([]tracking.ModelVersion, 0, len(vs))
	for _, v := range vs {
		mv, err := modelVersion(v)
		if err != nil {
			return nil, err
		}
		mv.Aliases = byVersion[mv.Version]
		sort.Strings(mv.Aliases)
		out = append(out, mv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

func modelVersion(v modelVersionJSON) (tracking.ModelVersion, error) {
	n, err := strconv.Atoi(v.Version)
	if err != nil {
		return tracking.ModelVersion{}, fmt.Errorf("model %q: the server gave version %q", v.Name, v.Version)
	}
	aliases := append([]string(nil), v.Aliases...)
	sort.Strings(aliases)
	return tracking.ModelVersion{
		Name: v.Name, Version: n, Created: msTime(v.CreationTimestamp), Updated: msTime(v.LastUpdatedTimestamp),
		Stage: v.CurrentStage, Source: v.Source, RunID: v.RunID, Status: v.Status, Description: v.Description,
		Aliases: aliases,
	}, nil
}

// Alias is the version an alias points to; the error wraps
// tracking.ErrNotFound when the model or the alias does not exist.
func (c *Client) Alias(name, alias string) (int, error) {
	mv, err := c.aliasVersion(name, alias)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(mv.Version)
}

func (c *Client) aliasVersion(name, alias string) (*modelVersionJSON, error) {
	if err := tracking.ValidateModelName(name); err != nil {
		return nil, err
	}
	if err := tracking.ValidateAlias(alias); err != nil {
		return nil, err
	}
	var got struct {
		ModelVersion modelVersionJSON `json:"model_version"`
	}
	err := c.get(apiPrefix+"registered-models/alias", url.Values{"name": {name}, "alias": {alias}}, &got)
	if err != nil {
		// A missing alias is a 400 INVALID_PARAMETER_VALUE ("... not found").
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == 400 && strings.Contains(strings.ToLower(ae.Message), "not found") {
			return nil, fmt.Errorf("model %q has no alias %q: %w (%s)", name, alias, tracking.ErrNotFound, ae.Message)
		}
		return nil, fmt.Errorf("alias %q of model %q: %w", alias, name, err)
	}
	if _, err := strconv.Atoi(got.ModelVersion.Version); err != nil {
		return nil, fmt.Errorf("alias %q of model %q: the server gave version %q", alias, name, got.ModelVersion.Version)
	}
	return &got.ModelVersion, nil
}

// Check asks the server for one experiment: an error (one line naming the
// server) when it is not reachable, refuses the credentials or is not an
// MLflow tracking server. Commands that would work for a long time before
// their first call (the pipeline computes features first) check at once.
func (c *Client) Check() error {
	return c.get(apiPrefix+"experiments/search", url.Values{"max_results": {"1"}}, nil)
}
