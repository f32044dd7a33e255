package mlflowrest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The model cache is bounded: after a download, the entries least recently
// used go until the whole cache (every server's folder) holds at most
// Options.CacheMaxBytes. An entry's use is its manifest's modification
// time, touched on each hit. The entry just resolved is never removed, even
// alone over the bound. An entry goes by a rename into a ".tmp-" name, then
// is removed, so another process never reads half of one; leftovers of
// killed downloads (".tmp-" folders) older than staleTemp go too.

// DefaultCacheMaxBytes bounds the model cache (PETBREED_MODEL_CACHE_MAX_BYTES):
// about 140 int8 or 35 fp32 MobileNetV2 models.
const DefaultCacheMaxBytes = 512 << 20

// staleTemp is the age after which a ".tmp-" folder in the cache is a
// killed download's, not one in progress.
const staleTemp = time.Hour

// cacheEntry is one entry of the model cache on disk.
type cacheEntry struct {
	dir  string
	size int64
	used time.Time
}

// touch records a use of the entry in dir.
func touch(dir string) {
	now := time.Now()
	os.Chtimes(filepath.Join(dir, manifestFile), now, now)
}

// evict removes the least recently used entries of the cache under root
// until it holds at most limit bytes, never keep; limit < 0 is no bound. It
// returns the folders removed. Errors (a folder another process removed
// first, one it cannot read) leave that entry alone: eviction only ever
// frees space.
func evict(root string, limit int64, keep string) []string {
	if limit < 0 {
		return nil
	}
	servers, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var entries []cacheEntry
	var total int64
	var removed []string
	for _, s := range servers {
		if !s.IsDir() {
			continue
		}
		sdir := filepath.Join(root, s.Name())
		list, err := os.ReadDir(sdir)
		if err != nil {
			continue
		}
		for _, e := range list {
			dir := filepath.Join(sdir, e.Name())
			if !e.IsDir() {
				continue
			}
			if strings.HasPrefix(e.Name(), ".tmp-") {
				if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTemp {
					os.RemoveAll(dir)
				}
				continue
			}
			size, used, ok := entryUse(dir)
			if !ok {
				continue // incomplete: the next Resolve of it downloads it again
			}
			total += size
			if dir != keep {
				entries = append(entries, cacheEntry{dir: dir, size: size, used: used})
			}
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].used.Before(entries[j].used) })
	for _, e := range entries {
		if total <= limit {
			break
		}
		gone, err := os.MkdirTemp(filepath.Dir(e.dir), ".tmp-evict-")
		if err != nil {
			continue
		}
		os.Remove(gone)
		if err := os.Rename(e.dir, gone); err != nil {
			continue
		}
		os.RemoveAll(gone)
		total -= e.size
		removed = append(removed, e.dir)
	}
	return removed
}

// entryUse is a cache entry's size on disk (its files) and its last use
// (its manifest's time); ok is false without a manifest.
func entryUse(dir string) (size int64, used time.Time, ok bool) {
	fi, err := os.Stat(filepath.Join(dir, manifestFile))
	if err != nil {
		return 0, time.Time{}, false
	}
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				size += info.Size()
			}
		}
		return nil
	})
	return size, fi.ModTime(), true
}
