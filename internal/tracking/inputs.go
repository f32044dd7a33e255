package tracking

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Dataset inputs are MLflow's record of the data a run used (its "run
// inputs", mlflow.log_input): a dataset, identified by its name and digest
// within an experiment, and the input's tags, of which MLflow's own client
// sets one, mlflow.data.context ("train", "validation", "test", ...).
//
// MLflow's file store keeps a dataset once per experiment, at
// <experiment>/datasets/<md5(name+digest)>/meta.yaml (digest, name, profile,
// schema, source, source_type), and each input under its run, at
// <run>/inputs/<md5(dataset id+run id)>/meta.yaml (source_type DATASET,
// source_id the dataset's id, destination_type RUN, destination_id, tags).
// Both stores keep the first dataset of a (name, digest) and one input per
// dataset and run, so logging an input again changes nothing.

// TagDatasetContext is the input tag saying what a run used a dataset for
// (mlflow.utils.mlflow_tags.MLFLOW_DATASET_CONTEXT).
const TagDatasetContext = "mlflow.data.context"

// Dataset contexts the pipeline logs.
const (
	ContextTrain      = "train"
	ContextValidation = "validation"
	ContextTest       = "test"
)

// SourceTypeLocal is the source_type of a dataset on the local file system
// (MLflow's LocalArtifactDatasetSource); its Source is {"uri": "file://..."}.
const SourceTypeLocal = "local"

// MLflow's limits on a dataset input (mlflow/utils/validation.py), in
// characters.
const (
	maxDatasetName    = 500
	maxDatasetDigest  = 36
	maxDatasetSource  = 65535
	maxDatasetSchema  = 1048575
	maxDatasetProfile = 16777215
	maxInputTagKey    = 255
	maxInputTagValue  = 500
	// MaxInputsPerCall is the most dataset inputs one runs/log-inputs
	// call takes (MAX_DATASETS_PER_BATCH).
	MaxInputsPerCall = 1000
)

// Dataset is a dataset as MLflow records it.
type Dataset struct {
	Name   string
	Digest string // identifies the data among datasets of the same name
	// SourceType is where it comes from ("local", "http", "s3", ...);
	// Source is that source as JSON, e.g. {"uri": "file:///data/pets"}.
	SourceType, Source string
	// Schema and Profile are optional JSON: the data's shape and summary
	// statistics (e.g. the number of images).
	Schema, Profile string
}

// DatasetInput is one dataset a run used, with the input's tags.
type DatasetInput struct {
	Dataset Dataset
	Tags    map[string]string
}

// Context is the input's mlflow.data.context tag ("" when it has none).
func (in DatasetInput) Context() string { return in.Tags[TagDatasetContext] }

// InputLogger is a run writer that records dataset inputs: *Run (the file
// store) and the MLflow REST client's run. Logging an input again (same
// dataset name and digest) is a no-op, as in MLflow.
type InputLogger interface {
	LogInputs(inputs []DatasetInput) error
}

var _ InputLogger = (*Run)(nil)

// ValidateDatasetInput checks an input against what MLflow requires: a
// name, digest, source type and source, within MLflow's lengths, and input
// tags with a name and within theirs.
func ValidateDatasetInput(in DatasetInput) error {
	d := in.Dataset
	for _, f := range []struct {
		field, v string
		max      int
		required bool
	}{
		{"name", d.Name, maxDatasetName, true},
		{"digest", d.Digest, maxDatasetDigest, true},
		{"source_type", d.SourceType, maxDatasetSource, true},
		{"source", d.Source, maxDatasetSource, true},
		{"schema", d.Schema, maxDatasetSchema, false},
		{"profile", d.Profile, maxDatasetProfile, false},
	} {
		if f.required && f.v == "" {
			return fmt.Errorf("dataset input %q: no %s", d.Name, f.field)
		}
		if n := utf8.RuneCountInString(f.v); n > f.max {
			return fmt.Errorf("dataset input %.40q: %s is %d characters long, more than MLflow's limit of %d", d.Name, f.field, n, f.max)
		}
	}
	for k, v := range in.Tags {
		if k == "" {
			return fmt.Errorf("dataset input %q: an input tag has no name", d.Name)
		}
		if n := utf8.RuneCountInString(k); n > maxInputTagKey {
			return fmt.Errorf("dataset input %q: input tag name %.40q... is %d characters long, more than MLflow's limit of %d", d.Name, k, n, maxInputTagKey)
		}
		if n := utf8.RuneCountInString(v); n > maxInputTagValue {
			return fmt.Errorf("dataset input %q: input tag %s is %d characters long, more than MLflow's limit of %d", d.Name, k, n, maxInputTagValue)
		}
	}
	return nil
}

// SortInputs orders inputs by dataset name, digest and context, the order
// both backends read them back in.
func SortInputs(ins []DatasetInput) {
	sort.SliceStable(ins, func(i, j int) bool {
		a, b := ins[i].Dataset, ins[j].Dataset
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Digest != b.Digest {
			return a.Digest < b.Digest
		}
		return ins[i].Context() < ins[j].Context()
	})
}

const (
	datasetsDir     = "datasets"
	inputsDir       = "inputs"
	inputVertexData = "DATASET"
	inputVertexRun  = "RUN"
)

// datasetID and inputID are MLflow's FileStore._get_dataset_id and
// _get_input_id: md5 hex of the concatenated strings.
func datasetID(name, digest string) string {
	h := md5.Sum([]byte(name + digest))
	return hex.EncodeToString(h[:])
}

func inputID(datasetID, runID string) string {
	h := md5.Sum([]byte(datasetID + runID))
	return hex.EncodeToString(h[:])
}

// LogInputs records dataset inputs in MLflow's layout: every input is
// checked before anything is written; then each dataset's folder is made
// under the experiment (unless a dataset of that name and digest is there)
// and then the input's folder under the run (unless there), each folder
// appearing whole, so a reader never finds an input without its dataset.
func (r *Run) LogInputs(inputs []DatasetInput) error {
	for _, in := range inputs {
		if err := ValidateDatasetInput(in); err != nil {
			return fmt.Errorf("run %s: %w", r.ID, err)
		}
	}
	expDir := filepath.Dir(r.dir)
	for _, in := range inputs {
		d := in.Dataset
		did := datasetID(d.Name, d.Digest)
		dsMeta, err := yEncode(yMap(map[string]*yaml.Node{
			"digest":      yStr(d.Digest),
			"name":        yStr(d.Name),
			"profile":     yOptStr(d.Profile),
			"schema":      yOptStr(d.Schema),
			"source":      yStr(d.Source),
			"source_type": yStr(d.SourceType),
		}))
		if err != nil {
			return err
		}
		if err := r.publishOnce(filepath.Join(expDir, datasetsDir, did), dsMeta); err != nil {
			return fmt.Errorf("run %s: log dataset %q (%s): %w", r.ID, d.Name, d.Digest, err)
		}
		tags := make(map[string]*yaml.Node, len(in.Tags))
		for k, v := range in.Tags {
			tags[k] = yStr(v)
		}
		inMeta, err := yEncode(yMap(map[string]*yaml.Node{
			"source_type":      yStr(inputVertexData),
			"source_id":        yStr(did),
			"destination_type": yStr(inputVertexRun),
			// MLflow 2.17.2 writes the dataset's id here too (a slip in
			// _FileStoreInput.write_yaml); neither reader uses the field.
			"destination_id": yStr(r.ID),
			"tags":           yUserMap(tags),
		}))
		if err != nil {
			return err
		}
		if err := r.publishOnce(filepath.Join(r.dir, inputsDir, inputID(did, r.ID)), inMeta); err != nil {
			return fmt.Errorf("run %s: log input of dataset %q (%s): %w", r.ID, d.Name, d.Digest, err)
		}
	}
	return nil
}

// publishOnce makes dir holding meta.yaml unless dir exists (made before,
// or by another writer meanwhile).
func (r *Run) publishOnce(dir string, meta []byte) error {
	if isDir(dir) {
		return nil
	}
	err := r.store.publishDir(dir, func(tmp string) error { return writeIn(tmp, metaFile, meta) })
	if errors.Is(err, fs.ErrExist) && isDir(dir) {
		return nil
	}
	return err
}

// readInputs reads a run's dataset inputs as MLflow's _get_all_inputs does:
// an input whose source is not a dataset, or whose dataset folder is
// missing, is skipped (MLflow warns); a corrupt meta.yaml is an error
// naming it. The inputs are sorted (SortInputs).
func readInputs(runDir string) ([]DatasetInput, error) {
	ents, err := os.ReadDir(filepath.Join(runDir, inputsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dsDir := filepath.Join(filepath.Dir(runDir), datasetsDir)
	var out []DatasetInput
	for _, e := range ents {
		p := filepath.Join(runDir, inputsDir, e.Name(), metaFile)
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // not an input folder
		}
		if err != nil {
			return nil, err
		}
		doc, err := parseYAMLMap(p, data)
		if err != nil {
			return nil, err
		}
		if st, err := doc.str("source_type"); err != nil {
			return nil, err
		} else if st != inputVertexData {
			continue
		}
		did, err := doc.str("source_id")
		if err != nil {
			return nil, err
		}
		tags := map[string]string{}
		if raw, ok := doc.m["tags"]; ok && raw != nil {
			m, ok := raw.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: tags is %T, want a mapping", p, raw)
			}
			for k, v := range m {
				s, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("%s: tag %q is %T, want a string", p, k, v)
				}
				tags[k] = s
			}
		}
		if did == "" || filepath.Base(did) != did || did == "." || did == ".." {
			continue // names no dataset folder
		}
		dp := filepath.Join(dsDir, did, metaFile)
		dsData, err := os.ReadFile(dp)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		dd, err := parseYAMLMap(dp, dsData)
		if err != nil {
			return nil, err
		}
		var d Dataset
		for _, f := range []struct {
			key string
			dst *string
		}{{"name", &d.Name}, {"digest", &d.Digest}, {"source_type", &d.SourceType}, {"source", &d.Source}, {"schema", &d.Schema}, {"profile", &d.Profile}} {
			if *f.dst, err = dd.str(f.key); err != nil {
				return nil, err
			}
		}
		out = append(out, DatasetInput{Dataset: d, Tags: tags})
	}
	SortInputs(out)
	return out, nil
}
