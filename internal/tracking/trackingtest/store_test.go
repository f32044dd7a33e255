package trackingtest

import (
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"testing"

	"petbreed/internal/tracking"
)

// TestAgreesWithFileStore: the fake answers as the file store does for the
// same artifacts, registry and missing things, so that a test passing on
// the fake means the same against the real store.
func TestAgreesWithFileStore(t *testing.T) {
	real, err := tracking.Open(filepath.Join(t.TempDir(), "mlruns"))
	if err != nil {
		t.Fatal(err)
	}
	expID, err := real.Experiment("e")
	if err != nil {
		t.Fatal(err)
	}
	run, err := real.StartRun(expID, "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	fake := &Store{}
	fake.AddExperiment(expID, "e")
	fake.AddRun(tracking.RunInfo{ID: run.ID, ExperimentID: expID})
	for p, data := range map[string]string{
		tracking.ArtifactClassLabels:   `{"classes": []}`,
		tracking.ArtifactReport("val"): `{}`,
		tracking.ArtifactLossPlot:      "png",
		"a/b/c.txt":                    "deep",
	} {
		if err := run.LogArtifact(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
		fake.AddArtifact(run.ID, p, []byte(data))
	}
	v, err := real.CreateModelVersion("m", "runs:/"+run.ID+"/plots", "")
	if err != nil {
		t.Fatal(err)
	}
	fake.AddVersion("m", run.ID, "unused")
	for _, st := range []tracking.Registry{real, fake} {
		if err := st.SetAlias("m", tracking.ChampionAlias, v); err != nil {
			t.Fatal(err)
		}
	}

	for _, dir := range []string{"", "a", "a/b", "reports", "nope"} {
		r, err1 := real.ListArtifacts(run.ID, dir)
		f, err2 := fake.ListArtifacts(run.ID, dir)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(r, f) {
			t.Errorf("ListArtifacts(%q): file store %+v %v, fake %+v %v", dir, r, err1, f, err2)
		}
	}
	for _, st := range []tracking.Browser{real, fake} {
		name := reflect.TypeOf(st).String()
		rc, err := st.OpenArtifact(run.ID, "a/b/c.txt")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != "deep" {
			t.Errorf("%s: read %q", name, b)
		}
		if _, err := st.OpenArtifact(run.ID, tracking.ArtifactReport("test")); !errors.Is(err, tracking.ErrNotFound) {
			t.Errorf("%s: missing artifact: %v", name, err)
		}
		if _, err := st.GetRun("ffffffffffffffffffffffffffffffff"); !errors.Is(err, tracking.ErrNotFound) {
			t.Errorf("%s: missing run: %v", name, err)
		}
		if _, err := st.ModelVersions("nope"); !errors.Is(err, tracking.ErrNotFound) {
			t.Errorf("%s: missing model: %v", name, err)
		}
		if _, err := st.Alias("m", "nope"); !errors.Is(err, tracking.ErrNotFound) {
			t.Errorf("%s: missing alias: %v", name, err)
		}
		if got, err := st.Alias("m", tracking.ChampionAlias); err != nil || got != v {
			t.Errorf("%s: alias = %d, %v", name, got, err)
		}
		vs, err := st.ModelVersions("m")
		if err != nil || len(vs) != 1 || vs[0].Version != 1 || vs[0].RunID != run.ID || !reflect.DeepEqual(vs[0].Aliases, []string{tracking.ChampionAlias}) {
			t.Errorf("%s: versions %+v, %v", name, vs, err)
		}
		ref, err := st.Resolve("models:/m@nope")
		if !errors.Is(err, tracking.ErrNotFound) || ref.Path != "" {
			t.Errorf("%s: resolve a missing alias: %+v, %v", name, ref, err)
		}
	}
}
