package pull

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits bound what ExtractTarGz accepts. Zero fields take the defaults.
type Limits struct {
	MaxFiles     int   // entries of any kind; default 100_000
	MaxFileSize  int64 // bytes in one file; default 1 GiB
	MaxTotalSize int64 // bytes in all files; default 4 GiB (the pets images archive is ~800 MB)
}

// Default limits.
const (
	DefaultMaxFiles     = 100_000
	DefaultMaxFileSize  = 1 << 30
	DefaultMaxTotalSize = 4 << 30
)

func (l Limits) withDefaults() Limits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultMaxTotalSize
	}
	return l
}

// ErrUnsafeArchive is what errors.Is matches for an archive entry that
// ExtractTarGz refuses (a path leaving the directory, a link, a device, an
// entry over the limits).
var ErrUnsafeArchive = errors.New("unsafe archive")

// ExtractTarGz extracts the gzip-compressed tar archive into dir, keeping the
// archive's own folders (the pets archives give dir/images/... and
// dir/annotations/...), and returns the number of regular files written.
//
// Entries are checked before anything is written: absolute names, ".."
// components, symbolic and hard links, devices and fifos are refused with an
// error naming the entry (pax global headers are skipped; any other type is
// refused), as are archives over lim, which is enforced on the bytes actually
// read. All file operations go through an os.Root on dir, so even a symbolic
// link already inside dir cannot lead a write outside it. Directories are
// created 0755 and files 0644 (less the umask; the archive's modes, owners
// and setuid bits are ignored). Each file is written under a temporary name
// and renamed, so extracting again over an existing tree replaces its files.
// On error the files already extracted stay.
func ExtractTarGz(ctx context.Context, archive, dir string, lim Limits) (files int, err error) {
	f, err := os.Open(archive)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("extract %s: %w", archive, err)
	}
	defer gz.Close()
	files, err = extractTar(ctx, gz, dir, lim)
	if err != nil {
		return files, fmt.Errorf("extract %s: %w", archive, err)
	}
	return files, nil
}

// extractTar extracts the tar stream r into dir (ExtractTarGz without the
// file and the gzip layer).
func extractTar(ctx context.Context, r io.Reader, dir string, lim Limits) (files int, err error) {
	lim = lim.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()

	x := &extractor{ctx: ctx, root: root, lim: lim, buf: make([]byte, 256<<10)}
	tr := tar.NewReader(r)
	entries := 0
	for {
		if err := ctx.Err(); err != nil {
			return files, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return files, err
		}
		entries++
		if entries > lim.MaxFiles {
			return files, fmt.Errorf("%w: more than %d entries (limit MaxFiles)", ErrUnsafeArchive, lim.MaxFiles)
		}
		wrote, err := x.entry(hdr, tr)
		if err != nil {
			return files, err
		}
		if wrote {
			files++
		}
	}
	return files, nil
}

type extractor struct {
	ctx   context.Context
	root  *os.Root
	lim   Limits
	total int64 // bytes written so far
	buf   []byte
}

// entry handles one archive entry; wrote says whether a regular file was
// written.
func (x *extractor) entry(hdr *tar.Header, r io.Reader) (wrote bool, err error) {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: entry %q: %s", ErrUnsafeArchive, hdr.Name, fmt.Sprintf(format, args...))
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return false, nil // pax metadata for the whole archive, no file
	case tar.TypeSymlink:
		return false, refuse("symbolic link (to %q) refused", hdr.Linkname)
	case tar.TypeLink:
		return false, refuse("hard link (to %q) refused", hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return false, refuse("device file refused")
	case tar.TypeFifo:
		return false, refuse("named pipe (fifo) refused")
	case tar.TypeDir, tar.TypeReg:
	default:
		return false, refuse("entry type %q not supported", hdr.Typeflag)
	}
	name, err := localName(hdr.Name)
	if err != nil {
		return false, refuse("%v", err)
	}
	if hdr.Typeflag == tar.TypeDir {
		if name == "." {
			return false, nil
		}
		if err := x.root.MkdirAll(name, 0o755); err != nil {
			return false, refuse("%v", err)
		}
		return false, nil
	}
	if name == "." {
		return false, refuse("a file cannot be the extraction directory itself")
	}
	// The header's claim is checked first (cheap), then the bytes read.
	if hdr.Size > x.lim.MaxFileSize {
		return false, refuse("%d bytes, over the limit of %d (MaxFileSize)", hdr.Size, x.lim.MaxFileSize)
	}
	if x.total+hdr.Size > x.lim.MaxTotalSize {
		return false, refuse("the archive's files add up to more than %d bytes (MaxTotalSize)", x.lim.MaxTotalSize)
	}
	if err := x.writeFile(name, r); err != nil {
		var le limitError
		if errors.As(err, &le) {
			return false, refuse("%s", string(le))
		}
		return false, fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	return true, nil
}

// limitError is a limit reached while copying an entry.
type limitError string

func (e limitError) Error() string { return string(e) }

// writeFile copies r to name through a temporary file, counting the bytes.
func (x *extractor) writeFile(name string, r io.Reader) (err error) {
	if d := path.Dir(name); d != "." {
		if err := x.root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var tmp string
	var f *os.File
	for range 10 {
		tmp = path.Join(path.Dir(name), fmt.Sprintf(".petbreed-tmp-%016x", rand.Uint64()))
		f, err = x.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, os.ErrExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			x.root.Remove(tmp)
		}
	}()
	// Never read more than both limits allow, whatever the header said.
	room := min(x.lim.MaxFileSize, x.lim.MaxTotalSize-x.total)
	var n int64
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		m, rerr := r.Read(x.buf[:min(int64(len(x.buf)), room-n+1)])
		n += int64(m)
		if n > room {
			if n > x.lim.MaxFileSize {
				return limitError(fmt.Sprintf("more than %d bytes, over the limit (MaxFileSize)", x.lim.MaxFileSize))
			}
			return limitError(fmt.Sprintf("the archive's files add up to more than %d bytes (MaxTotalSize)", x.lim.MaxTotalSize))
		}
		if _, err := f.Write(x.buf[:m]); err != nil {
			return err
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	x.total += n
	if err := f.Close(); err != nil {
		return err
	}
	return x.root.Rename(tmp, name)
}

// localName checks an entry name and returns it cleaned, relative to the
// extraction directory ("." for the directory itself).
func localName(raw string) (string, error) {
	switch {
	case raw == "":
		return "", errors.New("empty name")
	case strings.ContainsRune(raw, 0):
		return "", errors.New("NUL byte in name")
	case strings.Contains(raw, `\`):
		return "", errors.New("backslash in name")
	case strings.HasPrefix(raw, "/"):
		return "", errors.New("absolute path refused")
	}
	for _, c := range strings.Split(raw, "/") {
		if c == ".." {
			return "", errors.New(`".." in path refused`)
		}
	}
	name := path.Clean(raw)
	if name != "." && !filepath.IsLocal(name) {
		return "", errors.New("path leaves the extraction directory")
	}
	return name, nil
}
