package pull

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// petsServer serves small archives shaped like the real ones under /mirror/.
func petsServer(t *testing.T) (*testServer, Artifact, Artifact) {
	t.Helper()
	images := tarGz(t,
		dirEntry("images/"),
		file("images/Abyssinian_1.jpg", "jpeg 1"),
		file("images/Bengal_2.jpg", "jpeg 2"),
	)
	annotations := tarGz(t,
		dirEntry("annotations/"),
		file("annotations/trainval.txt", "Abyssinian_1 1 1 1\n"),
		file("annotations/test.txt", "Bengal_2 2 1 2\n"),
		dirEntry("annotations/trimaps/"),
		file("annotations/trimaps/Abyssinian_1.png", "png"),
	)
	s := newTestServer(t, map[string][]byte{"/mirror/images.tar.gz": images, "/mirror/annotations.tar.gz": annotations})
	img := Artifact{Name: "images.tar.gz", URL: deadURL + "images.tar.gz", MD5: md5Hex(images)}
	ann := Artifact{Name: "annotations.tar.gz", URL: deadURL + "annotations.tar.gz", MD5: md5Hex(annotations), Size: int64(len(annotations))}
	return s, img, ann
}

func TestPets(t *testing.T) {
	s, img, ann := petsServer(t)
	dir := filepath.Join(t.TempDir(), "data", "oxford-iiit-pet")
	opt := fast(Options{BaseURL: s.URL + "/mirror", Artifacts: []Artifact{img, ann}})
	ctx := context.Background()

	var prog bytes.Buffer
	opt.Progress = &prog
	if err := Pets(ctx, dir, opt); err != nil {
		t.Fatal(err)
	}
	want := []string{
		MarkerPrefix + "annotations.tar.gz", MarkerPrefix + "images.tar.gz",
		"annotations/", "annotations.tar.gz", "annotations/test.txt", "annotations/trainval.txt",
		"annotations/trimaps/", "annotations/trimaps/Abyssinian_1.png",
		"images/", "images.tar.gz", "images/Abyssinian_1.jpg", "images/Bengal_2.jpg",
	}
	sort.Strings(want)
	if got := tree(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tree = %q\nwant   %q", got, want)
	}
	if s.count() != 2 {
		t.Errorf("%d requests, want 2", s.count())
	}
	marker, _ := os.ReadFile(filepath.Join(dir, MarkerPrefix+"images.tar.gz"))
	if string(marker) != "archive images.tar.gz\nmd5 "+img.MD5+"\n" {
		t.Errorf("marker = %q", marker)
	}
	for _, s := range []string{"annotations.tar.gz: downloaded", "images.tar.gz: extracting", "images.tar.gz: extracted 2 files"} {
		if !strings.Contains(prog.String(), s) {
			t.Errorf("progress output %q lacks %q", prog.String(), s)
		}
	}

	// Done already: no request, no extraction, even without the archives.
	prog.Reset()
	os.Remove(filepath.Join(dir, "images.tar.gz"))
	os.WriteFile(filepath.Join(dir, "images", "Bengal_2.jpg"), []byte("edited"), 0o644)
	if err := Pets(ctx, dir, opt); err != nil {
		t.Fatal(err)
	}
	if s.count() != 2 {
		t.Errorf("%d requests after a second run, want still 2", s.count())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "images", "Bengal_2.jpg")); string(b) != "edited" {
		t.Error("a second run extracted again")
	}
	if !strings.Contains(prog.String(), "images.tar.gz: already extracted") {
		t.Errorf("progress output = %q", prog.String())
	}

	// A folder removed since: extracted again, from the archive still there.
	os.RemoveAll(filepath.Join(dir, "annotations"))
	if err := Pets(ctx, dir, opt); err != nil {
		t.Fatal(err)
	}
	if s.count() != 2 {
		t.Errorf("%d requests, want still 2 (the annotations archive is there)", s.count())
	}
	if _, err := os.Stat(filepath.Join(dir, "annotations", "trainval.txt")); err != nil {
		t.Error(err)
	}

	// A marker for other checksums (a new archive version): done again.
	os.WriteFile(filepath.Join(dir, MarkerPrefix+"images.tar.gz"), []byte("archive images.tar.gz\nmd5 0\n"), 0o644)
	if err := Pets(ctx, dir, opt); err != nil {
		t.Fatal(err)
	}
	if s.count() != 3 {
		t.Errorf("%d requests, want 3 (images downloaded again)", s.count())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "images", "Bengal_2.jpg")); string(b) != "jpeg 2" {
		t.Errorf("Bengal_2.jpg = %q after re-extraction", b)
	}
}

func TestPetsErrors(t *testing.T) {
	s, img, ann := petsServer(t)
	dir := t.TempDir()

	// A hostile archive behind the right checksum is still refused, and
	// leaves no marker.
	evil := tarGz(t, file("images/ok.jpg", "x"), file("../evil.jpg", "x"))
	s.mu.Lock()
	s.files["/mirror/images.tar.gz"] = evil
	s.mu.Unlock()
	img.MD5 = md5Hex(evil)
	arts := []Artifact{img, ann}
	err := Pets(context.Background(), filepath.Join(dir, "pets"), fast(Options{BaseURL: s.URL + "/mirror", Artifacts: arts}))
	if !errors.Is(err, ErrUnsafeArchive) {
		t.Fatalf("err = %v, want an unsafe archive", err)
	}
	assertAbsent(t, filepath.Join(dir, "evil.jpg"), filepath.Join(dir, "pets", MarkerPrefix+"images.tar.gz"))

	// A missing file on the mirror.
	err = Pets(context.Background(), filepath.Join(dir, "pets2"), fast(Options{BaseURL: s.URL + "/elsewhere", Artifacts: arts}))
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
		t.Fatalf("err = %v, want a 404", err)
	}
}

func TestBackbone(t *testing.T) {
	model := randomBytes(50_000, 3)
	s := newTestServer(t, map[string][]byte{"/models/mobilenetv2-12.onnx": model})
	arts := []Artifact{{
		Name: "mobilenetv2-12.onnx", URL: deadURL + "mobilenetv2-12.onnx", SHA256: sha256Hex(model), Size: int64(len(model)),
	}}
	dir := t.TempDir()
	for i := range 2 {
		path, err := Backbone(context.Background(), dir, fast(Options{BaseURL: s.URL + "/models", Artifacts: arts}))
		if err != nil {
			t.Fatal(err)
		}
		if path != filepath.Join(dir, "mobilenetv2-12.onnx") {
			t.Errorf("path = %s", path)
		}
		assertFile(t, path, model)
		if s.count() != 1 {
			t.Errorf("run %d: %d requests, want 1", i+1, s.count())
		}
	}
}

func TestArchiveFolder(t *testing.T) {
	for in, want := range map[string]string{"images.tar.gz": "images", "annotations.tgz": "annotations", "x.tar": "x", "plain": "plain"} {
		if got := archiveFolder(in); got != want {
			t.Errorf("archiveFolder(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPetsExtractLimits: Options.Extract reaches the extraction, and an
// archive over it leaves no marker.
func TestPetsExtractLimits(t *testing.T) {
	s, img, ann := petsServer(t)
	for _, c := range []struct {
		what string
		lim  Limits
		want string
	}{
		{"entries", Limits{MaxFiles: 2}, "more than 2 entries"},
		{"file size", Limits{MaxFileSize: 5}, "over the limit of 5"},
		{"total size", Limits{MaxTotalSize: 20}, "add up to more than 20 bytes"},
	} {
		dir := filepath.Join(t.TempDir(), "pets")
		err := Pets(context.Background(), dir, fast(Options{BaseURL: s.URL + "/mirror", Artifacts: []Artifact{img, ann}, Extract: c.lim}))
		if !errors.Is(err, ErrUnsafeArchive) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want an unsafe archive with %q", c.what, err, c.want)
		}
		assertAbsent(t, filepath.Join(dir, MarkerPrefix+"annotations.tar.gz"))
	}
}
