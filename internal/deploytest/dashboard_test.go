package deploytest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
)

// root is the repository's root (tests run in their package's folder).
const root = "../.."

type target struct {
	Expr string `json:"expr"`
}

type panel struct {
	ID      int       `json:"id"`
	Type    string    `json:"type"`
	Title   string    `json:"title"`
	Targets []target  `json:"targets"`
	Panels  []panel   `json:"panels"` // a collapsed row's
	Source  *struct{} `json:"datasource"`
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// queries returns each query of the dashboard by where it is, and the
// dashboard's panels (rows' panels included).
func readDashboard(t *testing.T) (d dashboard, queries map[string]string, panels []panel) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "petbreed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("deploy/grafana/petbreed.json: %v", err)
	}
	queries = map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			panels = append(panels, p)
			for i, tg := range p.Targets {
				queries[p.Title+"#"+string(rune('A'+i))] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, queries, panels
}

// TestDashboardShape: the dashboard is one a Grafana can import: a uid,
// unique panel ids, a query in every graph, the data source a variable.
func TestDashboardShape(t *testing.T) {
	d, queries, panels := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q", d.UID, d.Title)
	}
	ids := map[int]string{}
	for _, p := range panels {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 || p.Source == nil {
			t.Errorf("panel %q has no query or no data source", p.Title)
		}
	}
	for where, q := range queries {
		if strings.TrimSpace(q) == "" {
			t.Errorf("%s: empty query", where)
		}
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !strings.Contains(strings.Join(vars, ","), "datasource") {
		t.Errorf("no datasource variable: %v", vars)
	}
}

// TestDashboardMetricsExist starts the real `petbreed serve` on loopback
// with a real model, classifies a photo (so that the histograms and
// labelled series exist), and checks that every metric the dashboard's
// queries read is in its /metrics, and that the dashboard shows what an
// operator needs.
func TestDashboardMetricsExist(t *testing.T) {
	d, queries, _ := readDashboard(t)
	used := map[string][]string{} // metric -> where
	for where, q := range queries {
		for _, m := range MetricNames(q) {
			used[m] = append(used[m], where)
		}
	}
	for _, v := range d.Templating.List {
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) != nil {
			json.Unmarshal(v.Query, &q.Query)
		}
		for _, m := range VariableMetrics(q.Query) {
			used[m] = append(used[m], "variable "+v.Name)
		}
	}
	for _, m := range []string{
		"petbreed_http_requests_total", "petbreed_http_request_duration_seconds_bucket",
		"petbreed_stage_duration_seconds_bucket", "petbreed_batch_size_bucket", "petbreed_queue_depth",
		"petbreed_overload_rejections_total", "petbreed_model_info", "petbreed_model_reloads_total",
		"process_resident_memory_bytes",
	} {
		if used[m] == nil {
			t.Errorf("the dashboard does not show %s", m)
		}
	}

	url := startServe(t)
	resp, err := http.Post(url+"/api/predict", "image/png", bytes.NewReader(testassets.Read(t, "photos", "chelsea.png")))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("predict: %s", resp.Status)
	}
	resp, err = http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exported := ExportedNames(string(body))

	var names []string
	for m := range used {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		if !exported[m] {
			t.Errorf("%s (read by %v) is not exported by petbreed serve", m, used[m])
		}
	}
	// Families of the server's own not on the dashboard: a note, not a
	// failure (a new metric may not need a panel).
	var unshown []string
	for m := range exported {
		if strings.HasPrefix(m, "petbreed_") && used[m] == nil && !isHistogramPart(m, used) {
			unshown = append(unshown, m)
		}
	}
	sort.Strings(unshown)
	if len(unshown) > 0 {
		t.Logf("exported but not on the dashboard: %v", unshown)
	}
}

// isHistogramPart says whether m is a histogram's series whose sibling is
// on the dashboard (petbreed_x_count when petbreed_x_bucket is used).
func isHistogramPart(m string, used map[string][]string) bool {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(m, suf); ok {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				if used[base+s] != nil {
					return true
				}
			}
		}
	}
	return false
}

// TestMain removes the binary testutil.Petbreed built.
func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}

// startServe starts a real `petbreed serve` on a free loopback port with the
// shared int8 MobileNetV2 and returns its URL; it is stopped with SIGTERM
// when the test ends.
func startServe(t *testing.T) string {
	t.Helper()
	model := testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")
	labels := testassets.Path(t, "backbone", "imagenet_labels.txt")
	return testutil.StartServe(t, root, []string{"PETBREED_ADMIN_TOKEN="}, "--model", model, "--labels", labels)
}
