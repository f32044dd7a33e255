package pull

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rawTar is an uncompressed tar archive of entries, for the seeds.
func rawTar(f *testing.F, entries ...tarEntry) []byte {
	f.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			f.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			f.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

func tarSeeds(f *testing.F) [][]byte {
	return [][]byte{
		rawTar(f, dirEntry("images/"), file("images/a.jpg", "jpeg"), file("images/b.jpg", strings.Repeat("x", 600))),
		rawTar(f, file("../evil", "x")),
		rawTar(f, file("/abs", "x")),
		rawTar(f, file("a/../../b", "x")),
		rawTar(f, tarEntry{name: "link", typ: tar.TypeSymlink, link: "/etc"}, file("link/passwd", "x")),
		rawTar(f, tarEntry{name: "hard", typ: tar.TypeLink, link: "../x"}),
		rawTar(f, dirEntry("d/"), file("d", "x"), file("d/e", "y")),
		rawTar(f, file("a", "1"), file("a", "22"), file("./a", "333")),
		rawTar(f, file(".", "x")),
		rawTar(f, file("a\\b", "x")),
		rawTar(f, tarEntry{name: "fifo", typ: tar.TypeFifo}),
		{},
		bytes.Repeat([]byte{0}, 1024),
	}
}

// checkExtracted asserts what extraction must never break, error or not:
// nothing outside dir (its parent holds only dir), no links, no temporary
// files left, and the limits held.
func checkExtracted(t *testing.T, parent, dir string, lim Limits) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(dir) {
			t.Fatalf("extraction wrote %s outside its directory", filepath.Join(parent, e.Name()))
		}
	}
	var total int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			t.Fatalf("a symbolic link was created: %s", p)
		}
		if strings.HasPrefix(d.Name(), ".petbreed-tmp-") {
			t.Fatalf("temporary file left: %s", p)
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Size() > lim.MaxFileSize {
				t.Fatalf("%s is %d bytes, over MaxFileSize %d", p, fi.Size(), lim.MaxFileSize)
			}
			total += fi.Size()
		}
		return nil
	})
	if total > lim.MaxTotalSize {
		t.Fatalf("%d bytes extracted, over MaxTotalSize %d", total, lim.MaxTotalSize)
	}
}

// FuzzExtractTar: any bytes as a tar stream, with small limits. It never
// panics or hangs, never writes outside the directory, creates no link,
// and holds the limits.
func FuzzExtractTar(f *testing.F) {
	for _, s := range tarSeeds(f) {
		f.Add(s, uint8(4), uint16(1000))
	}
	f.Fuzz(func(t *testing.T, data []byte, maxFiles uint8, maxTotal uint16) {
		lim := Limits{MaxFiles: int(maxFiles%16) + 1, MaxFileSize: 512, MaxTotalSize: int64(maxTotal%4096) + 1}
		parent := t.TempDir()
		dir := filepath.Join(parent, "out")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		files, err := extractTar(ctx, bytes.NewReader(data), dir, lim)
		if ctx.Err() != nil {
			t.Fatalf("extraction took over 10 s (%v)", err)
		}
		if files > lim.MaxFiles {
			t.Fatalf("%d files written, over MaxFiles %d", files, lim.MaxFiles)
		}
		checkExtracted(t, parent, dir, lim)
	})
}

// FuzzExtractTarGz: any bytes as a .tar.gz file, through ExtractTarGz.
func FuzzExtractTarGz(f *testing.F) {
	for _, s := range tarSeeds(f) {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		gz.Write(s)
		gz.Close()
		f.Add(buf.Bytes())
	}
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		archive := filepath.Join(t.TempDir(), "a.tar.gz")
		if err := os.WriteFile(archive, data, 0o644); err != nil {
			t.Fatal(err)
		}
		lim := Limits{MaxFiles: 8, MaxFileSize: 1 << 10, MaxTotalSize: 4 << 10}
		dir := filepath.Join(parent, "out")
		_, err := ExtractTarGz(context.Background(), archive, dir, lim)
		if err != nil && !strings.Contains(err.Error(), "extract ") && !os.IsNotExist(err) {
			t.Fatalf("error %q does not name the archive", err)
		}
		checkExtracted(t, parent, dir, lim)
	})
}
