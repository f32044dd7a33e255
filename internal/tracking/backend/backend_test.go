package backend

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// A server that is not there fails Check at once, in one line naming it.
func TestCheckServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uri := "http://" + l.Addr().String()
	l.Close()
	b, err := Open(uri)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = Check(b)
	if err == nil || !strings.Contains(err.Error(), uri) || strings.Contains(err.Error(), "\n") || time.Since(start) > time.Second {
		t.Errorf("Check of a server that is down: %v after %v", err, time.Since(start))
	}
	fs, err := Open(filepath.Join(t.TempDir(), "mlruns"))
	if err != nil || Check(fs) != nil {
		t.Errorf("a file store: %v, %v", err, Check(fs))
	}
}
