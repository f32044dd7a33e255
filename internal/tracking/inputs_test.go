package tracking

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func pets(digest, context string) DatasetInput {
	return DatasetInput{
		Dataset: Dataset{Name: "pets-3breeds", Digest: digest, SourceType: SourceTypeLocal,
			Source: `{"uri": "file:///data/pets-3breeds"}`, Profile: `{"num_images": 240}`},
		Tags: map[string]string{TagDatasetContext: context},
	}
}

// TestLogInputsLayout checks the folders MLflow's FileStore reads
// (_get_all_inputs): the dataset under the experiment, keyed by
// md5(name+digest), the input under the run, keyed by md5(dataset id+run
// id), and the run read back with its inputs, sorted; logging the same
// inputs again adds nothing.
func TestLogInputsLayout(t *testing.T) {
	s := openStore(t)
	r := startRun(t, s, "exp", "a")
	// md5("pets-3breeds" + "0a1b2c3d"), as Python's hashlib computes it.
	const wantDataset = "74500d7789f78f82de12b6aee89f4263"
	ins := []DatasetInput{pets("ffff0000", ContextValidation), pets("0a1b2c3d", ContextTrain)}
	for range 2 {
		if err := r.LogInputs(ins); err != nil {
			t.Fatal(err)
		}
	}
	expDir := filepath.Dir(r.dir)
	did := datasetID("pets-3breeds", "0a1b2c3d")
	if did != wantDataset {
		t.Errorf("dataset id %s, want MLflow's %s", did, wantDataset)
	}
	ds := readYAML(t, filepath.Join(expDir, "datasets", did, "meta.yaml"))
	want := map[string]any{"digest": "0a1b2c3d", "name": "pets-3breeds", "profile": `{"num_images": 240}`, "schema": nil,
		"source": `{"uri": "file:///data/pets-3breeds"}`, "source_type": "local"}
	if !reflect.DeepEqual(ds, want) {
		t.Errorf("dataset meta.yaml = %v, want %v", ds, want)
	}
	in := readYAML(t, filepath.Join(r.dir, "inputs", inputID(did, r.ID), "meta.yaml"))
	wantIn := map[string]any{"source_type": "DATASET", "source_id": did, "destination_type": "RUN", "destination_id": r.ID,
		"tags": map[string]any{TagDatasetContext: "train"}}
	if !reflect.DeepEqual(in, wantIn) {
		t.Errorf("input meta.yaml = %v, want %v", in, wantIn)
	}
	for _, dir := range []string{filepath.Join(expDir, "datasets"), filepath.Join(r.dir, "inputs")} {
		if ents, _ := os.ReadDir(dir); len(ents) != 2 {
			t.Errorf("%s has %d entries, want 2 (logged twice, kept once)", dir, len(ents))
		}
	}
	info, err := s.GetRun(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := []DatasetInput{ins[1], ins[0]}; !reflect.DeepEqual(info.Inputs, got) {
		t.Errorf("read back %+v, want %+v", info.Inputs, got)
	}

	// Another run of the experiment shares the dataset folder.
	r2 := startRun(t, s, "exp", "b")
	if err := r2.LogInputs(ins[1:]); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(expDir, "datasets")); len(ents) != 2 {
		t.Errorf("a second run made %d datasets, want the 2 there", len(ents))
	}
	runs, err := s.Runs(r.ExperimentID)
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %v, %v", runs, err)
	}
	for _, ri := range runs {
		if n := map[string]int{"a": 2, "b": 1}[ri.Name]; len(ri.Inputs) != n {
			t.Errorf("run %s lists %d inputs, want %d", ri.Name, len(ri.Inputs), n)
		}
	}
}

// TestLogInputsRefused checks MLflow's rules (mlflow/utils/validation.py)
// before anything is written: one bad input logs none of the batch.
func TestLogInputsRefused(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name   string
		change func(*DatasetInput)
		want   string
	}{
		{"no name", func(d *DatasetInput) { d.Dataset.Name = "" }, "no name"},
		{"no digest", func(d *DatasetInput) { d.Dataset.Digest = "" }, "no digest"},
		{"no source type", func(d *DatasetInput) { d.Dataset.SourceType = "" }, "no source_type"},
		{"no source", func(d *DatasetInput) { d.Dataset.Source = "" }, "no source"},
		{"long name", func(d *DatasetInput) { d.Dataset.Name = long(501) }, "limit of 500"},
		{"long digest", func(d *DatasetInput) { d.Dataset.Digest = long(37) }, "limit of 36"},
		{"long source", func(d *DatasetInput) { d.Dataset.Source = long(65536) }, "limit of 65535"},
		{"empty tag name", func(d *DatasetInput) { d.Tags[""] = "x" }, "no name"},
		{"long tag name", func(d *DatasetInput) { d.Tags[long(256)] = "x" }, "limit of 255"},
		{"long tag value", func(d *DatasetInput) { d.Tags[TagDatasetContext] = long(501) }, "limit of 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			r := startRun(t, s, "exp", "a")
			bad := pets("0a1b2c3d", ContextTest)
			tc.change(&bad)
			err := r.LogInputs([]DatasetInput{pets("00000000", ContextTrain), bad})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(r.dir, "inputs")); !os.IsNotExist(err) {
				t.Errorf("a refused batch wrote inputs (%v)", err)
			}
		})
	}
	// The limits themselves are accepted (in characters, as Python counts).
	ok := pets(long(36), ContextTrain)
	ok.Dataset.Name = strings.Repeat("é", 500)
	if err := ValidateDatasetInput(ok); err != nil {
		t.Errorf("at the limits: %v", err)
	}
}

// TestReadInputsAsMLflow reads inputs the way MLflow's reader does: an
// input of another source type or whose dataset is gone is skipped; a
// corrupt meta.yaml is an error naming the file.
func TestReadInputsAsMLflow(t *testing.T) {
	s := openStore(t)
	r := startRun(t, s, "exp", "a")
	if err := r.LogInputs([]DatasetInput{pets("0a1b2c3d", ContextTrain), pets("11111111", ContextTest)}); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(filepath.Dir(r.dir), "datasets", datasetID("pets-3breeds", "11111111")))
	other := filepath.Join(r.dir, "inputs", "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "meta.yaml"), []byte("source_type: MODEL\nsource_id: x\ndestination_type: RUN\ndestination_id: y\ntags: {}\n"), 0o644)
	info, err := s.GetRun(r.ID)
	if err != nil || len(info.Inputs) != 1 || info.Inputs[0].Dataset.Digest != "0a1b2c3d" {
		t.Fatalf("inputs %+v, %v; want the one whose dataset is there", info, err)
	}
	os.WriteFile(filepath.Join(other, "meta.yaml"), []byte("tags: [not, a, mapping\n"), 0o644)
	if _, err := s.GetRun(r.ID); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("a corrupt input: %v, want an error naming %s", err, other)
	}
}
