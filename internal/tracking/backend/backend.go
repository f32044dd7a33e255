// Package backend opens the tracking backend a tracking URI names: MLflow's
// file store for a path or a file: URI (tracking.Open), an MLflow tracking
// server's REST API for http:// and https:// (mlflowrest, configured from
// MLflow's environment variables).
package backend

import (
	"fmt"
	"strings"

	"petbreed/internal/tracking"
	"petbreed/internal/tracking/mlflowrest"
)

// Open opens the backend at uri ("" is ./mlruns). A server is not contacted
// until the first call.
func Open(uri string) (tracking.Backend, error) {
	if IsRemote(uri) {
		opt, err := mlflowrest.OptionsFromEnv()
		if err != nil {
			return nil, fmt.Errorf("tracking server %s: %w", uri, err)
		}
		c, err := mlflowrest.New(uri, opt)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	s, err := tracking.Open(uri)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// IsRemote reports whether uri names a tracking server (http:// or
// https://) rather than a file store.
func IsRemote(uri string) bool {
	l := strings.ToLower(uri)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// Check makes sure b can be used now: a server is asked for one
// experiment (mlflowrest.Client.Check); a file store was checked by Open.
func Check(b tracking.Backend) error {
	if c, ok := b.(interface{ Check() error }); ok {
		return c.Check()
	}
	return nil
}
