package mlflowserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The helpers below check what a client left on the server through MLflow's
// REST API itself, with plain net/http: a test's independent view, sharing
// no code with petbreed's client.

var restClient = &http.Client{Timeout: 60 * time.Second}

// Call sends one request to the server's REST API (path below /api/2.0/,
// e.g. "mlflow/runs/get") with a JSON body for POST/PATCH/DELETE or the
// query for GET, decodes a JSON answer into out (when not nil) and returns
// the status code.
func (s *Server) Call(tb testing.TB, method, path string, query url.Values, body, out any) int {
	tb.Helper()
	return Call(tb, s.URL, method, path, query, body, out)
}

// Call is Server.Call against any base URL (a proxy in front of a server).
func Call(tb testing.TB, base, method, path string, query url.Values, body, out any) int {
	tb.Helper()
	u := base + "/api/2.0/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := restClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, u, err)
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			tb.Fatalf("%s %s: %v\n%s", method, u, err, data)
		}
	}
	return resp.StatusCode
}

// Must is Call failing the test unless the answer is 200.
func (s *Server) Must(tb testing.TB, method, path string, query url.Values, body, out any) {
	tb.Helper()
	if code := s.Call(tb, method, path, query, body, out); code != http.StatusOK {
		tb.Fatalf("%s %s: status %d", method, path, code)
	}
}

// KV is an MLflow key/value pair (params, tags).
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Metric is a value in a metric history (get-history).
type Metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// Run is a run as runs/get and runs/search answer it.
type Run struct {
	Info struct {
		RunID        string `json:"run_id"`
		ExperimentID string `json:"experiment_id"`
		RunName      string `json:"run_name"`
		Status       string `json:"status"`
		StartTime    int64  `json:"start_time"`
		EndTime      int64  `json:"end_time"`
		ArtifactURI  string `json:"artifact_uri"`
	} `json:"info"`
	Data struct {
		Params []KV `json:"params"`
		Tags   []KV `json:"tags"`
	} `json:"data"`
	Inputs struct {
		DatasetInputs []DatasetInput `json:"dataset_inputs"`
	} `json:"inputs"`
}

// DatasetInput is one of a run's dataset inputs (MLflow's DatasetInput).
type DatasetInput struct {
	Tags    []KV `json:"tags"`
	Dataset struct {
		Name       string `json:"name"`
		Digest     string `json:"digest"`
		SourceType string `json:"source_type"`
		Source     string `json:"source"`
		Schema     string `json:"schema"`
		Profile    string `json:"profile"`
	} `json:"dataset"`
}

// Context is the input's mlflow.data.context tag.
func (d DatasetInput) Context() string { return find(d.Tags, "mlflow.data.context") }

// Param is a run's param ("" when absent).
func (r *Run) Param(k string) string { return find(r.Data.Params, k) }

// Tag is a run's tag ("" when absent).
func (r *Run) Tag(k string) string { return find(r.Data.Tags, k) }

func find(kvs []KV, k string) string {
	for _, kv := range kvs {
		if kv.Key == k {
			return kv.Value
		}
	}
	return ""
}

// ExperimentID is the id of the experiment of that name ("" if none).
func (s *Server) ExperimentID(tb testing.TB, name string) string {
	tb.Helper()
	var got struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	if s.Call(tb, "GET", "mlflow/experiments/get-by-name", url.Values{"experiment_name": {name}}, nil, &got) != http.StatusOK {
		return ""
	}
	return got.Experiment.ID
}

// Runs lists every run of an experiment (all pages of runs/search).
func (s *Server) Runs(tb testing.TB, experimentID string) []Run {
	tb.Helper()
	var out []Run
	token := ""
	for {
		var page struct {
			Runs []Run  `json:"runs"`
			Next string `json:"next_page_token"`
		}
		body := map[string]any{"experiment_ids": []string{experimentID}, "max_results": 50}
		if token != "" {
			body["page_token"] = token
		}
		s.Must(tb, "POST", "mlflow/runs/search", nil, body, &page)
		out = append(out, page.Runs...)
		if token = page.Next; token == "" {
			return out
		}
	}
}

// History is a run's whole metric history (all pages), in the server's order.
func (s *Server) History(tb testing.TB, runID, key string) []Metric {
	tb.Helper()
	var out []Metric
	token := ""
	for {
		var page struct {
			Metrics []Metric `json:"metrics"`
			Next    string   `json:"next_page_token"`
		}
		q := url.Values{"run_id": {runID}, "metric_key": {key}, "max_results": {"25"}}
		if token != "" {
			q.Set("page_token", token)
		}
		s.Must(tb, "GET", "mlflow/metrics/get-history", q, nil, &page)
		out = append(out, page.Metrics...)
		if token = page.Next; token == "" {
			return out
		}
	}
}

// Artifacts lists a run's artifact files ('/'-paths from its root) and
// their sizes, through the artifact proxy.
func (s *Server) Artifacts(tb testing.TB, run *Run) map[string]int64 {
	tb.Helper()
	base := proxyPath(tb, run.Info.ArtifactURI)
	out := map[string]int64{}
	var walk func(dir string)
	walk = func(dir string) {
		var got struct {
			Files []struct {
				Path  string `json:"path"`
				IsDir bool   `json:"is_dir"`
				Size  int64  `json:"file_size"`
			} `json:"files"`
		}
		p := base
		if dir != "" {
			p += "/" + dir
		}
		s.Must(tb, "GET", "mlflow-artifacts/artifacts", url.Values{"path": {p}}, nil, &got)
		for _, f := range got.Files {
			rel := f.Path
			if dir != "" {
				rel = dir + "/" + f.Path
			}
			if f.IsDir {
				walk(rel)
			} else {
				out[rel] = f.Size
			}
		}
	}
	walk("")
	return out
}

// Download is one artifact file's bytes, through the artifact proxy.
func (s *Server) Download(tb testing.TB, run *Run, rel string) []byte {
	tb.Helper()
	u := s.URL + "/api/2.0/mlflow-artifacts/artifacts/" + proxyPath(tb, run.Info.ArtifactURI) + "/" + rel
	resp, err := restClient.Get(u)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return b
}

// proxyPath is the artifact proxy's path of an mlflow-artifacts: URI.
func proxyPath(tb testing.TB, uri string) string {
	tb.Helper()
	rest, ok := strings.CutPrefix(uri, "mlflow-artifacts:")
	if !ok {
		tb.Fatalf("artifact URI %q is not served by the artifact proxy", uri)
	}
	if u, err := url.Parse(uri); err == nil && u.Host != "" {
		rest = u.Path
	}
	return strings.Trim(rest, "/")
}

// ModelVersion is a registered version as model-versions/get answers it.
type ModelVersion struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Source  string   `json:"source"`
	RunID   string   `json:"run_id"`
	Status  string   `json:"status"`
	Aliases []string `json:"aliases"`
}

// Versions lists a registered model's versions, oldest first.
func (s *Server) Versions(tb testing.TB, name string) []ModelVersion {
	tb.Helper()
	var got struct {
		Versions []ModelVersion `json:"model_versions"`
	}
	s.Must(tb, "GET", "mlflow/model-versions/search", url.Values{"filter": {fmt.Sprintf("name='%s'", name)}}, nil, &got)
	num := func(i int) int { n, _ := strconv.Atoi(got.Versions[i].Version); return n }
	sort.Slice(got.Versions, func(i, j int) bool { return num(i) < num(j) })
	return got.Versions
}

// Alias is the version an alias names ("" when it names none).
func (s *Server) Alias(tb testing.TB, name, alias string) string {
	tb.Helper()
	var got struct {
		Version ModelVersion `json:"model_version"`
	}
	if s.Call(tb, "GET", "mlflow/registered-models/alias", url.Values{"name": {name}, "alias": {alias}}, nil, &got) != http.StatusOK {
		return ""
	}
	return got.Version.Version
}
