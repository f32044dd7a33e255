package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"petbreed/internal/tracking"
)

func TestSyncCommand(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	dst := filepath.Join(t.TempDir(), "dst")
	s, err := tracking.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := s.Experiment("pet-breed")
	w, err := s.CreateRun(exp, "offline", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.LogParams(map[string]string{"lr": "0.01"}); err != nil {
		t.Fatal(err)
	}
	if err := w.LogMetrics([]tracking.Metric{{Key: "val_acc", Value: 0.5, Step: 0}, {Key: "val_acc", Value: 0.75, Step: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := w.LogArtifact("notes/a.txt", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.End(tracking.Finished); err != nil {
		t.Fatal(err)
	}
	dry := func() {
		if _, err := os.Stat(dst); err == nil {
			t.Error("a dry run created the destination store")
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"sync", src, dst, "--dry-run"}, 0, "would copy " + w.RunID()},
		{[]string{"sync", src, dst, "--dry-run"}, 0, dst + " does not exist yet"},
		{[]string{"sync", src, dst}, 0, "1 params, 2 metric values, 1 artifacts (5 bytes)\ncopied 1 of 1 runs"},
		{[]string{"sync", src, dst}, 0, "already there as"},
		{[]string{"sync", dst, src}, 0, "the original is there as " + w.RunID()},
		{[]string{"sync", src, dst, "--experiment", "nope"}, 1, `no experiment "nope"`},
		{[]string{"sync", src}, 2, "sync takes FROM and TO"},
		{[]string{"sync", src + "-typo", dst}, 1, "FROM: stat " + src + "-typo: no such file"},
		{[]string{"sync", src, "file://" + src}, 2, "the same store"},
	} {
		code, out, errs := cli(t, tc.args...)
		if tc.args[len(tc.args)-1] == "--dry-run" {
			dry()
		}
		if code != tc.code || !strings.Contains(out+errs, tc.out) {
			t.Errorf("%v: exit %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args[1:], code, tc.code, tc.out, out, errs)
		}
	}
	d, err := tracking.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	exps, _ := d.Experiments()
	var runs []tracking.RunInfo
	for _, e := range exps {
		if e.Name == "pet-breed" {
			runs, _ = d.Runs(e.ID)
		}
	}
	if len(runs) != 1 || runs[0].Params["lr"] != "0.01" || runs[0].Status != tracking.Finished {
		t.Errorf("destination runs: %+v", runs)
	}
}
