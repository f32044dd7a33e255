package backend

import (
	"path/filepath"
	"strings"
	"testing"

	"petbreed/internal/tracking"
	"petbreed/internal/tracking/mlflowrest"
)

func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mlruns")
	for _, tc := range []struct {
		uri     string
		want    string // "file", "rest" or an error's text
		envName string
		envVal  string
	}{
		{dir, "file", "", ""},
		{"file://" + dir, "file", "", ""},
		{"http://127.0.0.1:1", "rest", "", ""},
		{"HTTPS://mlflow.example:443/prefix", "rest", "", ""},
		{"ftp://host/x", "only local file stores", "", ""},
		{"http://127.0.0.1:1", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_TIMEOUT", "soon"},
		{"http://u:p@127.0.0.1:1", "credentials", "", ""},
	} {
		if tc.envName != "" {
			t.Setenv(tc.envName, tc.envVal)
		}
		b, err := Open(tc.uri)
		switch tc.want {
		case "file":
			if _, ok := b.(*tracking.Store); !ok || err != nil {
				t.Errorf("Open(%q) = %T, %v; want a file store", tc.uri, b, err)
			}
		case "rest":
			if _, ok := b.(*mlflowrest.Client); !ok || err != nil {
				t.Errorf("Open(%q) = %T, %v; want the REST client", tc.uri, b, err)
			}
		default:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q) error %v, want one saying %q", tc.uri, err, tc.want)
			}
		}
		if tc.envName != "" {
			t.Setenv(tc.envName, "")
		}
	}
}
