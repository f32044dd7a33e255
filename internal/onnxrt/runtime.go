// Package onnxrt runs ONNX models on the CPU with ONNX Runtime. It is the
// only package of petbreed that talks to ONNX Runtime (through
// github.com/yalue/onnxruntime_go, which loads the shared library with
// dlopen at run time, so building needs no ONNX Runtime).
//
// The library is process-wide state: it is loaded once, by Init with a path
// or by Load, which finds it (FindLibrary); Open calls Load if neither was
// called. A Session is one loaded model, safe for concurrent use:
//
//	s, err := onnxrt.Open("model.onnx", onnxrt.Options{})
//	...
//	defer s.Close()
//	outs, err := s.Run(pixels, []int64{1, 3, 224, 224})
//	logits := outs[0].Float32
package onnxrt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// EnvLibrary is the environment variable naming the ONNX Runtime shared
// library; when set it is the only place FindLibrary looks.
const EnvLibrary = "ONNXRUNTIME_LIB"

// libNames are the names the library may have beside the executable.
var libNames = []string{"libonnxruntime.so.1", "libonnxruntime.so"}

// repoLib is where `make onnxruntime` (scripts/onnxruntime.sh) puts the
// library, relative to the repository root.
var repoLib = filepath.Join("third_party", "onnxruntime", "libonnxruntime.so.1")

const howToGetLibrary = "run `make onnxruntime` in the petbreed repository, " +
	"or set " + EnvLibrary + " to the path of libonnxruntime.so.1"

// ErrLibraryNotFound is wrapped by FindLibrary's error.
var ErrLibraryNotFound = errors.New("ONNX Runtime library not found")

// FindLibrary returns the absolute path of the ONNX Runtime shared library.
// It looks, in order, at:
//
//   - $ONNXRUNTIME_LIB, a file path (when set, nowhere else);
//   - libonnxruntime.so.1, then libonnxruntime.so, in the directory of the
//     running executable (symlinks resolved);
//   - third_party/onnxruntime/libonnxruntime.so.1 in the executable's
//     directory and each of its parents, then in the working directory and
//     each of its parents.
//
// Its error says how to get the library and where it looked.
func FindLibrary() (string, error) {
	exeDir := ""
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		exeDir = filepath.Dir(exe)
	}
	wd, _ := os.Getwd()
	return findLibrary(os.Getenv(EnvLibrary), exeDir, wd)
}

// findLibrary is FindLibrary with its inputs explicit: the value of
// $ONNXRUNTIME_LIB, the executable's directory and the working directory
// (either may be "" when unknown).
func findLibrary(env, exeDir, workDir string) (string, error) {
	if env != "" {
		abs, err := filepath.Abs(env)
		if err == nil && isFile(abs) {
			return abs, nil
		}
		return "", fmt.Errorf("%w: %s=%s is not a file: %s", ErrLibraryNotFound, EnvLibrary, env, howToGetLibrary)
	}
	var looked []string
	if exeDir != "" {
		exeDir, _ = filepath.Abs(exeDir)
		for _, name := range libNames {
			if p := filepath.Join(exeDir, name); isFile(p) {
				return p, nil
			}
		}
		looked = append(looked, fmt.Sprintf("%s beside the executable in %s",
			strings.Join(libNames, " and "), exeDir))
	}
	var roots []string
	for _, start := range []string{exeDir, workDir} {
		if start == "" {
			continue
		}
		start, err := filepath.Abs(start)
		if err != nil {
			continue
		}
		for dir := start; ; {
			if p := filepath.Join(dir, repoLib); isFile(p) {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
		roots = append(roots, start)
	}
	if len(roots) > 0 {
		looked = append(looked, fmt.Sprintf("%s in %s and their parent directories",
			repoLib, strings.Join(roots, ", ")))
	}
	return "", fmt.Errorf("%w: %s (looked for %s)", ErrLibraryNotFound, howToGetLibrary,
		strings.Join(looked, "; "))
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// rt is the process-wide ONNX Runtime environment. onnxruntime_go keeps the
// loaded library and the environment in package variables, and an
// environment cannot be re-created with another library, so it is
// initialized at most once; a failed attempt can be retried.
var rt struct {
	mu      sync.Mutex
	path    string // library loaded, "" before a successful Init
	real    string // path with symlinks resolved, to compare paths
	version string
}

// Init loads the ONNX Runtime shared library at libPath and creates the
// process-wide environment, logging warnings and errors only. Calling it
// again with the same library does nothing; with another library it is an
// error, since a process can load only one.
func Init(libPath string) error {
	abs, err := filepath.Abs(libPath)
	if err != nil {
		return fmt.Errorf("onnxrt: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("onnxrt: ONNX Runtime library: %w (%s)", err, howToGetLibrary)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.path != "" {
		if rt.real == real {
			return nil
		}
		return fmt.Errorf("onnxrt: ONNX Runtime is already initialized with %s; cannot load %s too", rt.path, abs)
	}
	if !isFile(real) {
		return fmt.Errorf("onnxrt: ONNX Runtime library %s is not a regular file", abs)
	}
	ort.SetSharedLibraryPath(abs)
	if err := ort.InitializeEnvironment(ort.WithLogLevelWarning()); err != nil {
		return fmt.Errorf("onnxrt: initialize ONNX Runtime from %s: %w", abs, err)
	}
	rt.path, rt.real, rt.version = abs, real, ort.GetVersion()
	return nil
}

// Load initializes ONNX Runtime with the library FindLibrary finds, unless it
// is already initialized, and returns the path of the library in use.
func Load() (string, error) {
	rt.mu.Lock()
	path := rt.path
	rt.mu.Unlock()
	if path != "" {
		return path, nil
	}
	path, err := FindLibrary()
	if err != nil {
		return "", fmt.Errorf("onnxrt: %w", err)
	}
	if err := Init(path); err != nil {
		return "", err
	}
	return path, nil
}

// Version returns the version of the loaded ONNX Runtime ("1.30.0"), or ""
// before Init.
func Version() string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.version
}
