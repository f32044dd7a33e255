package classify

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Input is one file found by ListFiles.
type Input struct {
	Path string // to open: the argument joined with the path below it
	// Key is the path relative to the argument it was found under, with
	// forward slashes (a file argument's key is its base name): the same on
	// every machine wherever the tree is mounted, the sharding key.
	Key string
}

// Skipped is an entry ListFiles left out, and why. It is a notice, not a
// failure: nothing that could be classified was lost.
type Skipped struct {
	Path   string
	Reason string
}

func (s Skipped) Error() string { return fmt.Sprintf("skipped %s: %s", s.Path, s.Reason) }

// Listing is what ListFiles found.
type Listing struct {
	Inputs  []Input
	Skipped []Skipped // broken links, link loops, special files
	Errors  []error   // arguments or directories that could not be read
}

// ListFiles expands arguments into files: a file (or a link to one) as
// given, whatever its name; a directory searched recursively for the files
// whose names match, following symbolic links to files and to directories.
// Hidden entries (names starting with a dot) are left out. As with
// find -L, a file reached through two paths is listed under each; a link
// back to a directory being searched (a loop, detected by device and inode)
// is skipped and reported, as is a broken link. Each directory argument's
// files are sorted by path, so the order is the same on every run.
func ListFiles(args []string, match func(name string) bool) Listing {
	var l Listing
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			if lst, lerr := os.Lstat(a); lerr == nil && lst.Mode()&fs.ModeSymlink != 0 {
				err = fmt.Errorf("%s: %s", a, linkProblem(a, err))
			}
			l.Errors = append(l.Errors, err)
			continue
		}
		if !st.IsDir() {
			l.Inputs = append(l.Inputs, Input{Path: a, Key: filepath.Base(a)})
			continue
		}
		w := walker{match: match, listing: &l}
		start := len(l.Inputs)
		w.walk(a, "", []ancestor{{fileID(a, st), a}})
		found := l.Inputs[start:]
		sort.Slice(found, func(i, j int) bool { return found[i].Path < found[j].Path })
		if len(found) == 0 {
			l.Errors = append(l.Errors, fmt.Errorf("%s: no image files found", a))
		}
	}
	return l
}

type walker struct {
	match   func(string) bool
	listing *Listing
}

// ancestor is a directory being searched: its id and path.
type ancestor struct{ id, path string }

// walk searches dir (whose key is rel); ancestors are dir and the
// directories above it.
func (w *walker) walk(dir, rel string, ancestors []ancestor) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		w.listing.Errors = append(w.listing.Errors, err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		p, key := filepath.Join(dir, name), path.Join(rel, name)
		mode := e.Type() // from the directory entry: no stat for plain files
		var info fs.FileInfo
		var err error
		switch {
		case mode&fs.ModeSymlink != 0:
			info, err = os.Stat(p)
			if err != nil {
				w.skip(p, linkProblem(p, err))
				continue
			}
			mode = info.Mode().Type()
		case mode.IsDir():
			if info, err = e.Info(); err != nil {
				w.listing.Errors = append(w.listing.Errors, err)
				continue
			}
		}
		switch {
		case mode.IsDir():
			id := fileID(p, info)
			if a, loop := find(ancestors, id); loop {
				w.skip(p, "symbolic link loop (back to "+a+")")
				continue
			}
			w.walk(p, key, append(ancestors, ancestor{id, p}))
		case !w.match(name):
		case mode.IsRegular():
			w.listing.Inputs = append(w.listing.Inputs, Input{Path: p, Key: key})
		default:
			w.skip(p, "not a regular file ("+mode.String()+")")
		}
	}
}

func (w *walker) skip(p, reason string) {
	w.listing.Skipped = append(w.listing.Skipped, Skipped{Path: p, Reason: reason})
}

// linkProblem says why the link at p, whose target could not be stat'ed
// (err), leads nowhere.
func linkProblem(p string, err error) string {
	target, _ := os.Readlink(p)
	switch {
	case errors.Is(err, syscall.ELOOP):
		return "symbolic link loop (" + p + " -> " + target + ")"
	case errors.Is(err, fs.ErrNotExist):
		return "broken symbolic link (to " + target + ", which does not exist)"
	}
	return "symbolic link to " + target + ": " + err.Error()
}

// fileID identifies a directory whatever path reaches it: device and inode,
// else (on a system without them) the path with every link resolved.
func fileID(p string, info fs.FileInfo) string {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		if abs, err := filepath.Abs(r); err == nil {
			return abs
		}
	}
	return p
}

// find returns the path of the ancestor with this id.
func find(ancestors []ancestor, id string) (string, bool) {
	for _, a := range ancestors {
		if a.id == id {
			return a.path, true
		}
	}
	return "", false
}
