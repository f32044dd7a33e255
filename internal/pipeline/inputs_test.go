package pipeline

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"

	"petbreed/internal/dataset"
	"petbreed/internal/tracking"
)

func TestSplitDigest(t *testing.T) {
	classes := []string{"cat", "dog"}
	s := func(root, p string, label int) dataset.Sample {
		return dataset.Sample{Path: filepath.Join(root, p), Label: label}
	}
	base := splitDigest("/a", classes, []dataset.Sample{s("/a", "x.jpg", 0), s("/a", "y.jpg", 1)})
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(base) {
		t.Fatalf("digest %q: want 8 hex digits", base)
	}
	for _, tc := range []struct {
		name    string
		root    string
		samples []dataset.Sample
		same    bool
	}{
		{"another order", "/a", []dataset.Sample{s("/a", "y.jpg", 1), s("/a", "x.jpg", 0)}, true},
		{"the folder moved", "/b/c", []dataset.Sample{s("/b/c", "x.jpg", 0), s("/b/c", "y.jpg", 1)}, true},
		{"a label changed", "/a", []dataset.Sample{s("/a", "x.jpg", 1), s("/a", "y.jpg", 1)}, false},
		{"an image fewer", "/a", []dataset.Sample{s("/a", "x.jpg", 0)}, false},
		{"an image renamed", "/a", []dataset.Sample{s("/a", "x.jpg", 0), s("/a", "z.jpg", 1)}, false},
		{"no images", "/a", nil, false},
	} {
		if got := splitDigest(tc.root, classes, tc.samples); (got == base) != tc.same {
			t.Errorf("%s: digest %s, base %s, want same = %v", tc.name, got, base, tc.same)
		}
	}
}

// checkInputs checks a pipeline's runs' dataset inputs in its file store:
// each run records the dataset it trained on and was selected by (images
// per context: trained for a run selected by validation, refit for a refit
// or cross-validated run), the champion also the test split; every input
// names the dataset folder and its file: URI, and a split has one digest
// in every run, a different one from the other splits'.
func checkInputs(t *testing.T, runs []tracking.RunInfo, sum *Summary, trained, refit map[string]int) {
	t.Helper()
	name := filepath.Base(sum.Dataset)
	source := `{"uri": "` + tracking.FileURI(absPath(sum.Dataset)) + `"}`
	digests := map[string]string{} // context and profile -> digest
	for _, r := range runs {
		want := map[string]int{}
		base := trained
		if r.Params["refit"] == "true" {
			base = refit
		}
		for k, v := range base {
			want[k] = v
		}
		if r.ID == sum.ChampionRunID {
			want[tracking.ContextTest] = sum.Test
		}
		got := map[string]int{}
		for _, in := range r.Inputs {
			d := in.Dataset
			if d.Name != name || d.SourceType != tracking.SourceTypeLocal || d.Source != source {
				t.Errorf("run %s: input %+v; want name %q, local source %s", r.Name, d, name, source)
			}
			var p struct {
				NumImages  int `json:"num_images"`
				NumClasses int `json:"num_classes"`
			}
			if err := json.Unmarshal([]byte(d.Profile), &p); err != nil || p.NumClasses != len(sum.Classes) {
				t.Errorf("run %s: profile %q (%v)", r.Name, d.Profile, err)
			}
			got[in.Context()] = p.NumImages
			key := in.Context() + " " + d.Profile
			if old, ok := digests[key]; ok && old != d.Digest {
				t.Errorf("run %s: %s split digest %s, another run's %s", r.Name, in.Context(), d.Digest, old)
			}
			digests[key] = d.Digest
		}
		if len(got) != len(want) {
			t.Errorf("run %s: inputs %v, want %v", r.Name, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("run %s: %s input of %d images, want %d", r.Name, k, got[k], v)
			}
		}
	}
	seen := map[string]string{}
	for k, d := range digests {
		if other, ok := seen[d]; ok {
			t.Errorf("splits %s and %s have the same digest %s", k, other, d)
		}
		seen[d] = k
	}
}
