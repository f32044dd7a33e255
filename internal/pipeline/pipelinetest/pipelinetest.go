// Package pipelinetest runs the real default pipeline on pets-3breeds once
// per test binary, for the tests of the packages that serve its results
// (the server, the web page): a real champion model in a real MLflow store.
package pipelinetest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"petbreed/internal/pipeline"
	"petbreed/internal/testassets"
)

var (
	once sync.Once
	sum  *pipeline.Summary
	err  error
	dir  string
)

// Champion runs the pipeline the first time it is called in the process
// (about 5 s) and returns its summary: Tracking is the store's folder and
// ModelPath the registered champion's ONNX file. Treat the store as read
// only; copy it to change it. Without the shared assets the test is skipped.
// Call Cleanup from TestMain to remove the files.
func Champion(tb testing.TB) *pipeline.Summary {
	tb.Helper()
	data := testassets.Path(tb, "pets-3breeds")
	backbone := testassets.Path(tb, "backbone", "mobilenetv2-12-int8.onnx")
	once.Do(func() {
		if dir, err = os.MkdirTemp("", "petbreed-pipelinetest-"); err != nil {
			return
		}
		sum, err = pipeline.Run(context.Background(), pipeline.Options{
			Data: data, Backbone: backbone, Config: pipeline.DefaultConfig(),
			Tracking: filepath.Join(dir, "mlruns"), CacheDir: filepath.Join(dir, "cache"),
		})
	})
	if err != nil {
		tb.Fatalf("pipeline: %v", err)
	}
	return sum
}

// Cleanup removes what Champion wrote; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
