package tracking

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"go.yaml.in/yaml/v3"

	"petbreed/internal/atomicfile"
)

// Versions an MLmodel file records when ModelMeta leaves them empty: the
// MLflow release whose file store this package follows, and the Python and
// onnx releases of its era.
const (
	DefaultMLflowVersion = "2.17.2"
	DefaultONNXVersion   = "1.17.0"
	DefaultPythonVersion = "3.11.9"
)

// Names inside an MLflow model folder (mlflow.onnx.save_model).
const (
	mlmodelFile  = "MLmodel"
	onnxDataFile = "model.onnx"
	condaFile    = "conda.yaml"
	pyEnvFile    = "python_env.yaml"
	requirements = "requirements.txt"
)

// ModelMeta describes an ONNX model for its MLmodel file: the signature (one
// input and one output tensor; dtypes are numpy names and default to
// float32; -1 marks a variable dimension) and the versions recorded.
type ModelMeta struct {
	InputName   string
	InputDType  string
	InputShape  []int64
	OutputName  string
	OutputDType string
	OutputShape []int64

	ONNXVersion   string            // flavors.onnx.onnx_version: the onnx Python package (default DefaultONNXVersion)
	MLflowVersion string            // mlflow_version (default DefaultMLflowVersion)
	PythonVersion string            // flavors.python_function.python_version (default DefaultPythonVersion)
	Metadata      map[string]string // MLmodel "metadata", optional
}

var numpyDTypes = map[string]bool{
	"bool": true, "int8": true, "int16": true, "int32": true, "int64": true,
	"uint8": true, "uint16": true, "uint32": true, "uint64": true,
	"float16": true, "float32": true, "float64": true,
}

// tensorSpecJSON is MLflow's Schema.to_json for one TensorSpec: Python's
// json.dumps of {"name", "type", "tensor-spec": {"dtype", "shape"}}, with its
// ", " and ": " separators and ASCII-only escapes.
func tensorSpecJSON(name, dtype string, shape []int64) (string, error) {
	if dtype == "" {
		dtype = "float32"
	}
	if !numpyDTypes[dtype] {
		return "", fmt.Errorf("tensor %q: unknown dtype %q (want a numpy name such as float32)", name, dtype)
	}
	if shape == nil {
		return "", fmt.Errorf("tensor %q: no shape", name)
	}
	var b strings.Builder
	b.WriteString("[{")
	if name != "" {
		b.WriteString(`"name": ` + pyJSONString(name) + ", ")
	}
	b.WriteString(`"type": "tensor", "tensor-spec": {"dtype": ` + pyJSONString(dtype) + `, "shape": [`)
	for i, d := range shape {
		if d < -1 {
			return "", fmt.Errorf("tensor %q: dimension %d is %d (want -1 or a size)", name, i, d)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteString("]}}]")
	return b.String(), nil
}

// pyJSONString quotes s as Python's json.dumps does by default
// (ensure_ascii): everything outside printable ASCII is escaped.
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		case r >= 0x10000:
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, hi, lo)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// loggedModel is one entry of the mlflow.log-model.history tag
// (Model.get_tags_dict).
type loggedModel struct {
	RunID          string                    `json:"run_id"`
	ArtifactPath   string                    `json:"artifact_path"`
	UTCTimeCreated string                    `json:"utc_time_created"`
	ModelUUID      string                    `json:"model_uuid"`
	Flavors        map[string]map[string]any `json:"flavors"`
}

// pyUTCNow is str(datetime.utcnow()), MLflow's utc_time_created.
func pyUTCNow(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.000000")
}

// ModelFolder is the content of an MLflow model folder for one ONNX file,
// as mlflow.onnx.log_model writes it: the small files (MLmodel, conda.yaml,
// python_env.yaml, requirements.txt, by name) and the entry to append to the
// run's mlflow.log-model.history tag. The ONNX file itself goes beside them
// as ONNXFile. Every backend logs a model through this, so a file store and
// a server get the same folder.
type ModelFolder struct {
	Files        map[string][]byte
	ONNXFile     string // the ONNX file's name inside the folder ("model.onnx")
	HistoryEntry []byte // JSON object for mlflow.log-model.history
}

// NewModelFolder builds the folder of an ONNX model of size bytes logged by
// runID at artifactPath.
func NewModelFolder(runID, artifactPath string, size int64, meta ModelMeta) (*ModelFolder, error) {
	if err := validateRelPath("model artifact", artifactPath); err != nil {
		return nil, err
	}
	in, err := tensorSpecJSON(meta.InputName, meta.InputDType, meta.InputShape)
	if err != nil {
		return nil, fmt.Errorf("input %w", err)
	}
	out, err := tensorSpecJSON(meta.OutputName, meta.OutputDType, meta.OutputShape)
	if err != nil {
		return nil, fmt.Errorf("output %w", err)
	}
	onnxVersion := orDefault(meta.ONNXVersion, DefaultONNXVersion)
	mlflowVersion := orDefault(meta.MLflowVersion, DefaultMLflowVersion)
	pyVersion := orDefault(meta.PythonVersion, DefaultPythonVersion)
	entry := loggedModel{
		RunID:          runID,
		ArtifactPath:   artifactPath,
		UTCTimeCreated: pyUTCNow(time.Now()),
		ModelUUID:      newRunID(),
		Flavors: map[string]map[string]any{
			"onnx": {
				"code": nil, "data": onnxDataFile, "onnx_session_options": nil,
				"onnx_version": onnxVersion, "providers": []string{"CPUExecutionProvider"},
			},
			"python_function": {
				"data": onnxDataFile, "env": map[string]string{"conda": condaFile, "virtualenv": pyEnvFile},
				"loader_module": "mlflow.onnx", "python_version": pyVersion,
			},
		},
	}
	top := map[string]*yaml.Node{
		"artifact_path": yStr(artifactPath),
		"flavors": yMap(map[string]*yaml.Node{
			"onnx": yMap(map[string]*yaml.Node{
				"code":                 yNull(),
				"data":                 yStr(onnxDataFile),
				"onnx_session_options": yNull(),
				"onnx_version":         yStr(onnxVersion),
				"providers":            yStrList("CPUExecutionProvider"),
			}),
			"python_function": yMap(map[string]*yaml.Node{
				"data":           yStr(onnxDataFile),
				"env":            yMap(map[string]*yaml.Node{"conda": yStr(condaFile), "virtualenv": yStr(pyEnvFile)}),
				"loader_module":  yStr("mlflow.onnx"),
				"python_version": yStr(pyVersion),
			}),
		}),
		"mlflow_version":   yStr(mlflowVersion),
		"model_size_bytes": yInt(size),
		"model_uuid":       yStr(entry.ModelUUID),
		"run_id":           yStr(runID),
		"signature": yMap(map[string]*yaml.Node{
			"inputs":  yStr(in),
			"outputs": yStr(out),
			"params":  yNull(),
		}),
		"utc_time_created": yStr(entry.UTCTimeCreated),
	}
	if len(meta.Metadata) > 0 {
		md := map[string]*yaml.Node{}
		for k, v := range meta.Metadata {
			md[k] = yStr(v)
		}
		top["metadata"] = yUserMap(md)
	}
	mlmodel, err := yEncode(yMap(top))
	if err != nil {
		return nil, err
	}
	reqs := []string{"mlflow==" + mlflowVersion, "onnx==" + onnxVersion, "onnxruntime"}
	conda, err := yEncode(yMap(map[string]*yaml.Node{
		"channels": yStrList("conda-forge"),
		"dependencies": yList(yStr("python="+pyVersion), yStr("pip"),
			yMap(map[string]*yaml.Node{"pip": yStrList(reqs...)})),
		"name": yStr("mlflow-env"),
	}))
	if err != nil {
		return nil, err
	}
	pyEnv, err := yEncode(yMap(map[string]*yaml.Node{
		"python":             yStr(pyVersion),
		"build_dependencies": yStrList("pip", "setuptools", "wheel"),
		"dependencies":       yStrList("-r " + requirements),
	}))
	if err != nil {
		return nil, err
	}
	e, err := json.Marshal(entry)
	if err != nil {
		return nil, err
	}
	return &ModelFolder{
		Files: map[string][]byte{
			mlmodelFile: mlmodel, condaFile: conda, pyEnvFile: pyEnv,
			requirements: []byte(strings.Join(reqs, "\n")),
		},
		ONNXFile:     onnxDataFile,
		HistoryEntry: e,
	}, nil
}

// AppendModelHistory is the mlflow.log-model.history tag's new value: the
// old one (a JSON list, or "" when the tag is not set) with entry appended.
func AppendModelHistory(old string, entry []byte) (string, error) {
	var history []json.RawMessage
	if old != "" {
		if err := json.Unmarshal([]byte(old), &history); err != nil {
			return "", fmt.Errorf("tag %s is not a JSON list: %w", TagLogModelHistory, err)
		}
	}
	tag, err := json.Marshal(append(history, json.RawMessage(entry)))
	if err != nil {
		return "", err
	}
	return string(tag), nil
}

// LogONNXModel logs onnxFile as an MLflow model at artifacts/<artifactPath>,
// the folder mlflow.onnx.log_model writes: model.onnx (copied), MLmodel
// (flavors onnx and python_function, signature, run_id, model_uuid,
// utc_time_created, mlflow_version, model_size_bytes), conda.yaml,
// python_env.yaml and requirements.txt (NewModelFolder). It appends the
// model to the run's mlflow.log-model.history tag, as MLflow does, and
// returns its URI, runs:/<run id>/<artifactPath>. The folder is assembled
// aside and renamed into place, so it is never seen half-written; it must
// not exist yet.
func (r *Run) LogONNXModel(artifactPath, onnxFile string, meta ModelMeta) (modelURI string, err error) {
	if err := validateRelPath("model artifact", artifactPath); err != nil {
		return "", fmt.Errorf("run %s: %w", r.ID, err)
	}
	src, err := os.Open(onnxFile)
	if err != nil {
		return "", fmt.Errorf("run %s: log model: %w", r.ID, err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("run %s: log model: %s is not a regular file", r.ID, onnxFile)
	}
	folder, err := NewModelFolder(r.ID, artifactPath, fi.Size(), meta)
	if err != nil {
		return "", fmt.Errorf("run %s: log model: %w", r.ID, err)
	}
	dst := filepath.Join(r.artifactDir, filepath.FromSlash(artifactPath))
	if exists(dst) {
		return "", fmt.Errorf("run %s: log model: artifact path %q already exists", r.ID, artifactPath)
	}

	err = r.store.publishDir(dst, func(dir string) error {
		err := atomicfile.Write(filepath.Join(dir, folder.ONNXFile), 0o644, func(w io.Writer) error {
			_, err := io.Copy(w, src)
			return err
		})
		if err != nil {
			return fmt.Errorf("copy %s: %w", onnxFile, err)
		}
		for name, data := range folder.Files {
			if err := writeIn(dir, name, data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("run %s: log model %q: %w", r.ID, artifactPath, err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	old, err := os.ReadFile(filepath.Join(r.dir, tagsDir, TagLogModelHistory))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	tag, err := AppendModelHistory(string(old), folder.HistoryEntry)
	if err != nil {
		return "", fmt.Errorf("run %s: %w", r.ID, err)
	}
	// MLflow applies no length limit to this tag (record_logged_model).
	if err := r.setTag(TagLogModelHistory, tag); err != nil {
		return "", err
	}
	return "runs:/" + r.ID + "/" + artifactPath, nil
}

// ResolveModelURI is Resolve's local ONNX file alone.
func (s *Store) ResolveModelURI(uri string) (string, error) {
	ref, err := s.Resolve(uri)
	return ref.Path, err
}

// Resolve turns a model reference into the model it names now, with the
// absolute path of its ONNX file:
//
//	models:/<name>/<version>   a registered version
//	models:/<name>@<alias>     the version an alias points to
//	models:/<name>/latest      the highest version
//	models:/<name>/<stage>     the highest version in a stage (e.g. Production)
//	runs:/<run id>/<path>      an artifact of a run
//	file:///abs/path           a local file or folder
//
// A registered version's source is an MLflow model folder; its ONNX file is
// the one MLmodel names in flavors.onnx.data, or else the folder's only
// *.onnx file. The same goes for a runs:/ or file: URI that names a folder.
// Anything without a scheme is a plain path and is returned unchanged, so
// every model argument can be passed through this.
//
// A store moved since it was written (trained on one machine, mounted at
// /data in a container) still resolves: a recorded absolute location that
// does not exist is looked for at the same place relative to the store's
// current root (see relocate).
func (s *Store) Resolve(uri string) (ModelRef, error) {
	ref := ModelRef{URI: uri}
	if uriScheme(uri) == "" {
		ref.Path = uri
		return ref, nil
	}
	p, err := s.resolveLocation(uri, 0, &ref)
	if err != nil {
		return ModelRef{URI: uri}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return ModelRef{URI: uri}, fmt.Errorf("resolve %s: %w", uri, err)
	}
	if fi.IsDir() {
		if p, err = onnxIn(p); err != nil {
			return ModelRef{URI: uri}, fmt.Errorf("resolve %s: %w", uri, err)
		}
	}
	ref.Path = p
	return ref, nil
}

// resolveLocation turns a URI into a local path (a model folder or a file),
// noting in ref the registered version and run it came through.
func (s *Store) resolveLocation(uri string, depth int, ref *ModelRef) (string, error) {
	if depth > 4 {
		return "", fmt.Errorf("resolve %s: too many levels of models:/ sources", uri)
	}
	switch uriScheme(uri) {
	case "":
		if !filepath.IsAbs(uri) {
			return "", fmt.Errorf("model source %q is not an absolute path", uri)
		}
		return s.relocate(uri), nil
	case "file":
		p, err := fileURIToPath(uri)
		if err != nil || depth == 0 {
			return p, err
		}
		return s.relocate(p), nil
	case "runs":
		id, rel, err := parseRunsURI(uri)
		if err != nil {
			return "", err
		}
		dir, err := s.artifactRoot(id)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", uri, err)
		}
		if ref.RunID == "" {
			ref.RunID = id
		}
		return filepath.Join(dir, filepath.FromSlash(rel)), nil
	case "models":
		name, v, err := s.parseModelsURI(uri)
		if err != nil {
			return "", err
		}
		mv, err := s.modelVersion(name, v)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", uri, err)
		}
		if ref.Name == "" {
			ref.Name, ref.Version, ref.RunID = name, v, mv.RunID
			ref.Alias = modelsURIAlias(uri)
		}
		return s.resolveLocation(orDefault(mv.StorageLocation, mv.Source), depth+1, ref)
	default:
		return "", fmt.Errorf("resolve %s: unsupported URI scheme (want models:/, runs:/, file: or a path)", uri)
	}
}

// parseRunsURI splits runs:/<run id>[/<artifact path>].
func parseRunsURI(uri string) (id, rel string, err error) {
	rest := uri[len("runs:"):]
	if !strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "//") {
		return "", "", fmt.Errorf("invalid runs URI %q: want runs:/<run id>/<artifact path>", uri)
	}
	id, rel, _ = strings.Cut(rest[1:], "/")
	rel = strings.TrimRight(rel, "/")
	if !runIDPattern.MatchString(id) {
		return "", "", fmt.Errorf("invalid runs URI %q: bad run id %q", uri, id)
	}
	if rel != "" {
		if err := validateRelPath("artifact", rel); err != nil {
			return "", "", fmt.Errorf("invalid runs URI %q: %w", uri, err)
		}
	}
	return id, rel, nil
}

// parseModelsURI resolves models:/<name>/<version|latest|stage> and
// models:/<name>@<alias> to a registered model and version number.
func (s *Store) parseModelsURI(uri string) (string, int, error) {
	bad := fmt.Errorf("invalid model URI %q: want models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>", uri)
	rest := uri[len("models:"):]
	if !strings.HasPrefix(rest, "/") || strings.HasPrefix(rest, "//") {
		return "", 0, bad
	}
	rest = rest[1:]
	if name, sel, ok := strings.Cut(rest, "/"); ok {
		if name == "" || sel == "" || strings.Contains(sel, "/") {
			return "", 0, bad
		}
		if err := s.checkModel(name); err != nil {
			return "", 0, fmt.Errorf("resolve %s: %w", uri, err)
		}
		if isDigits(sel) {
			v, err := strconv.Atoi(sel)
			if err != nil {
				return "", 0, fmt.Errorf("invalid model URI %q: bad version %q", uri, sel)
			}
			return name, v, nil // modelVersion reports a missing one
		}
		stage := sel
		if strings.EqualFold(sel, "latest") {
			stage = ""
		}
		v, err := s.latestVersion(name, stage)
		if err != nil {
			return "", 0, fmt.Errorf("resolve %s: %w", uri, err)
		}
		return name, v, nil
	}
	if i := strings.LastIndexByte(rest, '@'); i > 0 && i < len(rest)-1 {
		name, alias := rest[:i], rest[i+1:]
		v, err := s.Alias(name, alias)
		if err != nil {
			return "", 0, fmt.Errorf("resolve %s: %w", uri, err)
		}
		return name, v, nil
	}
	return "", 0, bad
}

// modelsURIAlias is the alias of a models:/<name>@<alias> URI ("" for
// other forms); parseModelsURI has checked the URI.
func modelsURIAlias(uri string) string {
	rest := strings.TrimPrefix(uri, "models:/")
	if strings.Contains(rest, "/") {
		return ""
	}
	if i := strings.LastIndexByte(rest, '@'); i > 0 {
		return rest[i+1:]
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// onnxIn finds the ONNX file of an MLflow model folder: the file MLmodel
// names in flavors.onnx.data, or else the folder's only *.onnx file.
func onnxIn(dir string) (string, error) {
	mlmodel := filepath.Join(dir, mlmodelFile)
	data, err := os.ReadFile(mlmodel)
	switch {
	case err == nil:
		var m struct {
			Flavors map[string]map[string]any `yaml:"flavors"`
		}
		if err := yaml.Unmarshal(data, &m); err != nil {
			return "", fmt.Errorf("%s: %w", mlmodel, err)
		}
		if name, ok := m.Flavors["onnx"]["data"].(string); ok && name != "" {
			if err := validateRelPath("onnx data", filepath.ToSlash(name)); err != nil {
				return "", fmt.Errorf("%s: flavors.onnx.data: %w", mlmodel, err)
			}
			p := filepath.Join(dir, filepath.FromSlash(name))
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				return "", fmt.Errorf("%s: flavors.onnx.data names %s, which is not a file", mlmodel, p)
			}
			return p, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var found []string
	for _, e := range ents {
		if strings.EqualFold(filepath.Ext(e.Name()), ".onnx") && e.Type().IsRegular() {
			found = append(found, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(found)
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("%s holds no ONNX model (no MLmodel onnx flavor and no *.onnx file)", dir)
	default:
		return "", fmt.Errorf("%s holds %d *.onnx files and no MLmodel onnx flavor to choose one", dir, len(found))
	}
}
