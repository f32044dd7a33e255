package features

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"petbreed"
	"petbreed/internal/atomicfile"
)

// View is one way of showing an image to the backbone.
type View string

// Views.
const (
	Original View = "orig"
	Flipped  View = "flip" // left-right mirror of the preprocessed image
)

// Key identifies an image by its content.
type Key [32]byte

// KeyOf is the sha256 of an image file's bytes.
func KeyOf(data []byte) Key { return sha256.Sum256(data) }

// Cache holds computed features on disk, in shard files written whole
// through a temporary name and renamed, so that a crash (even SIGKILL) loses
// at most the features not yet flushed and never leaves a torn file. A
// cache's folder is specific to one backbone (by sha256), one transform and
// one feature tensor: changing any of them starts a new cache.
type Cache struct {
	dir string
	dim int

	mu      sync.Mutex
	m       map[View]map[Key][]float32
	pending map[View][]record
}

type record struct {
	key Key
	x   []float32
}

const shardMagic = "PBFEAT1\n"

// staleTemp is the age after which a temporary shard file is a crash's
// leftover rather than another process's write in progress.
const staleTemp = 10 * time.Minute

// DefaultDir is where features are cached unless told otherwise:
// $PETBREED_CACHE, else the user's cache directory/petbreed.
func DefaultDir() string {
	if d := os.Getenv("PETBREED_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "petbreed")
	}
	return filepath.Join(os.TempDir(), "petbreed-cache")
}

// OpenCache opens (creating it if needed) the feature cache under root for
// the extractor's backbone, transform and feature tensor.
func OpenCache(root string, e *Extractor) (*Cache, error) {
	spec, _ := json.Marshal(struct {
		Backbone   string              `json:"backbone_sha256"`
		Tensor     string              `json:"tensor"`
		Dim        int                 `json:"dim"`
		Preprocess petbreed.Preprocess `json:"preprocess"`
		EXIF       bool                `json:"exif"`
	}{e.SHA256(), e.Features().Tensor, e.Dim(), e.Preprocess(), true})
	sum := sha256.Sum256(spec)
	dir := filepath.Join(root, "features", e.SHA256()[:16]+"-"+hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("feature cache: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "spec.json"), spec, 0o644); err != nil {
		return nil, fmt.Errorf("feature cache: %w", err)
	}
	c := &Cache{dir: dir, dim: e.Dim(), m: map[View]map[Key][]float32{}, pending: map[View][]record{}}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// Dir is the cache's folder.
func (c *Cache) Dir() string { return c.dir }

// Len is the number of cached feature vectors for a view.
func (c *Cache) Len(v View) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m[v])
}

// Get returns the cached features of an image in a view.
func (c *Cache) Get(v View, k Key) ([]float32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	x, ok := c.m[v][k]
	return x, ok
}

// Put adds features; they reach the disk at the next Flush.
func (c *Cache) Put(v View, k Key, x []float32) {
	if len(x) != c.dim {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[v] == nil {
		c.m[v] = map[Key][]float32{}
	}
	if _, ok := c.m[v][k]; ok {
		return
	}
	c.m[v][k] = x
	c.pending[v] = append(c.pending[v], record{k, x})
}

// Flush writes the features added since the last Flush as new shard files.
func (c *Cache) Flush() error {
	c.mu.Lock()
	pending := c.pending
	c.pending = map[View][]record{}
	c.mu.Unlock()
	for v, recs := range pending {
		if len(recs) == 0 {
			continue
		}
		var suffix [6]byte
		rand.Read(suffix[:])
		name := fmt.Sprintf("%s-%d-%s.shard", v, time.Now().UnixNano(), hex.EncodeToString(suffix[:]))
		err := atomicfile.Write(filepath.Join(c.dir, name), 0o644, func(w io.Writer) error {
			return writeShard(w, c.dim, recs)
		})
		if err != nil {
			return fmt.Errorf("feature cache: %w", err)
		}
	}
	return nil
}

func writeShard(w io.Writer, dim int, recs []record) error {
	var buf bytes.Buffer
	buf.WriteString(shardMagic)
	binary.Write(&buf, binary.LittleEndian, uint32(dim))
	binary.Write(&buf, binary.LittleEndian, uint32(len(recs)))
	b := make([]byte, 4)
	for _, r := range recs {
		buf.Write(r.key[:])
		for _, f := range r.x {
			binary.LittleEndian.PutUint32(b, math.Float32bits(f))
			buf.Write(b)
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// load reads every shard. A shard that cannot be read is skipped with its
// name in the error only if nothing else could be loaded; shards are written
// whole, so a damaged one means outside interference, not a crash.
func (c *Cache) load() error {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("feature cache: %w", err)
	}
	var names []string
	for _, e := range ents {
		// A writer killed mid-flush leaves its hidden temporary file;
		// remove those old enough not to belong to a live writer.
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
				os.Remove(filepath.Join(c.dir, e.Name()))
			}
			continue
		}
		if strings.HasSuffix(e.Name(), ".shard") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var bad []string
	for _, n := range names {
		v := View(n[:strings.IndexByte(n, '-')])
		if err := c.readShard(filepath.Join(c.dir, n), v); err != nil {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "petbreed: feature cache: ignoring %d unreadable shard(s) in %s (first: %s)\n", len(bad), c.dir, bad[0])
	}
	return nil
}

var errShard = errors.New("bad shard")

func (c *Cache) readShard(path string, v View) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) < len(shardMagic)+8 || string(b[:len(shardMagic)]) != shardMagic {
		return errShard
	}
	b = b[len(shardMagic):]
	dim := int(binary.LittleEndian.Uint32(b))
	n := int(binary.LittleEndian.Uint32(b[4:]))
	b = b[8:]
	rec := 32 + 4*dim
	if dim != c.dim || len(b) != n*rec {
		return errShard
	}
	if c.m[v] == nil {
		c.m[v] = map[Key][]float32{}
	}
	for i := 0; i < n; i++ {
		r := b[i*rec : (i+1)*rec]
		var k Key
		copy(k[:], r[:32])
		x := make([]float32, dim)
		for j := range x {
			x[j] = math.Float32frombits(binary.LittleEndian.Uint32(r[32+4*j:]))
		}
		c.m[v][k] = x
	}
	return nil
}
