package tracking

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// What another backend (the MLflow REST client) shares with the file store,
// so that both check names and read URIs alike.

// ValidateKey checks a metric, param or tag name (kind is "metric", "param"
// or "tag") as the file store does before writing it.
func ValidateKey(kind, key string) error { return validateKey(kind, key) }

// ValidateParam checks a param's name and value (MLflow's length limit).
func ValidateParam(key, value string) error {
	if err := validateKey("param", key); err != nil {
		return err
	}
	return validateValue("param", key, value, maxParamValueLength)
}

// ValidateTag checks a tag's name and value (MLflow's length limit).
func ValidateTag(key, value string) error {
	if err := validateKey("tag", key); err != nil {
		return err
	}
	return validateValue("tag", key, value, maxTagValueLength)
}

// ValidateArtifactPath checks a '/'-separated artifact path: relative,
// normalised, inside the run's artifacts.
func ValidateArtifactPath(p string) error { return validateRelPath("artifact", p) }

// ValidateModelName checks a registered model's name.
func ValidateModelName(name string) error { return validateModelName(name) }

// ValidateAlias checks an alias as MLflow does (letters, digits, '_', '-';
// not "latest" nor a version-like "v1").
func ValidateAlias(alias string) error { return validateAlias(alias) }

// ValidateRunID checks a run id's form (MLflow's _RUN_ID_REGEX).
func ValidateRunID(id string) error {
	if !runIDPattern.MatchString(id) {
		return fmt.Errorf("invalid run id %q", id)
	}
	return nil
}

// ParseRunsURI splits runs:/<run id>[/<artifact path>].
func ParseRunsURI(uri string) (runID, path string, err error) { return parseRunsURI(uri) }

// ModelsURI is a parsed models:/ URI: exactly one of Version, Alias and
// Stage is set; Stage "" with Version 0 and Alias "" means latest.
type ModelsURI struct {
	Name    string
	Version int
	Alias   string
	Stage   string // a stage name, or "" for models:/NAME/latest
}

// ParseModelsURI reads models:/NAME/VERSION, models:/NAME@ALIAS,
// models:/NAME/latest and models:/NAME/STAGE.
func ParseModelsURI(uri string) (ModelsURI, error) {
	bad := fmt.Errorf("invalid model URI %q: want models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>", uri)
	rest, ok := strings.CutPrefix(uri, "models:/")
	if !ok || strings.HasPrefix(rest, "/") {
		return ModelsURI{}, bad
	}
	if name, sel, ok := strings.Cut(rest, "/"); ok {
		if name == "" || sel == "" || strings.Contains(sel, "/") {
			return ModelsURI{}, bad
		}
		if err := validateModelName(name); err != nil {
			return ModelsURI{}, fmt.Errorf("invalid model URI %q: %w", uri, err)
		}
		if isDigits(sel) {
			v, err := strconv.Atoi(sel)
			if err != nil || v < 1 {
				return ModelsURI{}, fmt.Errorf("invalid model URI %q: bad version %q", uri, sel)
			}
			return ModelsURI{Name: name, Version: v}, nil
		}
		if strings.EqualFold(sel, "latest") {
			return ModelsURI{Name: name}, nil
		}
		return ModelsURI{Name: name, Stage: sel}, nil
	}
	if i := strings.LastIndexByte(rest, '@'); i > 0 && i < len(rest)-1 {
		name, alias := rest[:i], rest[i+1:]
		if err := validateModelName(name); err != nil {
			return ModelsURI{}, fmt.Errorf("invalid model URI %q: %w", uri, err)
		}
		if err := validateAlias(alias); err != nil {
			return ModelsURI{}, fmt.Errorf("invalid model URI %q: %w", uri, err)
		}
		return ModelsURI{Name: name, Alias: alias}, nil
	}
	return ModelsURI{}, bad
}

// ModelFile is the ONNX file of a local MLflow model folder: the file
// MLmodel names in flavors.onnx.data, or else the folder's only *.onnx file.
func ModelFile(dir string) (string, error) { return onnxIn(dir) }

// ONNXDataName is the ONNX file an MLmodel file names in flavors.onnx.data
// ("" when it names none), checked to be a relative path inside the folder.
func ONNXDataName(mlmodel []byte) (string, error) {
	var m struct {
		Flavors map[string]map[string]any `yaml:"flavors"`
	}
	if err := yaml.Unmarshal(mlmodel, &m); err != nil {
		return "", fmt.Errorf("MLmodel: %w", err)
	}
	name, _ := m.Flavors["onnx"]["data"].(string)
	if name == "" {
		return "", nil
	}
	if err := validateRelPath("onnx data", name); err != nil {
		return "", fmt.Errorf("MLmodel: flavors.onnx.data: %w", err)
	}
	return name, nil
}

// MLmodelFile is the name of an MLflow model folder's description.
const MLmodelFile = mlmodelFile

// SystemTags are the mlflow.* tags MLflow's client sets on a new run:
// mlflow.user, mlflow.source.name, mlflow.source.type (LOCAL) and, when the
// working folder is in a git repository with a commit,
// mlflow.source.git.commit.
func SystemTags() map[string]string {
	tags := map[string]string{
		TagUser:       currentUser(),
		TagSourceName: os.Args[0],
		TagSourceType: "LOCAL",
	}
	if wd, err := os.Getwd(); err == nil {
		if c := gitCommit(wd); c != "" {
			tags[TagGitCommit] = c
		}
	}
	return tags
}

// RandomRunName is a generated run name (adjective-noun-N), as a run
// created without a name gets.
func RandomRunName() string { return randomRunName() }
