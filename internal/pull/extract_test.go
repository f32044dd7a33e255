package pull

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// writeArchive stores data as a .tar.gz in its own temporary directory.
func writeArchive(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test.tar.gz")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tree lists the files under dir as "path" or "path/" (directories) or
// "path -> target" (symbolic links), sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, filepath.ToSlash(rel)+" -> "+target)
		case d.IsDir():
			out = append(out, filepath.ToSlash(rel)+"/")
		default:
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestExtractPetsShaped(t *testing.T) {
	archive := writeArchive(t, tarGz(t,
		tarEntry{name: "./", typ: tar.TypeDir},
		dirEntry("images/"),
		file("images/Abyssinian_1.jpg", "jpeg bytes"),
		tarEntry{name: "./images/Bengal_2.jpg", body: "more jpeg", mode: 0o4755}, // setuid, executable
		file("annotations/trainval.txt", "Abyssinian_1 1 1 1\n"),
		tarEntry{name: "annotations/trimaps/", typ: tar.TypeDir, mode: 0o777},
		file("annotations/trimaps/Abyssinian_1.png", "png"),
		file("annotations/empty.txt", ""),
		tarEntry{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
	))
	dir := filepath.Join(t.TempDir(), "pets")
	n, err := ExtractTarGz(context.Background(), archive, dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("files = %d, want 5", n)
	}
	want := []string{"annotations/", "annotations/empty.txt", "annotations/trainval.txt", "annotations/trimaps/",
		"annotations/trimaps/Abyssinian_1.png", "images/", "images/Abyssinian_1.jpg", "images/Bengal_2.jpg"}
	if got := tree(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tree = %q\nwant   %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "images", "Bengal_2.jpg")); string(b) != "more jpeg" {
		t.Errorf("content %q", b)
	}
	umask := currentUmask(t)
	for p, want := range map[string]os.FileMode{
		"images/Bengal_2.jpg":     0o644,
		"annotations/trimaps":     fs.ModeDir | 0o755,
		"images/Abyssinian_1.jpg": 0o644,
	} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode(); got != want&^umask {
			t.Errorf("%s: mode %v, want %v", p, got, want&^umask)
		}
	}
}

func currentUmask(t *testing.T) os.FileMode {
	p := filepath.Join(t.TempDir(), "probe")
	os.WriteFile(p, nil, 0o777)
	st, _ := os.Stat(p)
	return 0o777 &^ st.Mode().Perm()
}

func TestExtractOverwrites(t *testing.T) {
	dir := t.TempDir()
	first := writeArchive(t, tarGz(t, file("images/a.jpg", "first version, longer"), file("annotations/list.txt", "1")))
	second := writeArchive(t, tarGz(t, file("images/a.jpg", "second"), file("images/b.jpg", "b")))
	for i, archive := range []string{first, first, second} {
		if _, err := ExtractTarGz(context.Background(), archive, dir, Limits{}); err != nil {
			t.Fatalf("extraction %d: %v", i, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "images", "a.jpg")); string(b) != "second" {
		t.Errorf("a.jpg = %q after extracting over it", b)
	}
	want := []string{"annotations/", "annotations/list.txt", "images/", "images/a.jpg", "images/b.jpg"}
	if got := tree(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("tree = %q (temporary files left?)", got)
	}
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	small := Limits{MaxFiles: 4, MaxFileSize: 1000, MaxTotalSize: 1500}
	tests := []struct {
		name    string
		entries []tarEntry
		lim     Limits
		want    string // in the error
		written []string
	}{
		{"parent dir", []tarEntry{file("../evil", "x")}, Limits{}, `"../evil": ".." in path refused`, nil},
		{"absolute", []tarEntry{file("/abs-evil", "x")}, Limits{}, `"/abs-evil": absolute path refused`, nil},
		{"absolute into the test dir", []tarEntry{file("@BASE@/evil", "x")}, Limits{}, "absolute path refused", nil},
		{"dot dot inside", []tarEntry{file("images/ok.jpg", "x"), file("a/../../evil", "x")}, Limits{}, `"a/../../evil": ".." in path refused`, []string{"images/", "images/ok.jpg"}},
		{"dot dot that stays inside", []tarEntry{file("images/../x.jpg", "x")}, Limits{}, `".." in path refused`, nil},
		{"dot dot directory", []tarEntry{dirEntry("../evil/")}, Limits{}, `".." in path refused`, nil},
		{"backslash", []tarEntry{file(`..\evil`, "x")}, Limits{}, "backslash", nil},
		{"symlink", []tarEntry{{name: "images/link", typ: tar.TypeSymlink, link: "/etc/passwd"}}, Limits{}, `"images/link": symbolic link (to "/etc/passwd") refused`, nil},
		{"relative symlink", []tarEntry{{name: "images", typ: tar.TypeSymlink, link: ".."}, file("images/evil", "x")}, Limits{}, "symbolic link", nil},
		{"hard link", []tarEntry{file("a", "x"), {name: "images/hard", typ: tar.TypeLink, link: "../../outside"}}, Limits{}, `"images/hard": hard link (to "../../outside") refused`, []string{"a"}},
		{"char device", []tarEntry{{name: "dev/null", typ: tar.TypeChar}}, Limits{}, `"dev/null": device file refused`, nil},
		{"block device", []tarEntry{{name: "sda", typ: tar.TypeBlock}}, Limits{}, `"sda": device file refused`, nil},
		{"fifo", []tarEntry{{name: "pipe", typ: tar.TypeFifo}}, Limits{}, `"pipe": named pipe (fifo) refused`, nil},
		{"unknown type", []tarEntry{{name: "odd", typ: 'Z'}}, Limits{}, `"odd": entry type 'Z' not supported`, nil},
		{"file named like the directory", []tarEntry{file(".", "x")}, Limits{}, "cannot be the extraction directory", nil},
		{"file over MaxFileSize", []tarEntry{file("big", strings.Repeat("x", 1001))}, small, `"big": 1001 bytes, over the limit of 1000 (MaxFileSize)`, nil},
		{"header claims a huge file", []tarEntry{file("ok", "x"), {name: "huge", size: 1 << 40}}, Limits{}, `"huge": 1099511627776 bytes, over the limit of 1073741824`, []string{"ok"}},
		{"too many entries", []tarEntry{file("1", ""), file("2", ""), dirEntry("d/"), file("d/3", ""), file("4", "")}, small, "more than 4 entries (limit MaxFiles)", []string{"1", "2", "d/", "d/3"}},
		{"total over MaxTotalSize", []tarEntry{file("a", strings.Repeat("a", 800)), file("b", strings.Repeat("b", 800))}, small, `"b": the archive's files add up to more than 1500 bytes`, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			for i := range tt.entries {
				tt.entries[i].name = strings.ReplaceAll(tt.entries[i].name, "@BASE@", base)
			}
			archive := writeArchive(t, tarGz(t, tt.entries...))
			dir := filepath.Join(base, "out")
			_, err := ExtractTarGz(context.Background(), archive, dir, tt.lim)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %s", err, tt.want)
			}
			if !errors.Is(err, ErrUnsafeArchive) {
				t.Errorf("errors.Is(%v, ErrUnsafeArchive) = false", err)
			}
			if got := tree(t, base); len(got) == 0 || got[0] != "out/" {
				t.Fatalf("base = %q: something was written outside out/", got)
			} else if strings.Join(got[1:], " ") != strings.Join(prefixed("out/", tt.written), " ") {
				t.Errorf("written %q, want %q", got[1:], prefixed("out/", tt.written))
			}
			assertAbsent(t, "/abs-evil")
		})
	}
}

func prefixed(prefix string, names []string) []string {
	out := []string{}
	for _, n := range names {
		out = append(out, prefix+n)
	}
	return out
}

func TestExtractHeaderShorterThanContent(t *testing.T) {
	// A header that under-reports its file: tar stops at the claimed size and
	// reads the rest as the next header, which is garbage.
	raw := bytes.Repeat([]byte("A"), 4096)
	archive := writeArchive(t, tarGz(t, tarEntry{name: "images/x.jpg", size: 10, raw: raw}))
	dir := t.TempDir()
	_, err := ExtractTarGz(context.Background(), archive, dir, Limits{})
	if err == nil {
		t.Fatal("want an error for a corrupt archive")
	}
	if st, err := os.Stat(filepath.Join(dir, "images", "x.jpg")); err == nil && st.Size() > 10 {
		t.Errorf("x.jpg has %d bytes, more than its header's 10", st.Size())
	}
}

func TestExtractCountsActualBytes(t *testing.T) {
	// The byte limits hold for the data read, whatever a header claims.
	for _, tt := range []struct {
		name string
		lim  Limits
		want string
	}{
		{"file", Limits{MaxFileSize: 100, MaxTotalSize: 10_000}, "more than 100 bytes, over the limit (MaxFileSize)"},
		{"total", Limits{MaxFileSize: 10_000, MaxTotalSize: 250}, "add up to more than 250 bytes (MaxTotalSize)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			x := &extractor{ctx: context.Background(), root: root, lim: tt.lim.withDefaults(), buf: make([]byte, 64), total: 200}
			err = x.writeFile("images/x.jpg", bytes.NewReader(make([]byte, 1000)))
			var le limitError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a limit error %q", err, tt.want)
			}
			if got := tree(t, dir); strings.Join(got, " ") != "images/" {
				t.Errorf("left behind: %q", got)
			}
		})
	}
}

func TestExtractSymlinkInsideDir(t *testing.T) {
	// A symbolic link already in the target directory must not carry an
	// entry outside it.
	base := t.TempDir()
	dir := filepath.Join(base, "out")
	outside := filepath.Join(base, "outside")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(outside, 0o755)
	if err := os.Symlink(outside, filepath.Join(dir, "images")); err != nil {
		t.Fatal(err)
	}
	archive := writeArchive(t, tarGz(t, file("images/x.jpg", "x")))
	if _, err := ExtractTarGz(context.Background(), archive, dir, Limits{}); err == nil {
		t.Fatal("want an error")
	}
	if got := tree(t, outside); len(got) != 0 {
		t.Errorf("written outside: %q", got)
	}
}

func TestExtractErrors(t *testing.T) {
	notGzip := writeArchive(t, []byte("this is not gzip"))
	if _, err := ExtractTarGz(context.Background(), notGzip, t.TempDir(), Limits{}); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("not gzip: err = %v", err)
	}
	if _, err := ExtractTarGz(context.Background(), filepath.Join(t.TempDir(), "missing.tar.gz"), t.TempDir(), Limits{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing archive: err = %v", err)
	}
	archive := writeArchive(t, tarGz(t, file("a", "x")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := ExtractTarGz(ctx, archive, dir, Limits{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	if got := tree(t, dir); len(got) != 0 {
		t.Errorf("cancelled extraction wrote %q", got)
	}
}
