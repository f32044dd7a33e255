package tracking

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Model version fields as MLflow's registry writes them.
const (
	stageNone            = "None"
	stageDeletedInternal = "Deleted_Internal" // how MLflow's FileStore marks a deleted version
	versionReady         = "READY"
	versionPrefix        = "version-"
)

// ModelVersion is one version of a registered model.
type ModelVersion struct {
	Name             string
	Version          int
	Created, Updated time.Time
	Stage            string // current_stage: "None", "Staging", "Production" or "Archived"
	Source           string // URI of the MLflow model folder
	StorageLocation  string // where MLflow downloads it from ("" = Source)
	RunID            string
	Status           string
	Description      string
	Aliases          []string // sorted
}

func (s *Store) modelDir(name string) string { return filepath.Join(s.root, modelsDir, name) }

// RegisteredModels lists the registered models' names, sorted. Every folder
// under models/ must have a meta.yaml naming it, as MLflow requires.
func (s *Store) RegisteredModels() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, modelsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list registered models: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !isDir(filepath.Join(s.root, modelsDir, e.Name())) {
			continue
		}
		if err := s.checkModel(e.Name()); err != nil {
			return nil, err
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// checkModel checks models/<name>/meta.yaml: present, with that name.
func (s *Store) checkModel(name string) error {
	if err := validateModelName(name); err != nil {
		return err
	}
	dir := s.modelDir(name)
	p := filepath.Join(dir, metaFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		if !isDir(dir) {
			return fmt.Errorf("registered model %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("registered model %q: %s is missing", name, p)
	}
	if err != nil {
		return err
	}
	d, err := parseYAMLMap(p, data)
	if err != nil {
		return err
	}
	got, err := d.str("name")
	if err != nil {
		return err
	}
	if got != name {
		return fmt.Errorf("%s: name %q is not the folder's name %q", p, got, name)
	}
	return nil
}

// writeModelMeta (re)writes models/<name>/meta.yaml with the keys MLflow's
// registry writes, keeping the creation time.
func (s *Store) writeModelMeta(name string, created, updated int64) error {
	aliases, err := s.aliases(name)
	if err != nil {
		return err
	}
	am := map[string]*yaml.Node{}
	for a, v := range aliases {
		am[a] = yStr(strconv.Itoa(v))
	}
	data, err := yEncode(s.modelMetaNode(name, created, updated, am))
	if err != nil {
		return err
	}
	return s.writeFile(filepath.Join(s.modelDir(name), metaFile), data)
}

func (s *Store) modelMetaNode(name string, created, updated int64, aliases map[string]*yaml.Node) *yaml.Node {
	return yMap(map[string]*yaml.Node{
		"aliases":                yUserMap(aliases),
		"creation_timestamp":     yInt(created),
		"description":            yNull(),
		"last_updated_timestamp": yInt(updated),
		"name":                   yStr(name),
	})
}

// touchModel sets the registered model's last_updated_timestamp to now.
func (s *Store) touchModel(name string) error {
	p := filepath.Join(s.modelDir(name), metaFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	d, err := parseYAMLMap(p, data)
	if err != nil {
		return err
	}
	created, _, err := d.int("creation_timestamp")
	if err != nil {
		return err
	}
	return s.writeModelMeta(name, created, nowMillis())
}

// ensureModel creates the registered model if it does not exist; the folder
// appears whole with its meta.yaml.
func (s *Store) ensureModel(name string) error {
	if isDir(s.modelDir(name)) {
		return s.checkModel(name)
	}
	now := nowMillis()
	data, err := yEncode(s.modelMetaNode(name, now, now, nil))
	if err != nil {
		return err
	}
	err = s.publishDir(s.modelDir(name), func(dir string) error { return writeIn(dir, metaFile, data) })
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create registered model %q: %w", name, err)
	}
	return s.checkModel(name)
}

// versionNumbers lists the N of every version-N folder.
func (s *Store) versionNumbers(name string) ([]int, error) {
	ents, err := os.ReadDir(s.modelDir(name))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		n, ok := parseVersionDir(e.Name())
		if ok && isDir(filepath.Join(s.modelDir(name), e.Name())) {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

func parseVersionDir(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, versionPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

// CreateModelVersion registers the MLflow model at source (a file: URI,
// absolute path or runs:/ URI of a model folder) as the next version of the
// registered model name, creating the model if needed, and returns the
// version number (1, 2, ...). A runs:/ source is stored as the artifact URI
// it stands for, as mlflow.register_model does, and gives the run id when
// runID is empty. Each version folder is assembled aside and renamed into
// place, which fails if the folder exists, and numbering is serialised by a
// lock shared by every process, so processes racing get distinct versions.
func (s *Store) CreateModelVersion(name, source, runID string) (int, error) {
	if err := validateModelName(name); err != nil {
		return 0, err
	}
	if source == "" {
		return 0, fmt.Errorf("register %q: empty source", name)
	}
	if uriScheme(source) == "runs" {
		id, rel, err := parseRunsURI(source)
		if err != nil {
			return 0, fmt.Errorf("register %q: %w", name, err)
		}
		_, m, err := s.findRun(id)
		if err != nil {
			return 0, fmt.Errorf("register %q: %w", name, err)
		}
		source = appendURIPath(m.ArtifactURI, rel)
		if runID == "" {
			runID = id
		}
	}
	if uriScheme(source) == "" {
		if !filepath.IsAbs(source) {
			return 0, fmt.Errorf("register %q: source %q must be a URI or an absolute path", name, source)
		}
		source = pathToFileURI(source)
	}
	storage := source
	if uriScheme(source) == "models" {
		// As MLflow: the new version is downloaded from where that one is.
		n, v, err := s.parseModelsURI(source)
		if err != nil {
			return 0, fmt.Errorf("register %q: %w", name, err)
		}
		mv, err := s.modelVersion(n, v)
		if err != nil {
			return 0, fmt.Errorf("register %q: source %s: %w", name, source, err)
		}
		storage = orDefault(mv.StorageLocation, mv.Source)
	}
	if runID != "" && !runIDPattern.MatchString(runID) {
		return 0, fmt.Errorf("register %q: invalid run id %q", name, runID)
	}

	unlock, err := s.lock("registry")
	if err != nil {
		return 0, err
	}
	defer unlock()
	if err := s.ensureModel(name); err != nil {
		return 0, err
	}
	nums, err := s.versionNumbers(name)
	if err != nil {
		return 0, fmt.Errorf("register %q: %w", name, err)
	}
	next := 1
	if len(nums) > 0 {
		next = nums[len(nums)-1] + 1
	}
	for range 100 {
		now := nowMillis()
		data, err := yEncode(yMap(map[string]*yaml.Node{
			"aliases":                yList(),
			"creation_timestamp":     yInt(now),
			"current_stage":          yStr(stageNone),
			"description":            yNull(),
			"last_updated_timestamp": yInt(now),
			"name":                   yStr(name),
			"run_id":                 yOptStr(runID),
			"run_link":               yNull(),
			"source":                 yStr(source),
			"status":                 yStr(versionReady),
			"status_message":         yNull(),
			"storage_location":       yStr(storage),
			"user_id":                yNull(),
			"version":                yInt(int64(next)),
		}))
		if err != nil {
			return 0, err
		}
		dst := filepath.Join(s.modelDir(name), versionPrefix+strconv.Itoa(next))
		err = s.publishDir(dst, func(dir string) error { return writeIn(dir, metaFile, data) })
		if errors.Is(err, fs.ErrExist) {
			next++ // taken by a writer that does not use our lock (MLflow itself)
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("register %q version %d: %w", name, next, err)
		}
		if err := s.touchModel(name); err != nil {
			return 0, fmt.Errorf("register %q version %d: %w", name, next, err)
		}
		return next, nil
	}
	return 0, fmt.Errorf("register %q: no free version number", name)
}

// modelVersion reads models/<name>/version-<v>/meta.yaml (aliases not set).
// A missing or deleted version is an error wrapping ErrNotFound.
func (s *Store) modelVersion(name string, v int) (*ModelVersion, error) {
	if err := s.checkModel(name); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.modelDir(name), versionPrefix+strconv.Itoa(v))
	p := filepath.Join(dir, metaFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		if isDir(dir) {
			return nil, fmt.Errorf("model %q version %d: %s is missing", name, v, p)
		}
		return nil, fmt.Errorf("model %q version %d: %w", name, v, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	mv, err := parseVersionMeta(p, name, v, data)
	if err != nil {
		return nil, err
	}
	if mv.Stage == stageDeletedInternal {
		return nil, fmt.Errorf("model %q version %d: %w (deleted)", name, v, ErrNotFound)
	}
	return mv, nil
}

func parseVersionMeta(p, name string, v int, data []byte) (*ModelVersion, error) {
	d, err := parseYAMLMap(p, data)
	if err != nil {
		return nil, err
	}
	mv := &ModelVersion{Name: name}
	ver, err := d.requireInt("version")
	if err != nil {
		// MLflow also writes the version as a string in some paths.
		vs, serr := d.str("version")
		if serr != nil || vs == "" {
			return nil, err
		}
		if ver, err = strconv.ParseInt(vs, 10, 64); err != nil {
			return nil, fmt.Errorf("%s: version %q is not a number", p, vs)
		}
	}
	if ver != int64(v) {
		return nil, fmt.Errorf("%s: version %d is not the folder's version %d", p, ver, v)
	}
	mv.Version = v
	created, err := d.requireInt("creation_timestamp")
	if err != nil {
		return nil, err
	}
	mv.Created = msTime(created)
	if u, ok, err := d.int("last_updated_timestamp"); err != nil {
		return nil, err
	} else if ok {
		mv.Updated = msTime(u)
	}
	for key, dst := range map[string]*string{
		"current_stage": &mv.Stage, "source": &mv.Source, "storage_location": &mv.StorageLocation,
		"run_id": &mv.RunID, "status": &mv.Status, "description": &mv.Description,
	} {
		if *dst, err = d.str(key); err != nil {
			return nil, err
		}
	}
	return mv, nil
}

// ModelVersions lists a registered model's versions, oldest first, each with
// its aliases. Deleted versions are left out.
func (s *Store) ModelVersions(name string) ([]ModelVersion, error) {
	if err := s.checkModel(name); err != nil {
		return nil, err
	}
	nums, err := s.versionNumbers(name)
	if err != nil {
		return nil, err
	}
	aliases, err := s.aliases(name)
	if err != nil {
		return nil, err
	}
	byVersion := map[int][]string{}
	for a, v := range aliases {
		byVersion[v] = append(byVersion[v], a)
	}
	var out []ModelVersion
	for _, n := range nums {
		mv, err := s.modelVersion(name, n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		mv.Aliases = byVersion[n]
		sort.Strings(mv.Aliases)
		out = append(out, *mv)
	}
	return out, nil
}

// aliases reads models/<name>/aliases/: alias -> version. Each file must
// hold exactly a version number, with no newline.
func (s *Store) aliases(name string) (map[string]int, error) {
	dir := filepath.Join(s.modelDir(name), aliasesDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".stage-") {
			continue
		}
		v, err := readAliasFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = v
	}
	return out, nil
}

func readAliasFile(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(string(b))
	if err != nil || v < 1 || strconv.Itoa(v) != string(b) {
		return 0, fmt.Errorf("alias file %s is corrupt: %q is not a version number (exactly the digits, no newline)", p, b)
	}
	return v, nil
}

// SetAlias points alias at an existing version of the registered model,
// replacing the file atomically. The file holds just the version number.
func (s *Store) SetAlias(name, alias string, version int) error {
	if err := validateModelName(name); err != nil {
		return err
	}
	if err := validateAlias(alias); err != nil {
		return err
	}
	unlock, err := s.lock("registry")
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.modelVersion(name, version); err != nil {
		return fmt.Errorf("set alias %q: %w", alias, err)
	}
	p := filepath.Join(s.modelDir(name), aliasesDir, alias)
	if err := s.writeFile(p, []byte(strconv.Itoa(version))); err != nil {
		return fmt.Errorf("set alias %q: %w", alias, err)
	}
	return s.touchModel(name)
}

// DeleteAlias removes an alias. Like MLflow, removing an alias that does not
// exist is not an error; an unknown model is.
func (s *Store) DeleteAlias(name, alias string) error {
	if err := validateAlias(alias); err != nil {
		return err
	}
	unlock, err := s.lock("registry")
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.checkModel(name); err != nil {
		return err
	}
	err = os.Remove(filepath.Join(s.modelDir(name), aliasesDir, alias))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete alias %q: %w", alias, err)
	}
	syncDir(filepath.Join(s.modelDir(name), aliasesDir))
	return s.touchModel(name)
}

// Alias returns the version an alias points to. An unknown model or alias,
// or an alias pointing to a version that no longer exists, is an error
// wrapping ErrNotFound.
func (s *Store) Alias(name, alias string) (int, error) {
	if err := validateAlias(alias); err != nil {
		return 0, err
	}
	if err := s.checkModel(name); err != nil {
		return 0, err
	}
	v, err := readAliasFile(filepath.Join(s.modelDir(name), aliasesDir, alias))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("model %q has no alias %q: %w", name, alias, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	if _, err := s.modelVersion(name, v); err != nil {
		return 0, fmt.Errorf("alias %q of model %q points to version %d: %w", alias, name, v, err)
	}
	return v, nil
}

// latestVersion is the highest version (among those in stage, if stage is
// not empty, compared without case).
func (s *Store) latestVersion(name, stage string) (int, error) {
	vs, err := s.ModelVersions(name)
	if err != nil {
		return 0, err
	}
	best := 0
	for _, v := range vs {
		if (stage == "" || strings.EqualFold(v.Stage, stage)) && v.Version > best {
			best = v.Version
		}
	}
	if best == 0 {
		if stage != "" {
			return 0, fmt.Errorf("model %q has no version in stage %q: %w", name, stage, ErrNotFound)
		}
		return 0, fmt.Errorf("model %q has no versions: %w", name, ErrNotFound)
	}
	return best, nil
}
