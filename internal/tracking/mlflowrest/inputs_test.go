package mlflowrest

import (
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"petbreed/internal/testutil/mlflowserver"
	"petbreed/internal/tracking"
)

func petsInputs() []tracking.DatasetInput {
	in := func(digest, context, profile string) tracking.DatasetInput {
		return tracking.DatasetInput{
			Dataset: tracking.Dataset{Name: "pets-3breeds", Digest: digest, SourceType: tracking.SourceTypeLocal,
				Source: `{"uri": "file:///data/pets-3breeds"}`, Profile: profile},
			Tags: map[string]string{tracking.TagDatasetContext: context},
		}
	}
	ins := []tracking.DatasetInput{
		in("aaaa1111", tracking.ContextTrain, `{"num_images": 240}`),
		in("bbbb2222", tracking.ContextValidation, `{"num_images": 60}`),
		in("cccc3333", tracking.ContextTest, ""),
	}
	ins[0].Dataset.Schema = `{"path": "string", "label": "string"}`
	return ins
}

// restInputs are a run's dataset inputs as the server's runs/get answers
// them, read with plain net/http.
func restInputs(t *testing.T, srv *mlflowserver.Server, runID string) []tracking.DatasetInput {
	t.Helper()
	run := rest(t, srv, "runs/get", url.Values{"run_id": {runID}})["run"].(map[string]any)
	inputs, _ := run["inputs"].(map[string]any)
	var out []tracking.DatasetInput
	for _, x := range list(inputs["dataset_inputs"]) {
		m := x.(map[string]any)
		d := m["dataset"].(map[string]any)
		s := func(k string) string { v, _ := d[k].(string); return v }
		in := tracking.DatasetInput{
			Dataset: tracking.Dataset{Name: s("name"), Digest: s("digest"), SourceType: s("source_type"),
				Source: s("source"), Schema: s("schema"), Profile: s("profile")},
			Tags: map[string]string{},
		}
		for _, tg := range list(m["tags"]) {
			kv := tg.(map[string]any)
			in.Tags[kv["key"].(string)] = kv["value"].(string)
		}
		out = append(out, in)
	}
	tracking.SortInputs(out)
	return out
}

// testInputs logs dataset inputs through runs/log-inputs and reads them
// back through the server's own runs/get, the client's GetRun and Runs,
// and, on the file backend, petbreed's file store reading the folder the
// server wrote (MLflow's layout read by petbreed). Logging them again adds
// nothing; a refused input sends nothing.
func testInputs(t *testing.T, srv *mlflowserver.Server, c *Client, backend string) {
	exp, err := c.Experiment("inputs")
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.CreateRun(exp, "with-inputs", nil)
	if err != nil {
		t.Fatal(err)
	}
	id := w.RunID()
	want := petsInputs()
	for range 2 {
		if err := w.(tracking.InputLogger).LogInputs(want); err != nil {
			t.Fatalf("%v\n%s", err, srv.Log())
		}
	}
	if got := restInputs(t, srv, id); !reflect.DeepEqual(got, want) {
		t.Errorf("runs/get inputs.dataset_inputs:\n got %+v\nwant %+v", got, want)
	}
	bad := petsInputs()
	bad[2].Dataset.Digest = strings.Repeat("d", 37)
	calls := c.Calls()
	if err := w.(tracking.InputLogger).LogInputs(bad); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("a 37-character digest: %v", err)
	}
	if c.Calls() != calls {
		t.Errorf("a refused input made %d calls", c.Calls()-calls)
	}
	if err := w.End(tracking.Finished); err != nil {
		t.Fatal(err)
	}
	info, err := c.GetRun(id)
	if err != nil || !reflect.DeepEqual(info.Inputs, want) {
		t.Errorf("GetRun inputs %+v, %v", info, err)
	}
	runs, err := c.Runs(exp)
	if err != nil || len(runs) != 1 || !reflect.DeepEqual(runs[0].Inputs, want) {
		t.Errorf("Runs: %+v, %v", runs, err)
	}
	if backend != "file" {
		return
	}
	fs, err := tracking.Open(filepath.Join(srv.StateDir, "mlruns"))
	if err != nil {
		t.Fatal(err)
	}
	local, err := fs.GetRun(id)
	if err != nil || !reflect.DeepEqual(local.Inputs, want) {
		t.Errorf("the server's file store read by petbreed: inputs %+v, %v", local, err)
	}
}
