package tracking

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	hex32      = regexp.MustCompile(`^[0-9a-f]{32}$`)
	metricLine = regexp.MustCompile(`^(\d+) (\S+) (-?\d+)$`)
)

// TestRunLayout checks every file of a run against what MLflow's FileStore
// writes and requires.
func TestRunLayout(t *testing.T) {
	s := openStore(t)
	before := time.Now().UnixMilli()
	expID, err := s.Experiment("pets")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[1-9][0-9]{17}$`).MatchString(expID) {
		t.Errorf("experiment id %q: want 18 digits without a leading zero, as MLflow makes", expID)
	}
	r, err := s.StartRun(expID, "yes", map[string]string{"team": "ml"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LogParam("lr", "0.001"); err != nil {
		t.Fatal(err)
	}
	if err := r.LogParam("nested/key", "x\ny"); err != nil {
		t.Fatal(err)
	}
	for i, v := range []float64{0.5, 1, math.NaN(), math.Inf(1), math.Inf(-1), 1e-7} {
		if err := r.LogMetric("loss", v, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.LogMetric("val/acc", 0.25, -3); err != nil {
		t.Fatal(err)
	}
	if err := r.End(Finished); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	inRange := func(what string, v any) int64 {
		t.Helper()
		ms, ok := v.(int)
		if !ok {
			t.Errorf("%s = %#v: want an integer", what, v)
			return 0
		}
		if int64(ms) < before || int64(ms) > after {
			t.Errorf("%s = %d: want milliseconds in [%d, %d]", what, ms, before, after)
		}
		return int64(ms)
	}

	// Default experiment, created with the store.
	def := readYAML(t, filepath.Join(s.Root(), "0", metaFile))
	if def["experiment_id"] != "0" || def["name"] != "Default" || def["lifecycle_stage"] != "active" {
		t.Errorf("0/meta.yaml = %v", def)
	}

	// Experiment.
	em := readYAML(t, filepath.Join(s.Root(), expID, metaFile))
	wantKeys(t, "experiment meta.yaml", em, "artifact_location", "creation_time", "experiment_id", "last_update_time", "lifecycle_stage", "name")
	if em["experiment_id"] != expID || em["name"] != "pets" || em["lifecycle_stage"] != "active" {
		t.Errorf("experiment meta.yaml = %v", em)
	}
	if want := "file://" + s.Root() + "/" + expID; em["artifact_location"] != want {
		t.Errorf("artifact_location = %v, want %s", em["artifact_location"], want)
	}
	inRange("creation_time", em["creation_time"])
	inRange("last_update_time", em["last_update_time"])

	// Run meta.yaml.
	if !hex32.MatchString(r.ID) || r.ID[12] != '4' || !strings.ContainsRune("89ab", rune(r.ID[16])) {
		t.Errorf("run id %q is not a uuid4 hex", r.ID)
	}
	runDir := filepath.Join(s.Root(), expID, r.ID)
	if r.dir != runDir {
		t.Errorf("Dir() = %s, want %s", r.dir, runDir)
	}
	rm := readYAML(t, filepath.Join(runDir, metaFile))
	wantKeys(t, "run meta.yaml", rm, "artifact_uri", "end_time", "entry_point_name", "experiment_id", "lifecycle_stage",
		"run_id", "run_name", "run_uuid", "source_name", "source_type", "source_version", "start_time", "status", "tags", "user_id")
	if rm["run_id"] != r.ID || rm["run_uuid"] != r.ID {
		t.Errorf("run_id %v, run_uuid %v: want the folder name %s", rm["run_id"], rm["run_uuid"], r.ID)
	}
	if rm["experiment_id"] != expID {
		t.Errorf("experiment_id = %#v, want the string %q", rm["experiment_id"], expID)
	}
	if st, ok := rm["status"].(int); !ok || st != 3 {
		t.Errorf("status = %#v, want the integer 3 (FINISHED)", rm["status"])
	}
	start := inRange("start_time", rm["start_time"])
	if end := inRange("end_time", rm["end_time"]); end < start {
		t.Errorf("end_time %d < start_time %d", end, start)
	}
	if rm["lifecycle_stage"] != "active" || rm["run_name"] != "yes" || rm["source_type"] != 4 {
		t.Errorf("run meta.yaml = %v", rm)
	}
	if tags, ok := rm["tags"].([]any); !ok || len(tags) != 0 {
		t.Errorf("tags = %#v, want []", rm["tags"])
	}
	if u, _ := rm["user_id"].(string); u == "" {
		t.Errorf("user_id = %#v", rm["user_id"])
	}
	if raw := readString(t, filepath.Join(runDir, metaFile)); !strings.Contains(raw, "run_name: 'yes'") {
		t.Errorf("run name 'yes' not quoted (PyYAML would read a boolean):\n%s", raw)
	}
	au, _ := rm["artifact_uri"].(string)
	if want := "file://" + runDir + "/artifacts"; au != want {
		t.Errorf("artifact_uri = %q, want %q", au, want)
	}
	if p, err := fileURIToPath(au); err != nil || p != r.artifactDir || !filepath.IsAbs(p) || !isDir(p) {
		t.Errorf("artifact_uri %q -> %q, %v; ArtifactDir() = %q", au, p, err, r.artifactDir)
	}
	for _, sub := range []string{"metrics", "params", "tags", "artifacts"} {
		if !isDir(filepath.Join(runDir, sub)) {
			t.Errorf("missing %s/", sub)
		}
	}

	// Params: the value, no trailing newline.
	if got := readString(t, filepath.Join(runDir, "params", "lr")); got != "0.001" {
		t.Errorf("params/lr = %q", got)
	}
	if got := readString(t, filepath.Join(runDir, "params", "nested", "key")); got != "x\ny" {
		t.Errorf("params/nested/key = %q", got)
	}

	// Metrics: "<int> <float> <int>\n" lines, the value as Python prints it.
	for key, wantVals := range map[string][]string{
		"loss":    {"0.5", "1.0", "nan", "inf", "-inf", "1e-07"},
		"val/acc": {"0.25"},
	} {
		raw := readString(t, filepath.Join(runDir, "metrics", filepath.FromSlash(key)))
		if !strings.HasSuffix(raw, "\n") {
			t.Errorf("metrics/%s does not end with a newline", key)
		}
		lines := strings.Split(strings.TrimSuffix(raw, "\n"), "\n")
		if len(lines) != len(wantVals) {
			t.Fatalf("metrics/%s: %d lines, want %d", key, len(lines), len(wantVals))
		}
		for i, line := range lines {
			m := metricLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("metrics/%s line %q: want \"<int> <float> <int>\"", key, line)
				continue
			}
			ts, _ := strconv.ParseInt(m[1], 10, 64)
			if ts < before || ts > after {
				t.Errorf("metrics/%s: timestamp %d is not milliseconds now", key, ts)
			}
			if m[2] != wantVals[i] {
				t.Errorf("metrics/%s line %d value %q, want %q", key, i, m[2], wantVals[i])
			}
		}
	}

	// Tags: the ones MLflow's client sets, the stale-run ones, the caller's.
	host, _ := os.Hostname()
	for k, want := range map[string]string{
		TagRunName: "yes", TagSourceType: "LOCAL", TagSourceName: os.Args[0],
		TagPID: strconv.Itoa(os.Getpid()), TagHost: host, TagUser: rm["user_id"].(string), "team": "ml",
	} {
		if got := readString(t, filepath.Join(runDir, "tags", k)); got != want {
			t.Errorf("tags/%s = %q, want %q", k, got, want)
		}
	}
	noTempFiles(t, s)
}

func TestOpenURIForms(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	tests := []struct {
		uri, want string
	}{
		{"", filepath.Join(base, "mlruns")},
		{"rel/store", filepath.Join(base, "rel/store")},
		{"file:fileRel", filepath.Join(base, "fileRel")},
		{"file://" + base + "/abs", filepath.Join(base, "abs")},
		{"file://localhost" + base + "/host", filepath.Join(base, "host")},
		{"file://" + base + "/with%20space", filepath.Join(base, "with space")},
		{base + "/plain", filepath.Join(base, "plain")},
	}
	for _, tt := range tests {
		s, err := Open(tt.uri)
		if err != nil {
			t.Errorf("Open(%q): %v", tt.uri, err)
			continue
		}
		if s.Root() != tt.want {
			t.Errorf("Open(%q).Root() = %q, want %q", tt.uri, s.Root(), tt.want)
		}
		if !exists(filepath.Join(tt.want, "0", metaFile)) {
			t.Errorf("Open(%q): no Default experiment", tt.uri)
		}
	}
	if s, _ := Open(base + "/with space"); s.URI() != "file://"+base+"/with%20space" {
		t.Errorf("URI() = %q: want the path percent-encoded", s.URI())
	}
	for _, bad := range []string{"http://localhost:5000", "sqlite:///x.db", "file://otherhost/x", "databricks"} {
		if bad == "databricks" {
			continue // a plain relative path
		}
		if _, err := Open(bad); err == nil {
			t.Errorf("Open(%q): no error", bad)
		}
	}
}

func TestInvalidKeysRejected(t *testing.T) {
	s := openStore(t)
	r := startRun(t, s, "keys", "k")
	bad := []string{"", "a\tb", "a+b", "a:b", "a\nb", "../x", "/abs", "a//b", "a/", ".", "..x", "x/../y", "./x", "a\\b", strings.Repeat("k", 251)}
	for _, key := range bad {
		for name, log := range map[string]func() error{
			"LogParam":  func() error { return r.LogParam(key, "v") },
			"LogMetric": func() error { return r.LogMetric(key, 1, 0) },
			"SetTag":    func() error { return r.SetTag(key, "v") },
			"LogParams": func() error { return r.LogParams(map[string]string{"fine": "v", key: "v"}) },
		} {
			if err := log(); err == nil {
				t.Errorf("%s(%q): no error", name, key)
			}
		}
	}
	if exists(filepath.Join(r.dir, "params", "fine")) {
		t.Error("LogParams wrote a param although another key was invalid")
	}
	good := []string{"a/b", "val acc", "ü-ß_1", "lr.1", "x-y", strings.Repeat("k", 250)}
	for _, key := range good {
		if err := r.LogParam(key, "v"); err != nil {
			t.Errorf("LogParam(%q): %v", key, err)
		}
		if err := r.LogMetric(key, 1, 0); err != nil {
			t.Errorf("LogMetric(%q): %v", key, err)
		}
		if err := r.SetTag(key, "v"); err != nil {
			t.Errorf("SetTag(%q): %v", key, err)
		}
	}
	if err := r.LogParam("long", strings.Repeat("v", maxParamValueLength+1)); err == nil {
		t.Error("param value over MLflow's limit accepted")
	}
	if err := r.SetTag("long", strings.Repeat("v", maxTagValueLength+1)); err == nil {
		t.Error("tag value over MLflow's limit accepted")
	}
	if _, err := s.GetRun(r.ID); err != nil {
		t.Errorf("reading the run back: %v", err)
	}
}

func TestParamImmutable(t *testing.T) {
	s := openStore(t)
	r := startRun(t, s, "p", "p")
	if err := r.LogParam("lr", "0.1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		value   string
		wantErr bool
	}{
		{"0.1", false},
		{"0.2", true},
		{"0.1\n", true},
		{"", true},
	}
	for _, tt := range tests {
		err := r.LogParam("lr", tt.value)
		if (err != nil) != tt.wantErr {
			t.Errorf("LogParam(lr, %q) error = %v, want error %v", tt.value, err, tt.wantErr)
		}
	}
	// Another handle (as another process would have) is bound by it too.
	r2, err := s.ResumeRun(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LogParam("lr", "0.3"); err == nil {
		t.Error("a second handle changed the param")
	}
	// LogParams checks every conflict before writing anything.
	if err := r.LogParams(map[string]string{"a": "1", "lr": "0.5"}); err == nil {
		t.Error("LogParams with a conflicting value: no error")
	}
	if exists(filepath.Join(r.dir, "params", "a")) {
		t.Error("LogParams wrote 'a' although 'lr' conflicted")
	}
	if err := r.LogParams(map[string]string{"a": "1", "lr": "0.1"}); err != nil {
		t.Errorf("LogParams with the same values: %v", err)
	}
	if got := readString(t, filepath.Join(r.dir, "params", "lr")); got != "0.1" {
		t.Errorf("params/lr = %q", got)
	}
}

func TestConcurrentLogMetric(t *testing.T) {
	s := openStore(t)
	r := startRun(t, s, "c", "c")
	r2, err := s.ResumeRun(r.ID) // a second writer racing on file creation too
	if err != nil {
		t.Fatal(err)
	}
	const writers, per = 8, 250
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := r
			if w%2 == 1 {
				run = r2
			}
			for i := range per {
				v := float64(w) + float64(i)/1000 + 1e-9
				if err := run.LogMetric("loss", v, int64(w*per+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	raw := readString(t, filepath.Join(r.dir, "metrics", "loss"))
	lines := strings.Split(strings.TrimSuffix(raw, "\n"), "\n")
	if len(lines) != writers*per {
		t.Fatalf("%d lines, want %d", len(lines), writers*per)
	}
	seen := map[int64]bool{}
	for _, line := range lines {
		if !metricLine.MatchString(line) {
			t.Fatalf("malformed line %q", line)
		}
		pt, err := parseMetricLine(line)
		if err != nil {
			t.Fatal(err)
		}
		seen[pt.Step] = true
	}
	if len(seen) != writers*per {
		t.Errorf("%d distinct steps, want %d", len(seen), writers*per)
	}
	pts, err := s.MetricHistory(r.ID, "loss")
	if err != nil || len(pts) != writers*per {
		t.Errorf("MetricHistory: %d points, %v", len(pts), err)
	}
}

func TestEnd(t *testing.T) {
	s := openStore(t)
	for _, st := range []Status{Finished, Failed, Killed} {
		r := startRun(t, s, "end", st.String())
		if err := r.End(st); err != nil {
			t.Fatalf("End(%s): %v", st, err)
		}
		m := readYAML(t, filepath.Join(r.dir, metaFile))
		if m["status"] != int(st) {
			t.Errorf("End(%s): status = %#v, want %d", st, m["status"], int(st))
		}
		if _, ok := m["end_time"].(int); !ok {
			t.Errorf("End(%s): end_time = %#v", st, m["end_time"])
		}
		if err := r.End(Finished); !errors.Is(err, ErrRunEnded) {
			t.Errorf("second End after %s: %v, want ErrRunEnded", st, err)
		}
		if m2 := readYAML(t, filepath.Join(r.dir, metaFile)); m2["status"] != int(st) || m2["end_time"] != m["end_time"] {
			t.Errorf("second End changed meta.yaml: %v", m2)
		}
		info, err := s.GetRun(r.ID)
		if err != nil || info.Status != st || info.End.IsZero() {
			t.Errorf("GetRun after End(%s): %+v, %v", st, info, err)
		}
	}
	r := startRun(t, s, "end", "running")
	for _, st := range []Status{Running, Scheduled, 0, 9} {
		if err := r.End(st); err == nil {
			t.Errorf("End(%s): no error", st)
		}
	}
	info, _ := s.GetRun(r.ID)
	if info.Status != Running || !info.End.IsZero() {
		t.Errorf("running run: %+v", info)
	}
	m := readYAML(t, filepath.Join(r.dir, metaFile))
	if v, ok := m["end_time"]; !ok || v != nil {
		t.Errorf("end_time of a running run = %#v, want null", v)
	}
}

func TestStatusNames(t *testing.T) {
	for _, tt := range []struct {
		s    Status
		name string
	}{{Running, "RUNNING"}, {Scheduled, "SCHEDULED"}, {Finished, "FINISHED"}, {Failed, "FAILED"}, {Killed, "KILLED"}} {
		if tt.s.String() != tt.name {
			t.Errorf("%d.String() = %q", int(tt.s), tt.s.String())
		}
		if p, err := ParseStatus(strings.ToLower(tt.name)); err != nil || p != tt.s {
			t.Errorf("ParseStatus(%q) = %v, %v", tt.name, p, err)
		}
	}
	if _, err := ParseStatus("DONE"); err == nil {
		t.Error("ParseStatus(DONE): no error")
	}
}

func TestReapStale(t *testing.T) {
	s := openStore(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run true:", err)
	}
	deadPID := strconv.Itoa(cmd.Process.Pid)

	dead := startRun(t, s, "reap", "dead")
	dead.SetTag(TagPID, deadPID)
	dead.SetTag(TagProcStart, "")
	alive := startRun(t, s, "reap", "alive")
	elsewhere := startRun(t, s, "reap", "elsewhere")
	elsewhere.SetTag(TagPID, deadPID)
	elsewhere.SetTag(TagHost, "another-host")
	done := startRun(t, s, "reap", "done")
	done.SetTag(TagPID, deadPID)
	done.End(Finished)
	foreign := startRun(t, s, "reap", "foreign") // no petbreed tags: made by MLflow
	os.Remove(filepath.Join(foreign.dir, "tags", TagPID))
	inDefault, err := s.StartRun("0", "default-dead", map[string]string{TagPID: deadPID})
	if err != nil {
		t.Fatal(err)
	}
	var reused *Run
	if procStartTime(os.Getpid()) != "" {
		// This process's pid, but recorded with another start time: the pid
		// was reused, the run's process is gone.
		reused = startRun(t, s, "reap", "reused")
		reused.SetTag(TagProcStart, "1")
	}

	n, err := s.ReapStale()
	if err != nil {
		t.Fatal(err)
	}
	want := map[*Run]Status{dead: Killed, inDefault: Killed, alive: Running, elsewhere: Running, done: Finished, foreign: Running}
	if reused != nil {
		want[reused] = Killed
	}
	wantN := 0
	for r, st := range want {
		info, err := s.GetRun(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != st {
			t.Errorf("run %s: status %s, want %s", info.Name, info.Status, st)
		}
		if st == Killed {
			wantN++
			if info.End.IsZero() || time.Since(info.End) > time.Minute {
				t.Errorf("reaped run %s: end_time %v", info.Name, info.End)
			}
		}
	}
	if n != wantN {
		t.Errorf("ReapStale() = %d, want %d", n, wantN)
	}
	if n, err := s.ReapStale(); n != 0 || err != nil {
		t.Errorf("second ReapStale() = %d, %v", n, err)
	}
	if err := dead.End(Finished); !errors.Is(err, ErrRunEnded) {
		t.Errorf("End of a reaped run: %v, want ErrRunEnded", err)
	}
}

func TestArtifacts(t *testing.T) {
	s := openStore(t)
	r := startRun(t, s, "art", "a")
	if err := r.LogArtifact("reports/test/summary.json", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := r.LogArtifact("reports/test/summary.json", []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(r.artifactDir, "reports", "test", "summary.json")); got != `{"a":2}` {
		t.Errorf("artifact = %q", got)
	}
	src := filepath.Join(t.TempDir(), "labels.txt")
	os.WriteFile(src, []byte("abyssinian\nbeagle\n"), 0o644)
	if err := r.LogArtifactFile("labels.txt", src); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(r.artifactDir, "labels.txt")); got != "abyssinian\nbeagle\n" {
		t.Errorf("copied artifact = %q", got)
	}
	for _, bad := range []string{"", "../escape", "/abs", "a/../../x", "a/../b", "./a", "a\\b", "reports/test", "."} {
		if err := r.LogArtifact(bad, []byte("x")); err == nil {
			t.Errorf("LogArtifact(%q): no error", bad)
		}
	}
	if err := r.LogArtifactFile("x", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("LogArtifactFile of a missing file: no error")
	}
	if exists(filepath.Join(filepath.Dir(r.dir), "escape")) {
		t.Error("artifact escaped the run")
	}
	noTempFiles(t, s)
}

func TestExperiments(t *testing.T) {
	s := openStore(t)
	time.Sleep(3 * time.Millisecond) // creation times order the listing
	if id, err := s.Experiment("Default"); err != nil || id != "0" {
		t.Errorf("Experiment(Default) = %q, %v", id, err)
	}
	// Two stores on one root (as two processes) asking for one new name.
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = s2
			}
			var err error
			if ids[i], err = st.Experiment("shared"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("racing Experiment calls got different ids: %v", ids)
		}
	}
	exps, err := s.Experiments()
	if err != nil || len(exps) != 2 {
		t.Fatalf("Experiments() = %v, %v", exps, err)
	}
	if exps[0].Name != "shared" || exps[1].ID != "0" {
		t.Errorf("Experiments() order: %+v", exps)
	}
	for _, bad := range []string{"", strings.Repeat("x", 501)} {
		if _, err := s.Experiment(bad); err == nil {
			t.Errorf("Experiment(%.10q...): no error", bad)
		}
	}
	// A deleted experiment keeps its name, as in MLflow.
	gone, _ := s.Experiment("gone")
	meta := filepath.Join(s.Root(), gone, metaFile)
	os.WriteFile(meta, []byte(strings.Replace(readString(t, meta), "'active'", "'deleted'", 1)), 0o644)
	os.Rename(filepath.Join(s.Root(), gone), filepath.Join(s.Root(), trashDir, gone))
	if _, err := s.Experiment("gone"); err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("Experiment of a deleted name: %v", err)
	}
	if _, err := s.StartRun(gone, "x", nil); err == nil {
		t.Error("StartRun in a deleted experiment: no error")
	}
	if _, err := s.StartRun("123", "x", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("StartRun in an unknown experiment: %v", err)
	}
	if _, err := s.StartRun("0", "a", map[string]string{TagRunName: "b"}); err == nil {
		t.Error("StartRun with a run name and a different mlflow.runName tag: no error")
	}
	r, err := s.StartRun("0", "", map[string]string{TagRunName: "from-tag"})
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := s.GetRun(r.ID); info.Name != "from-tag" {
		t.Errorf("run name = %q, want the tag's", info.Name)
	}
	r, _ = s.StartRun("0", "", nil)
	if info, _ := s.GetRun(r.ID); !regexp.MustCompile(`^[a-z-]+-[a-z]+-\d+$`).MatchString(info.Name) {
		t.Errorf("generated run name %q", info.Name)
	}
	// A root folder MLflow cannot take for an experiment makes it fail; so
	// does this reader, clearly.
	os.Mkdir(filepath.Join(s.Root(), "not an id"), 0o755)
	if _, err := s.Experiments(); err == nil || !strings.Contains(err.Error(), "not an id") {
		t.Errorf("Experiments() with a stray folder: %v", err)
	}
}

func TestRunsRoundTrip(t *testing.T) {
	s := openStore(t)
	expID, _ := s.Experiment("rt")
	older, _ := s.StartRun(expID, "older", nil)
	time.Sleep(3 * time.Millisecond)
	newer, _ := s.StartRun(expID, "newer", map[string]string{"k": "v"})
	newer.LogParams(map[string]string{"lr": "0.01", "batch/size": "32"})
	// Latest value = largest (step, timestamp): step 2 wins over a later step 1.
	for _, p := range []struct {
		step int64
		v    float64
	}{{0, 0.9}, {2, 0.5}, {1, 0.7}} {
		newer.LogMetric("loss", p.v, p.step)
	}
	newer.LogMetric("acc", math.NaN(), 0)
	newer.LogMetric("big", math.Inf(-1), 0)
	newer.SetTag("k", "v2")
	newer.SetTag(TagRunName, "renamed")
	newer.End(Failed)

	// Folders MLflow skips.
	os.MkdirAll(filepath.Join(s.Root(), expID, "abc123", "metrics"), 0o755)       // no meta.yaml
	os.MkdirAll(filepath.Join(s.Root(), expID, "tags", "x"), 0o755)               // reserved
	os.WriteFile(filepath.Join(s.Root(), expID, "stray.txt"), []byte("x"), 0o644) // a file
	wrongExp, _ := s.StartRun("0", "elsewhere", nil)                              // meta says experiment 0
	os.Rename(wrongExp.dir, filepath.Join(s.Root(), expID, filepath.Base(wrongExp.dir)))

	runs, err := s.Runs(expID)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != newer.ID || runs[1].ID != older.ID {
		t.Fatalf("Runs() = %+v, want newer then older", runs)
	}
	got := runs[0]
	if got.Name != "renamed" || got.Status != Failed || got.End.IsZero() || got.ExperimentID != expID || got.User == "" {
		t.Errorf("run info = %+v", got)
	}
	if got.Params["lr"] != "0.01" || got.Params["batch/size"] != "32" || len(got.Params) != 2 {
		t.Errorf("params = %v", got.Params)
	}
	if got.Tags["k"] != "v2" || got.Tags[TagRunName] != "renamed" {
		t.Errorf("tags = %v", got.Tags)
	}
	if got.Metrics["loss"] != 0.5 || !math.IsNaN(got.Metrics["acc"]) || !math.IsInf(got.Metrics["big"], -1) {
		t.Errorf("metrics = %v", got.Metrics)
	}
	if got.ArtifactURI != "file://"+filepath.Join(newer.dir, "artifacts") {
		t.Errorf("artifact URI %q", got.ArtifactURI)
	}
	one, err := s.GetRun(newer.ID)
	if err != nil || one.Name != "renamed" || fmt.Sprint(one.Params) != fmt.Sprint(got.Params) {
		t.Errorf("GetRun = %+v, %v", one, err)
	}
	hist, err := s.MetricHistory(newer.ID, "loss")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Step != 0 || hist[0].Value != 0.9 || hist[1].Step != 2 || hist[2].Value != 0.7 {
		t.Errorf("MetricHistory = %+v", hist)
	}
	if time.Since(hist[0].Timestamp) > time.Minute {
		t.Errorf("timestamp %v", hist[0].Timestamp)
	}
	if h, err := s.MetricHistory(newer.ID, "never"); err != nil || len(h) != 0 {
		t.Errorf("history of an unlogged metric = %v, %v", h, err)
	}
	for _, id := range []string{newRunID(), "0123456789abcdef0123456789abcdef"} {
		if _, err := s.GetRun(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRun(unknown): %v", err)
		}
		if _, err := s.MetricHistory(id, "loss"); !errors.Is(err, ErrNotFound) {
			t.Errorf("MetricHistory(unknown run): %v", err)
		}
	}
	if _, err := s.GetRun("../etc"); err == nil {
		t.Error("GetRun(../etc): no error")
	}
	if _, err := s.Runs("999"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Runs(unknown) = %v", err)
	}
	// YAML 1.1 traps survive the round trip as strings.
	for _, name := range []string{"on", "12:30", "0o12", "null", "3.10", "~", "multi\nline", "it's", "- dash", "#x"} {
		r, err := s.StartRun(expID, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := s.GetRun(r.ID); err != nil || info.Name != name {
			t.Errorf("run name %q read back as %q, %v", name, info.Name, err)
		}
	}
}

func TestCorruptFilesGiveClearErrors(t *testing.T) {
	good := []string{
		"1700000000000 0.5 3\n",
		"1700000000000 0.5\n", // 2 fields: step 0
		"1700000000000 nan 0\n1700000000001 -inf 1\n1700000000002 1e-05 2",
		"1700000000000 5 0\r\n",
	}
	bad := []string{
		"",
		"1700000000000 0.5 3 4\n",
		"1700000000000\t0.5\t3\n",
		"1700000000000  0.5 3\n",
		"1700000000000 0.5 3\n\n1700000000001 0.5 4\n",
		"1700000000000.0 0.5 3\n",
		"2023-01-01T00:00:00 0.5 3\n",
		"1700000000000 0.5 1.0\n",
		"1700000000000 abc 3\n",
		"1700000000000 0,5 3\n",
		"1700000000000 0x1p-2 3\n",
		"1700000000000\n",
	}
	s := openStore(t)
	for i, content := range append(good, bad...) {
		r := startRun(t, s, fmt.Sprintf("corrupt%d", i), "r")
		path := filepath.Join(r.dir, "metrics", "loss")
		os.WriteFile(path, []byte(content), 0o644)
		_, err := s.Runs(r.ExperimentID)
		if i < len(good) {
			if err != nil {
				t.Errorf("metric file %q: %v", content, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("metric file %q: no error", content)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("metric file %q: error %q does not name %s", content, err, path)
		}
		if _, err := s.MetricHistory(r.ID, "loss"); err == nil {
			t.Errorf("MetricHistory of %q: no error", content)
		}
	}
	for name, content := range map[string]string{
		"empty":       "",
		"not yaml":    "a: [b\n",
		"list":        "- 1\n",
		"status text": "run_id: X\n",
	} {
		r := startRun(t, s, "meta-"+strings.ReplaceAll(name, " ", "-"), "r")
		if name == "status text" {
			content = strings.Replace(readString(t, filepath.Join(r.dir, metaFile)), "status: 1", "status: RUNNING", 1)
		}
		meta := filepath.Join(r.dir, metaFile)
		os.WriteFile(meta, []byte(content), 0o644)
		if _, err := s.Runs(r.ExperimentID); err == nil || !strings.Contains(err.Error(), meta) {
			t.Errorf("meta.yaml %s: error %v does not name %s", name, err, meta)
		}
	}
	r := startRun(t, s, "wrong-id", "r")
	meta := filepath.Join(r.dir, metaFile)
	os.WriteFile(meta, []byte(strings.ReplaceAll(readString(t, meta), r.ID, newRunID())), 0o644)
	if _, err := s.GetRun(r.ID); err == nil || !strings.Contains(err.Error(), "folder") {
		t.Errorf("run_id not the folder name: %v", err)
	}
}
