package mlflowrest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// The JSON of MLflow's REST API (mlflow/protos/service.proto,
// model_registry.proto), as its server writes it: int64 fields may come as
// numbers or strings, empty lists and strings are left out, and a double
// may be "NaN", "Infinity" or "-Infinity".

// i64 reads an int64 written as a number or a string.
type i64 int64

func (v *i64) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*v = i64(n)
	return nil
}

// f64 is a double in proto3 JSON: a number, or "NaN", "Infinity",
// "-Infinity" (and numbers as strings).
type f64 float64

func (v f64) MarshalJSON() ([]byte, error) {
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

func (v *f64) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	switch s {
	case "NaN", "nan":
		*v = f64(math.NaN())
		return nil
	case "Infinity", "inf":
		*v = f64(math.Inf(1))
		return nil
	case "-Infinity", "-inf":
		*v = f64(math.Inf(-1))
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*v = f64(f)
	return nil
}

type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type metricJSON struct {
	Key       string `json:"key"`
	Value     f64    `json:"value"`
	Timestamp i64    `json:"timestamp"`
	Step      i64    `json:"step"`
}

type experimentJSON struct {
	ID               string `json:"experiment_id"`
	Name             string `json:"name"`
	ArtifactLocation string `json:"artifact_location"`
	LifecycleStage   string `json:"lifecycle_stage"`
	CreationTime     i64    `json:"creation_time"`
	LastUpdateTime   i64    `json:"last_update_time"`
}

type runInfoJSON struct {
	RunID          string `json:"run_id"`
	RunUUID        string `json:"run_uuid"`
	ExperimentID   string `json:"experiment_id"`
	RunName        string `json:"run_name"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      i64    `json:"start_time"`
	EndTime        i64    `json:"end_time"`
	ArtifactURI    string `json:"artifact_uri"`
	LifecycleStage string `json:"lifecycle_stage"`
}

func (r runInfoJSON) id() string {
	if r.RunID != "" {
		return r.RunID
	}
	return r.RunUUID
}

type runJSON struct {
	Info runInfoJSON `json:"info"`
	Data struct {
		Metrics []metricJSON `json:"metrics"`
		Params  []keyValue   `json:"params"`
		Tags    []keyValue   `json:"tags"`
	} `json:"data"`
	Inputs struct {
		DatasetInputs []datasetInputJSON `json:"dataset_inputs"`
	} `json:"inputs"`
}

// datasetInputJSON is MLflow's DatasetInput: the input's tags and its
// dataset (schema and profile optional).
type datasetInputJSON struct {
	Tags    []keyValue `json:"tags,omitempty"`
	Dataset struct {
		Name       string `json:"name"`
		Digest     string `json:"digest"`
		SourceType string `json:"source_type"`
		Source     string `json:"source"`
		Schema     string `json:"schema,omitempty"`
		Profile    string `json:"profile,omitempty"`
	} `json:"dataset"`
}

type modelVersionJSON struct {
	Name                 string     `json:"name"`
	Version              string     `json:"version"`
	CreationTimestamp    i64        `json:"creation_timestamp"`
	LastUpdatedTimestamp i64        `json:"last_updated_timestamp"`
	CurrentStage         string     `json:"current_stage"`
	Description          string     `json:"description"`
	Source               string     `json:"source"`
	RunID                string     `json:"run_id"`
	Status               string     `json:"status"`
	Tags                 []keyValue `json:"tags"`
	Aliases              []string   `json:"aliases"`
}

type aliasJSON struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

type registeredModelJSON struct {
	Name    string      `json:"name"`
	Aliases []aliasJSON `json:"aliases"`
}

type fileInfoJSON struct {
	Path     string `json:"path"`
	IsDir    bool   `json:"is_dir"`
	FileSize i64    `json:"file_size"`
}

func msTime(ms i64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}
