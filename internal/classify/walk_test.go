package classify

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"petbreed/internal/imaging"
)

// TestListFiles: keys are paths below the argument (through links too),
// file arguments are kept whatever their name, hidden entries and
// non-images are left out, and each skip says why (a named pipe would
// hang a reader). The files are empty:
// listing never opens them.
func TestListFiles(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, rel string) {
		if err := os.Symlink(target, filepath.Join(root, rel)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"d/b.png", "d/a.JPG", "d/notes.txt", "d/.hidden.jpg", "d/.git/x.jpg", "d/z/y.webp", "other/o.gif", "file.data"} {
		mk(f)
	}
	link("../other", "d/ln")
	link("z", "d/zz")
	link("..", "d/z/loop")
	link("nowhere.png", "d/gone.png")
	if err := syscall.Mkfifo(filepath.Join(root, "d", "pipe.jpg"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(root, "d")
	l := ListFiles([]string{d, filepath.Join(root, "file.data"), filepath.Join(root, "empty"), filepath.Join(root, "absent")}, imaging.HasImageExt)

	var got [][2]string
	for _, in := range l.Inputs {
		got = append(got, [2]string{strings.TrimPrefix(in.Path, root+"/"), in.Key})
	}
	want := [][2]string{
		{"d/a.JPG", "a.JPG"}, {"d/b.png", "b.png"}, {"d/ln/o.gif", "ln/o.gif"},
		{"d/z/y.webp", "z/y.webp"}, {"d/zz/y.webp", "zz/y.webp"},
		{"file.data", "file.data"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("inputs:\n got %v\nwant %v", got, want)
	}
	var skipped []string
	for _, s := range l.Skipped {
		skipped = append(skipped, strings.TrimPrefix(s.Path, root+"/")+": "+s.Reason)
	}
	for i, w := range []string{"d/gone.png: broken symbolic link", "d/pipe.jpg: not a regular file", "d/z/loop: symbolic link loop (back to " + d + ")", "d/zz/loop: symbolic link loop"} {
		if i >= len(skipped) || !strings.HasPrefix(skipped[i], w) {
			t.Errorf("skipped %v, want %d: %q", skipped, i, w)
		}
	}
	if len(skipped) != 4 {
		t.Errorf("skipped %v", skipped)
	}
	if len(l.Errors) != 2 || !strings.Contains(l.Errors[0].Error(), "empty: no image files found") ||
		!strings.Contains(l.Errors[1].Error(), "absent") {
		t.Errorf("errors %v", l.Errors)
	}
}
