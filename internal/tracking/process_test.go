package tracking

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestHelperWriter is run as a child process by TestSeveralProcesses.
func TestHelperWriter(t *testing.T) {
	root := os.Getenv("TRACKING_HELPER_ROOT")
	if root == "" {
		t.Skip("helper process only")
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.ResumeRun(os.Getenv("TRACKING_HELPER_RUN"))
	if err != nil {
		t.Fatal(err)
	}
	me := os.Getenv("TRACKING_HELPER_ID")
	for i := range 300 {
		if err := r.LogMetric("loss", float64(i), int64(i)); err != nil {
			t.Fatal(err)
		}
		if i%60 == 0 {
			if _, err := s.CreateModelVersion("shared", "file:///m/"+me+"/"+strconv.Itoa(i), r.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.Experiment("made-by-every-process"); err != nil {
		t.Fatal(err)
	}
}

// TestSeveralProcesses has separate processes append to one metric, register
// versions of one model and create one experiment at the same time.
func TestSeveralProcesses(t *testing.T) {
	if os.Getenv("TRACKING_HELPER_ROOT") != "" {
		t.Skip()
	}
	s := openStore(t)
	r := startRun(t, s, "procs", "p")
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([]bytes.Buffer, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), "TRACKING_HELPER_ROOT="+s.Root(), "TRACKING_HELPER_RUN="+r.ID, "TRACKING_HELPER_ID="+strconv.Itoa(i))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		cmds[i] = cmd
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i].String())
		}
	}
	pts, err := s.MetricHistory(r.ID, "loss")
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != procs*300 {
		t.Errorf("%d metric points, want %d", len(pts), procs*300)
	}
	vs, err := s.ModelVersions("shared")
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	sources := map[string]bool{}
	for _, v := range vs {
		nums = append(nums, v.Version)
		sources[v.Source] = true
	}
	sort.Ints(nums)
	want := make([]int, procs*5)
	for i := range want {
		want[i] = i + 1
	}
	if fmt.Sprint(nums) != fmt.Sprint(want) || len(sources) != procs*5 {
		t.Errorf("versions %v (%d distinct sources), want %v", nums, len(sources), want)
	}
	exps, _ := s.Experiments()
	n := 0
	for _, e := range exps {
		if strings.HasPrefix(e.Name, "made-by-every-process") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d experiments made by racing processes, want 1", n)
	}
}
