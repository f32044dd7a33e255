package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"petbreed/internal/dataset"
	"petbreed/internal/features"
	"petbreed/internal/pipeline"
	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
)

// petsSubsetDataset is a real Oxford-IIIT Pet layout over pets-3breeds'
// images: its images/ is a link to them, its annotations the first
// trainval and test lines of each breed.
func petsSubsetDataset(t *testing.T, trainval, test int) string {
	t.Helper()
	src := testassets.Path(t, "pets-3breeds")
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(src, "images"), filepath.Join(dir, "images")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "annotations"), 0o755)
	for name, per := range map[string]int{"trainval.txt": trainval, "test.txt": test} {
		f, err := os.Open(filepath.Join(src, "annotations", name))
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		count := map[string]int{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			breed := line[:strings.LastIndexByte(strings.Fields(line)[0], '_')]
			if count[breed] < per {
				count[breed]++
				out.WriteString(line + "\n")
			}
		}
		f.Close()
		if err := os.WriteFile(filepath.Join(dir, "annotations", name), []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestFeaturesShardsFillTheCache: N `petbreed features --shard` processes
// at once over one cache leave the features of every image in every view
// the default configuration needs, so that a pipeline run afterwards
// computes none.
func TestFeaturesShardsFillTheCache(t *testing.T) {
	bin := testutil.Petbreed(t)
	data := petsSubsetDataset(t, 25, 10)
	backbone := testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")
	cache := t.TempDir()
	env := append(os.Environ(), "PETBREED_CACHE="+cache, "PETBREED_THREADS=1")

	ds, err := dataset.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	samples := append(append([]dataset.Sample{}, ds.TrainVal...), ds.Test...)
	distinct := map[[32]byte]bool{}
	for _, s := range samples {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		distinct[sha256.Sum256(b)] = true
	}

	// The views the default pipeline trains on, computed for every image.
	views := pipeline.DefaultConfig().TrainViews()
	names := make([]string, len(views))
	for i, v := range views {
		names[i] = string(v)
	}
	const n = 3
	sums := make([]featuresSummary, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(bin, "features", "--data", data, "--backbone", backbone, "--shard", fmt.Sprintf("%d/%d", i, n), "--json")
			cmd.Env = env
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err == nil {
				err = json.Unmarshal(out, &sums[i])
			}
			if err != nil {
				errs[i] = fmt.Errorf("shard %d: %v\n%s%s", i, err, out, stderr.String())
			}
		}()
	}
	wg.Wait()
	total := 0
	for i, s := range sums {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		total += s.Images
		if s.Shard != fmt.Sprintf("%d/%d", i, n) || s.Samples != len(samples) || s.Images == 0 ||
			s.Computed != len(views)*s.Images || s.Cached != 0 || strings.Join(s.Views, ",") != strings.Join(names, ",") {
			t.Errorf("shard %d: %+v", i, s)
		}
	}
	if total != len(samples) {
		t.Errorf("the shards took %d images, the dataset has %d", total, len(samples))
	}

	ext, err := features.NewExtractor(backbone, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	c, err := features.OpenCache(cache, ext)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if got := c.Len(v); got != len(distinct) {
			t.Errorf("cache holds %d %s features, the dataset has %d distinct images", got, v, len(distinct))
		}
	}

	// The pipeline finds all of them: nothing computed.
	cmd := exec.Command(bin, "pipeline", "--data", data, "--backbone", backbone,
		"--tracking", filepath.Join(t.TempDir(), "mlruns"), "--json", "--quiet")
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pipeline: %v\n%s", err, stderr.String())
	}
	var sum pipeline.Summary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatal(err)
	}
	// It reads trainval in its training views and the test images in one.
	if want := len(views)*len(ds.TrainVal) + len(ds.Test); sum.Features.Computed != 0 || sum.Features.Cached != want {
		t.Errorf("pipeline after the shards: %+v, want 0 computed and %d cached", sum.Features, want)
	}
}

// TestFeaturesUsage: missing or bad flags are usage errors.
func TestFeaturesUsage(t *testing.T) {
	backbone := testassets.Path(t, "backbone", "mobilenetv2-12-int8.onnx")
	data := testassets.Path(t, "pets-3breeds")
	t.Setenv("PETBREED_THREADS", "")
	tests := []struct {
		name string
		env  string
		args []string
		code int
		msg  string
	}{
		{"no data", "", []string{"--backbone", backbone}, 2, "--data and --backbone"},
		{"bad shard", "", []string{"--data", data, "--backbone", backbone, "--shard", "4/4"}, 2, "between 0 and 3"},
		{"bad threads env", "many", []string{"--data", data, "--backbone", backbone}, 2, "PETBREED_THREADS"},
		{"negative threads", "", []string{"--data", data, "--backbone", backbone, "--threads", "-2"}, 2, "--threads"},
		{"missing dataset", "", []string{"--data", filepath.Join(t.TempDir(), "nope"), "--backbone", backbone}, 1, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PETBREED_THREADS", tt.env)
			code, _, errs := cli(t, append([]string{"features"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errs, tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errs, tt.code, tt.msg)
			}
		})
	}
}
