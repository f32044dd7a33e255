package dataset

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"petbreed/internal/testassets"
)

func TestLoadPets(t *testing.T) {
	ds, err := Load(testassets.Path(t, "pets-3breeds"))
	if err != nil {
		t.Fatal(err)
	}
	if ds.Layout != LayoutPets {
		t.Errorf("layout %q", ds.Layout)
	}
	// Class ids 1 (Abyssinian), 2 (american_bulldog) and 6 (Bengal), in id order, with readable names.
	if want := []string{"Abyssinian", "American Bulldog", "Bengal"}; !reflect.DeepEqual(ds.Classes, want) {
		t.Errorf("classes %q, want %q", ds.Classes, want)
	}
	if len(ds.TrainVal) != 300 || len(ds.Test) != 298 {
		t.Errorf("trainval %d, test %d; want 300, 298", len(ds.TrainVal), len(ds.Test))
	}
	seen := map[string]bool{}
	for _, s := range ds.TrainVal {
		seen[s.ID] = true
	}
	for _, s := range ds.Test {
		if seen[s.ID] {
			t.Fatalf("%s is in both trainval and test", s.ID)
		}
	}
	for _, s := range append(ds.TrainVal, ds.Test...) {
		want := map[string]int{"Abyssinian": 0, "american_bulldog": 1, "Bengal": 2}[breedOf(s.ID)]
		if s.Label != want || !strings.HasSuffix(s.Path, s.ID+".jpg") {
			t.Fatalf("%+v: label %d, want %d", s, s.Label, want)
		}
	}
	train, val := Split(ds.TrainVal, 0.2, 42)
	if len(train) != 240 || len(val) != 60 {
		t.Errorf("split %d/%d, want 240/60", len(train), len(val))
	}
	per := map[int]int{}
	for _, s := range val {
		per[s.Label]++
	}
	if per[0] != 20 || per[1] != 20 || per[2] != 20 {
		t.Errorf("validation not stratified: %v", per)
	}
}

func TestSplitDeterministic(t *testing.T) {
	var samples []Sample
	for i := 0; i < 50; i++ {
		samples = append(samples, Sample{ID: "img" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Label: i % 3})
	}
	_, v1 := Split(samples, 0.2, 7)
	rev := append([]Sample(nil), samples...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	_, v2 := Split(rev, 0.2, 7)
	ids := func(ss []Sample) string {
		var b []string
		for _, s := range ss {
			b = append(b, s.ID)
		}
		return strings.Join(b, ",")
	}
	if ids(v1) != ids(v2) {
		t.Error("the split depends on the input order")
	}
	if _, v3 := Split(samples, 0.2, 8); ids(v3) == ids(v1) {
		t.Error("another seed gave the same split")
	}
	// Tiny classes keep at least one training sample and give one to validation.
	tr, va := Split([]Sample{{ID: "a", Label: 0}, {ID: "b", Label: 0}, {ID: "c", Label: 1}}, 0.2, 1)
	if len(tr) != 2 || len(va) != 1 {
		t.Errorf("tiny split %d/%d", len(tr), len(va))
	}
}

func TestReadableName(t *testing.T) {
	for in, want := range map[string]string{
		"american_bulldog":           "American Bulldog",
		"Abyssinian":                 "Abyssinian",
		"staffordshire_bull_terrier": "Staffordshire Bull Terrier",
		"great-pyrenees":             "Great Pyrenees",
		"british_Shorthair":          "British Shorthair",
	} {
		if got := ReadableName(in); got != want {
			t.Errorf("ReadableName(%q) = %q, want %q", in, got, want)
		}
	}
}

func touch(t *testing.T, p string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFolders(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"cat/a.jpg", "cat/b.PNG", "cat/sub/c.jpeg", "cat/.hidden.jpg", "cat/notes.txt", "dog_breed/d.webp", ".git/x.jpg"} {
		touch(t, filepath.Join(dir, p))
	}
	ds, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Layout != LayoutFolders || !reflect.DeepEqual(ds.Classes, []string{"Cat", "Dog Breed"}) || len(ds.TrainVal) != 4 || len(ds.Test) != 0 {
		t.Errorf("%+v", ds)
	}
	// train/ and test/ folders give the test split.
	dir2 := t.TempDir()
	for _, p := range []string{"train/a/1.jpg", "train/b/2.jpg", "test/a/3.jpg", "test/b/4.jpg"} {
		touch(t, filepath.Join(dir2, p))
	}
	ds, err = Load(dir2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.TrainVal) != 2 || len(ds.Test) != 2 || ds.Test[1].Label != 1 {
		t.Errorf("%+v", ds)
	}
}

func TestLoadErrors(t *testing.T) {
	mk := func(files map[string]string) string {
		dir := t.TempDir()
		for p, c := range files {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
			os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
		}
		return dir
	}
	tests := []struct {
		name  string
		files map[string]string
		msg   string
	}{
		{"missing image", map[string]string{"annotations/trainval.txt": "cat_1 1 1 1\ndog_1 2 2 1\n", "images/cat_1.jpg": "x"}, "missing"},
		{"bad line", map[string]string{"annotations/trainval.txt": "cat_1 1 1\n"}, "CLASS-ID"},
		{"bad class id", map[string]string{"annotations/trainval.txt": "cat_1 x 1 1\n"}, "class id"},
		{"conflicting names", map[string]string{"annotations/trainval.txt": "cat_1 1 1 1\ndog_1 1 2 1\n"}, "names both"},
		{"one class", map[string]string{"annotations/trainval.txt": "# comment\ncat_1 1 1 1\n", "images/cat_1.jpg": "x"}, "at least 2"},
		{"empty folder dataset", map[string]string{"readme.txt": "x"}, "neither"},
		{"empty class folder", map[string]string{"a/1.jpg": "x", "b/notes.txt": "x"}, "no images"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(mk(tt.files))
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want %q", err, tt.msg)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("missing dir loaded")
	}
}
