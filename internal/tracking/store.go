package tracking

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"petbreed/internal/atomicfile"
)

// ErrNotFound is wrapped by every error about an experiment, run, metric,
// registered model, version or alias that does not exist.
var ErrNotFound = errors.New("not found")

// Folder and file names of MLflow's file store.
const (
	metaFile          = "meta.yaml"
	trashDir          = ".trash"
	modelsDir         = "models"
	metricsDir        = "metrics"
	paramsDir         = "params"
	tagsDir           = "tags"
	artifactsDir      = "artifacts"
	aliasesDir        = "aliases"
	defaultExpID      = "0"
	defaultExpName    = "Default"
	lifecycleActive   = "active"
	lifecycleDeleted  = "deleted"
	defaultStoreDir   = "mlruns"
	stagingKeepAround = 24 * time.Hour
)

// stagingDir is where files and folders are assembled before being renamed
// into place. MLflow's tracking store ignores every root folder whose name
// ends in ".trash" (FileStore._get_active_experiments), so this folder is
// invisible to it, and it is on the same file system as the store, so a
// rename out of it is atomic.
const stagingDir = ".petbreed-staging.trash"

// reservedExperimentFolders are the sub-folders of an experiment that are
// not runs (FileStore.RESERVED_EXPERIMENT_FOLDERS).
var reservedExperimentFolders = map[string]bool{"tags": true, "datasets": true, "traces": true}

// Store is an MLflow file store (tracking and model registry) rooted at one
// folder. A Store holds no mutable state: it is safe for concurrent use, and
// several processes may use the same root at once.
type Store struct {
	root    string // absolute path
	rootURI string // file:// URI of root, as MLflow writes it
	staging string
}

// Open opens, and creates if needed, the file store at uri: "" (./mlruns),
// "file:///abs/path", "file:rel/path" or a plain path. The root is made
// absolute. A new store gets MLflow's "Default" experiment with id "0", as
// MLflow's own FileStore does.
func Open(uri string) (*Store, error) {
	p, err := storePath(uri)
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("tracking store %q: %w", uri, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("tracking store: %w", err)
	}
	s := &Store{root: root, rootURI: pathToFileURI(root), staging: filepath.Join(root, stagingDir)}
	if err := os.MkdirAll(s.staging, 0o755); err != nil {
		return nil, fmt.Errorf("tracking store: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, trashDir), 0o755); err != nil {
		return nil, fmt.Errorf("tracking store: %w", err)
	}
	s.cleanStaging()
	if err := s.ensureDefaultExperiment(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root is the absolute path of the store's folder.
func (s *Store) Root() string { return s.root }

// URI is the store's root as a file:// URI, the form to give MLflow
// (mlflow ui --backend-store-uri <URI>).
func (s *Store) URI() string { return s.rootURI }

var schemePattern = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.\-]*):`)

// uriScheme returns the lower-cased scheme of u, or "" for a plain path
// (a single letter before ':' is a Windows drive, not a scheme).
func uriScheme(u string) string {
	m := schemePattern.FindStringSubmatch(u)
	if m == nil || len(m[1]) < 2 {
		return ""
	}
	return strings.ToLower(m[1])
}

func storePath(uri string) (string, error) {
	switch uriScheme(uri) {
	case "":
		if uri == "" {
			return defaultStoreDir, nil
		}
		return uri, nil
	case "file":
		return fileURIToPath(uri)
	default:
		return "", fmt.Errorf("tracking store %q: only local file stores are supported (a path or a file: URI)", uri)
	}
}

// fileURIToPath is MLflow's local_file_uri_to_path: "file:///abs",
// "file://localhost/abs", "file:/abs" and "file:rel" give the
// percent-decoded path.
func fileURIToPath(uri string) (string, error) {
	if uriScheme(uri) != "file" {
		return "", fmt.Errorf("%q is not a file: URI", uri)
	}
	rest := uri[len("file:"):]
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		host, p, _ := strings.Cut(rest, "/")
		if host != "" && !strings.EqualFold(host, "localhost") {
			return "", fmt.Errorf("file URI %q names host %q: only local files are supported", uri, host)
		}
		rest = "/" + p
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	p, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("file URI %q: %w", uri, err)
	}
	if p == "" {
		return "", fmt.Errorf("file URI %q has no path", uri)
	}
	return filepath.FromSlash(p), nil
}

// FileURI is the file:// URI MLflow writes for an absolute local path
// (percent-encoded), e.g. to register a model folder as a version's source.
func FileURI(absPath string) string { return pathToFileURI(absPath) }

// pathToFileURI is MLflow's path_to_local_file_uri (pathlib's as_uri):
// "file://" and the absolute path, percent-encoded by quotePath.
func pathToFileURI(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return "file://" + quotePath(p)
}

// quotePath is Python's urllib.parse.quote(p, safe="/"): every byte outside
// [A-Za-z0-9_.~/-] percent-encoded.
func quotePath(p string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// localPath turns a location MLflow recorded (a file: URI or an absolute
// path) into a local path.
func localPath(loc string) (string, error) {
	switch uriScheme(loc) {
	case "file":
		return fileURIToPath(loc)
	case "":
		if filepath.IsAbs(loc) {
			return loc, nil
		}
		return "", fmt.Errorf("location %q is not absolute", loc)
	default:
		return "", fmt.Errorf("location %q is not on the local file system", loc)
	}
}

// appendURIPath is MLflow's append_to_uri_path for the simple case; the
// parts are percent-encoded, as a file: URI needs.
func appendURIPath(base string, parts ...string) string {
	out := strings.TrimRight(base, "/")
	for _, p := range parts {
		if p = strings.Trim(p, "/"); p != "" {
			out += "/" + quotePath(p)
		}
	}
	return out
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// --- crash-safe placement of files and folders ---

// stage writes a complete file under dir (with atomicfile) and returns its
// path; the caller renames or links it into place.
func stage(dir string, perm os.FileMode, write func(io.Writer) error) (string, error) {
	p := filepath.Join(dir, ".stage-"+randHex(12))
	if err := atomicfile.Write(p, perm, write); err != nil {
		return "", err
	}
	return p, nil
}

// place puts the output of write at dst through a staged file, with rename
// (replace) or link (exclusive create). Files are staged in the store's
// staging folder so that MLflow, which lists every file under params/,
// tags/, aliases/ and artifacts/, never sees a temporary file there; when
// dst is on another file system, the file is staged next to it instead.
func (s *Store) place(dst string, exclusive bool, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	op := os.Rename
	if exclusive {
		op = os.Link
	}
	for _, dir := range []string{s.staging, filepath.Dir(dst)} {
		tmp, err := stage(dir, 0o644, write)
		if err != nil {
			return err
		}
		err = op(tmp, dst)
		if exclusive && err != nil && linkUnsupported(err) {
			// No hard links on this file system: check, then rename. The
			// content is still atomic; only two racing creators can both win.
			if exists(dst) {
				err = fs.ErrExist
			} else {
				err = os.Rename(tmp, dst)
			}
		}
		os.Remove(tmp) // the staged name is gone after a rename
		if errors.Is(err, syscall.EXDEV) {
			continue
		}
		if err != nil {
			return placeErr(dst, err)
		}
		syncDir(filepath.Dir(dst))
		return nil
	}
	return fmt.Errorf("write %s: cannot stage the file on its file system", dst)
}

func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP)
}

func placeErr(dst string, err error) error {
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("write %s: %w", dst, fs.ErrExist)
	}
	return fmt.Errorf("write %s: %w", dst, err)
}

// writeFile replaces dst with data atomically.
func (s *Store) writeFile(dst string, data []byte) error {
	return s.place(dst, false, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// createFile creates dst with data only if dst does not exist yet; the
// error wraps fs.ErrExist when it does. The file appears whole or not at all.
func (s *Store) createFile(dst string, data []byte) error {
	return s.place(dst, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// publishDir assembles a folder in the staging area with build, then renames
// it to dst, which must not exist (or be an empty folder). The error wraps
// fs.ErrExist when dst is already a non-empty folder. MLflow therefore sees
// the folder either complete, with its meta.yaml, or not at all.
func (s *Store) publishDir(dst string, build func(dir string) error) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	for _, stageIn := range []string{s.staging, filepath.Dir(dst)} {
		tmp := filepath.Join(stageIn, ".dir-"+randHex(12))
		if err := os.Mkdir(tmp, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dst, err)
		}
		if err := build(tmp); err != nil {
			os.RemoveAll(tmp)
			return err
		}
		err := os.Rename(tmp, dst)
		if err != nil {
			os.RemoveAll(tmp)
		}
		if errors.Is(err, syscall.EXDEV) {
			continue // dst is on another file system: assemble next to it
		}
		if err != nil {
			return placeErr(dst, err)
		}
		syncDir(filepath.Dir(dst))
		return nil
	}
	return fmt.Errorf("create %s: cannot assemble the folder on its file system", dst)
}

// writeIn writes a file inside a folder being assembled by publishDir.
func writeIn(dir, rel string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, data, 0o644)
}

// syncDir makes a rename into dir durable; best effort.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// cleanStaging removes what crashed writers left in the staging folder.
// Only old entries go: another process may be staging right now.
func (s *Store) cleanStaging() {
	ents, err := os.ReadDir(s.staging)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".stage-") && !strings.HasPrefix(e.Name(), ".dir-") && !strings.Contains(e.Name(), ".tmp-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > stagingKeepAround {
			os.RemoveAll(filepath.Join(s.staging, e.Name()))
		}
	}
}

// lock takes an exclusive lock shared by every process using the store
// (flock on a file in the staging folder; released if the process dies).
func (s *Store) lock(name string) (unlock func(), err error) {
	return lockFile(filepath.Join(s.staging, name+".lock"))
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
