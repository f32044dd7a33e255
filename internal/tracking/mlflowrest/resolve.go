package mlflowrest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"petbreed/internal/tracking"
)

// DefaultCacheDir is where resolved models are downloaded:
// $PETBREED_CACHE/models, else the user's cache folder's petbreed/models.
func DefaultCacheDir() string {
	if d := os.Getenv("PETBREED_CACHE"); d != "" {
		return filepath.Join(d, "models")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "petbreed", "models")
	}
	return filepath.Join(os.TempDir(), "petbreed-cache", "models")
}

// manifestFile describes a cache entry: the ONNX file's name, size and
// sha256, and where it came from. It is written last, so an entry without
// one is incomplete.
const manifestFile = "petbreed-cache.json"

type manifest struct {
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Source string `json:"source"`
}

// Resolve turns a model URI into the model it names now, downloaded into
// the local cache:
//
//	models:/NAME@ALIAS, models:/NAME/VERSION, models:/NAME/latest,
//	models:/NAME/STAGE   a registered version (the registry's answer)
//	runs:/RUN/PATH        a run's artifact (a model folder or an ONNX file)
//	file:... or a path    a local file, as it is
//
// The model is cached under its location on the server, which a version
// names for good (see cached). An entry is reused after its ONNX file's size and sha256 are checked against
// its manifest; a corrupt or incomplete entry is downloaded again. Entries
// are assembled in a temporary folder and renamed into place, so a killed
// download leaves nothing half-written in use.
func (c *Client) Resolve(uri string) (tracking.ModelRef, error) {
	ref := tracking.ModelRef{URI: uri}
	switch {
	case strings.HasPrefix(uri, "models:"):
		mu, err := tracking.ParseModelsURI(uri)
		if err != nil {
			return ref, err
		}
		mv, err := c.findVersion(mu)
		if err != nil {
			return ref, fmt.Errorf("resolve %s: %w", uri, err)
		}
		v, _ := strconv.Atoi(mv.Version)
		ref.Name, ref.Version, ref.Alias, ref.RunID = mu.Name, v, mu.Alias, mv.RunID
		loc, err := c.versionLocation(mv)
		if err != nil {
			return tracking.ModelRef{URI: uri}, fmt.Errorf("resolve %s: %w", uri, err)
		}
		p, err := c.cached(loc)
		if err != nil {
			return tracking.ModelRef{URI: uri}, fmt.Errorf("resolve %s: %w", uri, err)
		}
		ref.Path = p
		return ref, nil
	case strings.HasPrefix(uri, "runs:"):
		id, rel, err := tracking.ParseRunsURI(uri)
		if err != nil {
			return ref, err
		}
		base, err := c.artifactBase(id)
		if err != nil {
			return ref, fmt.Errorf("resolve %s: %w", uri, err)
		}
		loc := base
		if rel != "" {
			loc += "/" + rel
		}
		p, err := c.cached(loc)
		if err != nil {
			return tracking.ModelRef{URI: uri}, fmt.Errorf("resolve %s: %w", uri, err)
		}
		ref.RunID, ref.Path = id, p
		return ref, nil
	case strings.HasPrefix(uri, "file:"):
		p := tracking.LocalPath(uri)
		if p == uri {
			return ref, fmt.Errorf("resolve %s: not a local file URI", uri)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return ref, fmt.Errorf("resolve %s: %w", uri, err)
		}
		if fi.IsDir() {
			if p, err = tracking.ModelFile(p); err != nil {
				return ref, fmt.Errorf("resolve %s: %w", uri, err)
			}
		}
		ref.Path = p
		return ref, nil
	case strings.Contains(uri, ":/"):
		return ref, fmt.Errorf("resolve %s: unsupported URI scheme (want models:/, runs:/, file: or a path)", uri)
	}
	ref.Path = uri
	return ref, nil
}

// entryName is a cache entry's folder for a location: one path component,
// its hash (locations nest: a folder and a file in it) and its last part.
func entryName(loc string) string {
	h := sha256.Sum256([]byte(loc))
	return hex.EncodeToString(h[:12]) + "-" + serverDir(path.Base(loc))
}

func (c *Client) findVersion(mu tracking.ModelsURI) (*modelVersionJSON, error) {
	switch {
	case mu.Alias != "":
		return c.aliasVersion(mu.Name, mu.Alias)
	case mu.Version > 0:
		var got struct {
			ModelVersion modelVersionJSON `json:"model_version"`
		}
		err := c.get(apiPrefix+"model-versions/get", url.Values{"name": {mu.Name}, "version": {strconv.Itoa(mu.Version)}}, &got)
		if err != nil {
			return nil, err
		}
		return &got.ModelVersion, nil
	}
	vs, err := c.searchVersions(mu.Name)
	if err != nil {
		return nil, err
	}
	var best *modelVersionJSON
	bestN := 0
	for i := range vs {
		n, err := strconv.Atoi(vs[i].Version)
		if err != nil || (mu.Stage != "" && !strings.EqualFold(vs[i].CurrentStage, mu.Stage)) {
			continue
		}
		if n > bestN {
			best, bestN = &vs[i], n
		}
	}
	if best == nil {
		if _, err := c.registeredModel(mu.Name); err != nil {
			return nil, err
		}
		if mu.Stage != "" {
			return nil, fmt.Errorf("model %q has no version in stage %q: %w", mu.Name, mu.Stage, tracking.ErrNotFound)
		}
		return nil, fmt.Errorf("model %q has no versions: %w", mu.Name, tracking.ErrNotFound)
	}
	return best, nil
}

// versionLocation is the proxy path of a version's model: its source when
// that is an mlflow-artifacts: URI, a runs:/ source through its run, else
// the server's download URI for it.
func (c *Client) versionLocation(mv *modelVersionJSON) (string, error) {
	src := mv.Source
	if strings.HasPrefix(src, "runs:") {
		id, rel, err := tracking.ParseRunsURI(src)
		if err != nil {
			return "", err
		}
		base, err := c.artifactBase(id)
		if err != nil {
			return "", err
		}
		if rel != "" {
			base += "/" + rel
		}
		return base, nil
	}
	if !strings.HasPrefix(src, "mlflow-artifacts:") {
		var got struct {
			URI string `json:"artifact_uri"`
		}
		err := c.get(apiPrefix+"model-versions/get-download-uri", url.Values{"name": {mv.Name}, "version": {mv.Version}}, &got)
		if err != nil {
			return "", err
		}
		src = got.URI
	}
	return proxyPath(src)
}

// cached is the local ONNX file of the model at loc (a proxy path), from
// its cache entry when that is whole, else downloaded into it. Entries are
// keyed by the server and the model's location, which a registered version
// names for good: models:/NAME/N, models:/NAME@ALIAS while it points to N,
// and runs:/RUN/model of N's run all share one entry.
func (c *Client) cached(loc string) (string, error) {
	if err := tracking.ValidateArtifactPath(loc); err != nil {
		return "", fmt.Errorf("model location: %w", err)
	}
	root := filepath.Join(c.opt.CacheDir, serverDir(c.base.Host+c.base.Path))
	dir := filepath.Join(root, entryName(loc))
	if p, ok := checkEntry(dir); ok {
		touch(dir)
		return p, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("model cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return "", fmt.Errorf("model cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := c.fetchModel(loc, tmp); err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err == nil {
		// A corrupt or incomplete entry: moved aside, then removed.
		old := tmp + ".old"
		if err := os.Rename(dir, old); err == nil {
			os.RemoveAll(old)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process put a whole entry there first: use it.
		if p, ok := checkEntry(dir); ok {
			return p, nil
		}
		return "", fmt.Errorf("model cache: %w", err)
	}
	p, ok := checkEntry(dir)
	if !ok {
		return "", fmt.Errorf("model cache: %s does not check after download", dir)
	}
	evict(c.opt.CacheDir, c.opt.CacheMaxBytes, dir)
	return p, nil
}

// serverDir names a server's cache folder after its host and path.
func serverDir(hostPath string) string {
	var b strings.Builder
	for _, r := range hostPath {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// checkEntry verifies a cache entry: its manifest, and its ONNX file's size
// and sha256.
func checkEntry(dir string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return "", false
	}
	var m manifest
	if json.Unmarshal(b, &m) != nil || m.File == "" || tracking.ValidateArtifactPath(m.File) != nil {
		return "", false
	}
	p := filepath.Join(dir, filepath.FromSlash(m.File))
	f, err := os.Open(p)
	if err != nil {
		return "", false
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil || n != m.Size || hex.EncodeToString(h.Sum(nil)) != m.SHA256 {
		return "", false
	}
	return p, true
}

// fetchModel downloads the model at loc into dir: for an MLflow model
// folder, its MLmodel and the ONNX file it names (or its only *.onnx file);
// for a file, the file. The manifest is written last.
func (c *Client) fetchModel(loc, dir string) error {
	file := ""
	mlmodel, err := c.readSmall(loc + "/" + tracking.MLmodelFile)
	switch {
	case err == nil:
		if err := os.WriteFile(filepath.Join(dir, tracking.MLmodelFile), mlmodel, 0o644); err != nil {
			return err
		}
		name, err := tracking.ONNXDataName(mlmodel)
		if err != nil {
			return fmt.Errorf("%s: %w", loc, err)
		}
		if name != "" {
			file = name
			break
		}
		fallthrough
	case isMissing(err):
		ents, lerr := c.listProxy(loc)
		if lerr != nil {
			return lerr
		}
		var onnx []string
		for _, e := range ents {
			if !e.IsDir && strings.EqualFold(path.Ext(e.Path), ".onnx") {
				onnx = append(onnx, path.Base(e.Path))
			}
		}
		switch {
		case len(onnx) == 1:
			file = onnx[0]
		case len(onnx) > 1:
			return fmt.Errorf("%s holds %d *.onnx files and no MLmodel onnx flavor to choose one", loc, len(onnx))
		case len(ents) == 0 && strings.EqualFold(path.Ext(loc), ".onnx"):
			// loc is the ONNX file itself.
			return c.fetchFile(loc, dir, path.Base(loc), loc)
		default:
			return fmt.Errorf("%s holds no ONNX model (no MLmodel onnx flavor and no *.onnx file): %w", loc, tracking.ErrNotFound)
		}
	default:
		return err
	}
	return c.fetchFile(loc+"/"+file, dir, file, loc)
}

func (c *Client) fetchFile(src, dir, name, source string) error {
	rc, err := c.download(src)
	if err != nil {
		if isMissing(err) {
			return fmt.Errorf("%s: %w", src, tracking.ErrNotFound)
		}
		return err
	}
	defer rc.Close()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", src, err)
	}
	m, _ := json.Marshal(manifest{File: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Source: "mlflow-artifacts:/" + source})
	return os.WriteFile(filepath.Join(dir, manifestFile), m, 0o644)
}

// readSmall downloads a small file (an MLmodel) whole, up to 1 MiB.
func (c *Client) readSmall(proxyPath string) ([]byte, error) {
	rc, err := c.download(proxyPath)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("%s is larger than 1 MiB", proxyPath)
	}
	return b, nil
}

// isMissing: the proxy answers a missing file with 404 or 500.
func isMissing(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == 404 || ae.Status == 500)
}

// listProxy lists a folder of the artifact proxy (paths relative to it).
func (c *Client) listProxy(dir string) ([]tracking.ArtifactEntry, error) {
	var got struct {
		Files []fileInfoJSON `json:"files"`
	}
	if err := c.get("/api/2.0/mlflow-artifacts/artifacts", url.Values{"path": {dir}}, &got); err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	out := make([]tracking.ArtifactEntry, 0, len(got.Files))
	for _, f := range got.Files {
		out = append(out, tracking.ArtifactEntry{Path: f.Path, IsDir: f.IsDir, Size: int64(f.FileSize)})
	}
	return out, nil
}
