package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
)

// readResults parses predict --json output.
func readResults(t *testing.T, out string) []jsonResult {
	t.Helper()
	var rs []jsonResult
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r jsonResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("not JSON Lines: %q: %v", sc.Text(), err)
		}
		rs = append(rs, r)
	}
	return rs
}

func files(rs []jsonResult) []string {
	var fs []string
	for _, r := range rs {
		fs = append(fs, r.File)
	}
	return fs
}

// TestPredictFollowsSymlinks: links to files and to directories are
// followed, loops and broken links are skipped and named on stderr, and
// the order is the same on every run.
func TestPredictFollowsSymlinks(t *testing.T) {
	root := t.TempDir()
	in, outside := filepath.Join(root, "in"), filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(in, "sub"), filepath.Join(outside, "deep")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyAsset := func(dst string, asset ...string) {
		if err := os.WriteFile(dst, testassets.Read(t, asset...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyAsset(filepath.Join(in, "a.jpg"), "pets-3breeds", "images", "Abyssinian_1.jpg")
	copyAsset(filepath.Join(in, "sub", "d.jpg"), "pets-3breeds", "images", "Bengal_1.jpg")
	copyAsset(filepath.Join(outside, "b.png"), "photos", "chelsea.png")
	copyAsset(filepath.Join(outside, "deep", "c.jpg"), "photos", "cat_720p.jpg")
	links := map[string]string{ // link -> target
		"tofile.jpg":   "../outside/b.png",
		"todir":        "../outside",
		"sub/up":       "..",
		"sub/self":     ".",
		"dangling.jpg": "missing.jpg",
		"cycle.jpg":    "cycle.jpg",
		"not-an-image": "../outside/b.png",
		"absdir":       outside + "/deep",
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(in, l)); err != nil {
			t.Fatal(err)
		}
	}

	args := append([]string{"predict", "--json", "-k", "1"}, backboneArgs(t)...)
	code, out, errs := cli(t, append(args, in)...)
	if code != 0 {
		t.Fatalf("exit %d (skipped links are notices, not failures): %s", code, errs)
	}
	got := readResults(t, out)
	p := func(rel string) string { return filepath.Join(in, rel) }
	want := []string{p("a.jpg"), p("absdir/c.jpg"), p("sub/d.jpg"), p("todir/b.png"), p("todir/deep/c.jpg"), p("tofile.jpg")}
	if !reflect.DeepEqual(files(got), want) {
		t.Errorf("files:\n got %q\nwant %q\nstderr: %s", files(got), want, errs)
	}
	for _, r := range got {
		if r.Error != "" || len(r.Predictions) != 1 {
			t.Errorf("%s: %+v", r.File, r)
		}
	}
	tests := []struct {
		entry  string
		reason string
	}{
		{"sub/up", "symbolic link loop"},
		{"sub/self", "symbolic link loop"},
		{"cycle.jpg", "symbolic link loop"},
		{"dangling.jpg", "broken symbolic link"},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			msg := "skipped " + p(tt.entry) + ": " + tt.reason
			if !strings.Contains(errs, msg) {
				t.Errorf("stderr does not say %q:\n%s", msg, errs)
			}
		})
	}
	if n := strings.Count(errs, "skipped "); n != len(tests) {
		t.Errorf("%d skip notices, want %d:\n%s", n, len(tests), errs)
	}
	// The same order again.
	if _, again, _ := cli(t, append(args, in)...); !reflect.DeepEqual(files(readResults(t, again)), want) {
		t.Errorf("second run's order differs:\n%s", again)
	}
	// A broken link given as an argument is an input that failed.
	code, _, errs = cli(t, append(args, p("dangling.jpg"), p("tofile.jpg"))...)
	if code != 1 || !strings.Contains(errs, "broken symbolic link") {
		t.Errorf("dangling argument: exit %d, %s", code, errs)
	}
}

// TestPredictShardUsage: bad shard flags are usage errors.
func TestPredictShardUsage(t *testing.T) {
	img := testassets.Path(t, "photos", "chelsea.png")
	model := backboneArgs(t)
	t.Setenv("JOB_COMPLETION_INDEX", "")
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"index too big", []string{"--shard", "3/3", img}, "between 0 and 2"},
		{"not I/N", []string{"--shard", "3", img}, "INDEX/COUNT"},
		{"env unset", []string{"--shard-from-env", "4", img}, "JOB_COMPLETION_INDEX"},
		{"empty env in I/N", []string{"--shard", "/4", img}, "JOB_COMPLETION_INDEX"},
		{"both", []string{"--shard", "0/2", "--shard-from-env", "2", img}, "exclusive"},
		{"merge with args", []string{"--merge", t.TempDir(), img}, "no image arguments"},
		{"merge with shard", []string{"--merge", t.TempDir(), "--shard", "0/2"}, "cannot be combined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := cli(t, append(append([]string{"predict"}, tt.args...), model...)...)
			if code != 2 || !strings.Contains(errs, tt.msg) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errs, tt.msg)
			}
		})
	}
}

// TestPredictMergeErrors: a merge refuses incomplete or mixed shard sets
// rather than printing part of the answers.
func TestPredictMergeErrors(t *testing.T) {
	line := func(f string) string { return `{"file":"` + f + `","model":"m","ms":1}` + "\n" }
	tests := []struct {
		name  string
		files map[string]string
		msg   string
	}{
		{"empty dir", map[string]string{"other.txt": "x"}, "no predictions-"},
		{"missing shard", map[string]string{"predictions-00000-of-00003.jsonl": line("a"),
			"predictions-00002-of-00003.jsonl": line("b")}, "1 of 3 shards missing: [1]"},
		{"mixed runs", map[string]string{"predictions-00000-of-00002.jsonl": line("a"),
			"predictions-00000-of-00003.jsonl": line("b")}, "different runs"},
		{"duplicate", map[string]string{"predictions-00000-of-00002.jsonl": line("a"),
			"predictions-00001-of-00002.jsonl": line("a")}, "a is in"},
		{"garbage", map[string]string{"predictions-00000-of-00001.jsonl": "not json\n"}, "not a predict --json line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tt.files {
				os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644)
			}
			code, out, errs := cli(t, "predict", "--merge", dir)
			if code != 1 || out != "" || !strings.Contains(errs, tt.msg) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, %q", code, out, errs, tt.msg)
			}
		})
	}
	if code, _, errs := cli(t, "predict", "--merge", filepath.Join(t.TempDir(), "nope")); code != 1 || !strings.Contains(errs, "nope") {
		t.Errorf("missing dir: exit %d %s", code, errs)
	}
}

// petsSubset is a folder of links to the first perBreed images of each
// pets-3breeds breed (by name, so the GIF Abyssinian_34.jpg and the PNG
// Abyssinian_5.jpg are among them): real images, fewer of them.
func petsSubset(t *testing.T, perBreed int) (dir string, n int) {
	t.Helper()
	src := testassets.Path(t, "pets-3breeds", "images")
	dir = t.TempDir()
	for _, breed := range []string{"Abyssinian", "Bengal", "american_bulldog"} {
		for i := 1; i <= perBreed; i++ {
			name := fmt.Sprintf("%s_%d.jpg", breed, i)
			if _, err := os.Stat(filepath.Join(src, name)); err != nil {
				continue
			}
			if err := os.Symlink(filepath.Join(src, name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return dir, n
}

// TestPredictShardsMatchOneRun: N shard processes of the real binary over
// pets-3breeds images, merged, give the answers of one unsharded run: the
// same files, each once, with the same predictions, in the same order.
func TestPredictShardsMatchOneRun(t *testing.T) {
	bin := testutil.Petbreed(t)
	images, total := petsSubset(t, 40)
	args := append([]string{"predict", "--json", "-k", "3", "--threads", "1"}, backboneArgs(t)...)

	one := exec.Command(bin, append(args, images)...)
	var oneErr bytes.Buffer
	one.Stderr = &oneErr
	oneOut, err := one.Output()
	if err != nil {
		t.Fatalf("unsharded run: %v\n%s", err, oneErr.String())
	}
	whole := readResults(t, string(oneOut))
	if len(whole) != total || total < 100 {
		t.Fatalf("unsharded run classified %d images, want %d", len(whole), total)
	}

	const n = 3
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, append(args, "--shard-from-env", fmt.Sprint(n), "--output", dir, images)...)
			cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("shard %d: %v\n%s", i, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	sizes := map[string]int{}
	for _, e := range ents {
		names = append(names, e.Name())
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		sizes[e.Name()] = bytes.Count(b, []byte("\n"))
	}
	sort.Strings(names)
	wantNames := []string{"predictions-00000-of-00003.jsonl", "predictions-00001-of-00003.jsonl", "predictions-00002-of-00003.jsonl"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Fatalf("output files %v, want %v (no temporary file left)", names, wantNames)
	}
	for name, size := range sizes {
		if size < total/6 || size > total/2 {
			t.Errorf("%s has %d of %d images: the hash should spread them", name, size, total)
		}
	}

	merge := exec.Command(bin, "predict", "--merge", dir)
	mergeOut, err := merge.Output()
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	merged := readResults(t, string(mergeOut))
	if !reflect.DeepEqual(files(merged), files(whole)) {
		t.Fatalf("merged files differ from the unsharded run's (%d against %d)", len(merged), len(whole))
	}
	for i := range whole {
		w, m := whole[i], merged[i]
		if !reflect.DeepEqual(w.Predictions, m.Predictions) || w.Width != m.Width || w.Format != m.Format || w.Error != m.Error {
			t.Errorf("%s: merged %+v, unsharded %+v", w.File, m, w)
		}
	}
}

// TestPredictSIGTERMLeavesNoFile: a shard stopped by SIGTERM (its pod
// evicted) exits 1 and leaves nothing in the output folder, not even a
// temporary file, so a rerun or a merge never sees part of a shard.
func TestPredictSIGTERMLeavesNoFile(t *testing.T) {
	bin := testutil.Petbreed(t)
	dir := t.TempDir()
	args := append([]string{"predict", "--threads", "1", "--batch", "1", "--shard", "0/1", "--output", dir}, backboneArgs(t)...)
	cmd := exec.Command(bin, append(args, testassets.Path(t, "pets-3breeds", "images"))...)
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	if !waitFor(t, cmd, exited, globAny(filepath.Join(dir, ".predictions-*"))) {
		t.Fatalf("no temporary output file while classifying: %s", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("predict did not stop on SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit %d after SIGTERM, stderr %q; want 1 and interrupted", code, stderr.String())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in the output folder: %v", ents)
	}
}
