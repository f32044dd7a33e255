package mlflowserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestStartStopRestart runs the real server on both backends: it answers,
// creates an experiment, keeps it across a kill and a restart, and is gone
// after Stop.
func TestStartStopRestart(t *testing.T) {
	for _, backend := range []string{"sqlite", "file"} {
		t.Run(backend, func(t *testing.T) {
			s := Start(t, backend)
			if !s.Healthy() {
				t.Fatalf("not healthy after Start:\n%s", s.Log())
			}
			r, err := http.Post(s.URL+"/api/2.0/mlflow/experiments/create", "application/json",
				strings.NewReader(`{"name":"harness"}`))
			if err != nil {
				t.Fatal(err)
			}
			var created struct {
				ExperimentID string `json:"experiment_id"`
			}
			err = json.NewDecoder(r.Body).Decode(&created)
			r.Body.Close()
			if err != nil || r.StatusCode != 200 || created.ExperimentID == "" {
				t.Fatalf("create experiment: %d %v %+v", r.StatusCode, err, created)
			}
			s.Kill()
			if s.Healthy() {
				t.Fatal("healthy after Kill")
			}
			s.Restart(t)
			r, err = http.Get(s.URL + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=harness")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != 200 {
				t.Fatalf("experiment lost across a restart: %d", r.StatusCode)
			}
			s.Stop()
			if s.Healthy() {
				t.Fatal("healthy after Stop")
			}
		})
	}
}
