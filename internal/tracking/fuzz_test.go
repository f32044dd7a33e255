package tracking

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets feed the readers of MLflow's file store bytes as a hand
// edit, a crash of another writer or a hostile file could leave them: they
// must answer an error, never panic, and read back what the writers write.
// `make fuzz` (scripts/fuzz.sh) runs each; `go test` runs the seeds.

// FuzzRunMeta: a run's meta.yaml. What parses encodes and parses back to
// the same value.
func FuzzRunMeta(f *testing.F) {
	end := int64(1700000001000)
	good, err := runMeta{RunID: "abc", ExperimentID: "0", RunName: "run", UserID: "me", ArtifactURI: "file:///tmp/a",
		LifecycleStage: lifecycleActive, Status: Finished, StartTime: 1700000000000, EndTime: &end}.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("run_id: abc\nexperiment_id: 1\nuser_id: x\nstart_time: 0\nend_time: null\nstatus: 9\n"))
	f.Add([]byte("run_uuid: abc\nexperiment_id: '0'\nuser_id: ''\nstart_time: 1.5\nend_time:\n"))
	f.Add([]byte("run_id: abc\nexperiment_id: 0\nuser_id: u\nstart_time: 18446744073709551615\nend_time: 0\nlifecycle_stage: gone\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte("run_id: !!binary aGVsbG8=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseRunMeta("meta.yaml", "abc", data)
		if err != nil {
			return
		}
		enc, err := m.encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		back, err := parseRunMeta("meta.yaml", "abc", enc)
		if err != nil {
			t.Fatalf("re-read of\n%s: %v", enc, err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip:\n%+v\n%+v\nvia\n%s", m, back, enc)
		}
	})
}

// FuzzMetricLine: one line of a metric file. A point that parses is written
// as LogMetric writes it and read back the same.
func FuzzMetricLine(f *testing.F) {
	for _, s := range []string{"1700000000000 0.5 3\n", "1 nan", "1 inf 2", "1 -Infinity 2", "1 1e308 -5", " 1 2 3 ",
		"1  2", "1 2 3 4", "x 1", "1 0x1p-2 1", "1 1_000 1", "9223372036854775807 4.9e-324 9223372036854775807", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p, err := parseMetricLine(line)
		if err != nil {
			if !strings.Contains(err.Error(), "malformed line") {
				t.Fatalf("error %q does not say the line is malformed", err)
			}
			return
		}
		out := strconv.FormatInt(p.Timestamp.UnixMilli(), 10) + " " + pyFloat(p.Value) + " " + strconv.FormatInt(p.Step, 10) + "\n"
		back, err := parseMetricLine(out)
		if err != nil {
			t.Fatalf("re-read of %q: %v", out, err)
		}
		same := back.Value == p.Value || math.IsNaN(back.Value) && math.IsNaN(p.Value)
		if !same || back.Step != p.Step || !back.Timestamp.Equal(p.Timestamp) ||
			math.Signbit(back.Value) != math.Signbit(p.Value) && !math.IsNaN(p.Value) {
			t.Fatalf("%q -> %+v -> %q -> %+v", line, p, out, back)
		}
	})
}

// FuzzVersionMeta: a registered model version's meta.yaml.
func FuzzVersionMeta(f *testing.F) {
	f.Add([]byte("version: 3\ncreation_timestamp: 1\nlast_updated_timestamp: 2\ncurrent_stage: None\nsource: file:///x\nrun_id: ''\nstatus: READY\n"))
	f.Add([]byte("version: '3'\ncreation_timestamp: 1\n"))
	f.Add([]byte("version: 3.0\ncreation_timestamp: 1\n"))
	f.Add([]byte("version: 3\ncreation_timestamp: [1]\n"))
	f.Add([]byte("version: 99999999999999999999\n"))
	f.Add([]byte("{version: 3, creation_timestamp: 1, description: {a: b}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mv, err := parseVersionMeta("meta.yaml", "m", 3, data)
		if err != nil {
			return
		}
		if mv.Version != 3 || mv.Name != "m" {
			t.Fatalf("parsed %+v for version 3 of m", mv)
		}
	})
}

// fuzzStore is a small store with one experiment, one run (a param, a tag,
// a metric) and a registered model with a version and an alias; it returns
// the store's folder and the run.
func fuzzStore(f *testing.F) (string, *Run) {
	dir := filepath.Join(f.TempDir(), "mlruns")
	s, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	exp, err := s.Experiment("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	r, err := s.StartRun(exp, "run", nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, err := range []error{r.LogParam("lr", "0.001"), r.SetTag("t", "v"), r.LogMetric("loss", 0.5, 1), r.LogArtifact("model/model.onnx", []byte("onnx"))} {
		if err != nil {
			f.Fatal(err)
		}
	}
	if _, err := s.CreateModelVersion("m", "runs:/"+r.ID+"/model", ""); err != nil {
		f.Fatal(err)
	}
	if err := s.SetAlias("m", "champion", 1); err != nil {
		f.Fatal(err)
	}
	return dir, r
}

// FuzzStoreFiles: any one of the store's files replaced by arbitrary bytes;
// every reader answers (an error is fine) and never panics.
func FuzzStoreFiles(f *testing.F) {
	tmpl, r := fuzzStore(f)
	runDir := filepath.Join(r.ExperimentID, r.ID)
	files := []string{
		filepath.Join(r.ExperimentID, metaFile),
		filepath.Join(runDir, metaFile),
		filepath.Join(runDir, paramsDir, "lr"),
		filepath.Join(runDir, tagsDir, "t"),
		filepath.Join(runDir, metricsDir, "loss"),
		filepath.Join(modelsDir, "m", metaFile),
		filepath.Join(modelsDir, "m", "version-1", metaFile),
		filepath.Join(modelsDir, "m", aliasesDir, "champion"),
	}
	for i, p := range files {
		b, err := os.ReadFile(filepath.Join(tmpl, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
		f.Add(uint8(i), []byte{})
		f.Add(uint8(i), b[:len(b)/2])
	}
	f.Add(uint8(4), []byte("1 2 3\n\n1 2 3\n"))
	f.Add(uint8(7), []byte("01"))
	f.Add(uint8(1), []byte("run_id: "+r.ID+"\nexperiment_id: '9'\nuser_id: x\nstart_time: 1\nend_time: null\n"))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		dir := filepath.Join(t.TempDir(), "mlruns")
		if err := os.CopyFS(dir, os.DirFS(tmpl)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, files[int(which)%len(files)]), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			return
		}
		if exps, err := s.Experiments(); err == nil {
			for _, e := range exps {
				s.Runs(e.ID)
			}
		}
		if ri, err := s.GetRun(r.ID); err == nil {
			if ri.ID != r.ID {
				t.Fatalf("GetRun(%s) gave run %s", r.ID, ri.ID)
			}
		}
		s.MetricHistory(r.ID, "loss")
		s.RegisteredModels()
		s.ModelVersions("m")
		s.Alias("m", "champion")
		s.ResolveModelURI("models:/m@champion")
		s.ResolveModelURI("models:/m/1")
	})
}

// FuzzParamsAndTags: a param or tag that LogParam / SetTag accepts is read
// back exactly by GetRun; one it refuses leaves no file.
func FuzzParamsAndTags(f *testing.F) {
	tmpl, r := fuzzStore(f)
	for _, kv := range [][2]string{{"lr", "0.1"}, {"a/b", "x\ny"}, {"../x", "v"}, {"k", ""}, {"k k", "v"}, {"é", "\x00"},
		{"mlflow.note.content", strings.Repeat("x", 70000)}, {"a//b", "v"}, {".", "v"}, {"a/", "v"}} {
		f.Add(kv[0], kv[1], false)
		f.Add(kv[0], kv[1], true)
	}
	f.Fuzz(func(t *testing.T, key, value string, tag bool) {
		dir := filepath.Join(t.TempDir(), "mlruns")
		if err := os.CopyFS(dir, os.DirFS(tmpl)); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		run, err := s.ResumeRun(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if tag {
			err = run.SetTag(key, value)
		} else {
			err = run.LogParam(key, value)
		}
		ri, rerr := s.GetRun(r.ID)
		if rerr != nil {
			t.Fatalf("GetRun after %s(%q, %q) = %v: %v", map[bool]string{false: "LogParam", true: "SetTag"}[tag], key, value, err, rerr)
		}
		got, ok := ri.Params[key]
		if tag {
			got, ok = ri.Tags[key]
		}
		if err != nil {
			if ok && !(key == "lr" && !tag) && !(key == "t" && tag) {
				t.Fatalf("refused %q = %q (%v), but it reads back as %q", key, value, err, got)
			}
			return
		}
		if !ok || got != value {
			t.Fatalf("wrote %q = %q (valid UTF-8 %v), read back %q, %v", key, value, utf8.ValidString(value), got, ok)
		}
	})
}
