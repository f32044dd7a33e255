// Package shard splits a set of inputs into N disjoint slices, the same on
// every machine, so that N processes (a Kubernetes indexed Job, a CI matrix)
// can share one batch job.
//
// An input belongs to shard hash(key) mod N, where key is the input's path
// relative to what was asked for (a file under a directory argument: its
// path below that directory; a dataset image: its path below the dataset's
// root), with forward slashes, and hash the first 8 bytes of its sha256.
// The alternative, cutting the sorted list into N runs, balances the shards
// exactly but moves almost every file to another shard when one file is
// added early in the order; with the hash, adding or removing files never
// moves another file, so a shard's earlier output stays valid for the files
// it keeps. The cost is shards of uneven size, by chance: about sqrt(n)
// files on n per shard (pets-3breeds' 600 images in 3 shards: 226, 184 and
// 190; a few percent for shards of thousands).
package shard

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxCount is the largest number of shards accepted.
const MaxCount = 99999

// EnvIndex is the variable a Kubernetes indexed Job sets to the pod's
// index, 0 to completions-1.
const EnvIndex = "JOB_COMPLETION_INDEX"

// Spec is shard Index of Count. The zero value is "everything" (one shard).
type Spec struct {
	Index, Count int
}

// All is the spec of an unsharded run.
var All = Spec{0, 1}

// Parse reads "I/N" (0 <= I < N <= MaxCount).
func Parse(s string) (Spec, error) {
	i, n, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Spec{}, fmt.Errorf("shard %q: want INDEX/COUNT, e.g. 0/4", s)
	}
	count, err := strconv.Atoi(n)
	if err != nil {
		return Spec{}, fmt.Errorf("shard %q: count %q is not a number", s, n)
	}
	if i == "" {
		return Spec{}, fmt.Errorf("shard %q: no index (is $%s set?)", s, EnvIndex)
	}
	index, err := strconv.Atoi(i)
	if err != nil {
		return Spec{}, fmt.Errorf("shard %q: index %q is not a number", s, i)
	}
	return New(index, count)
}

// New checks and returns shard index of count.
func New(index, count int) (Spec, error) {
	if count < 1 || count > MaxCount {
		return Spec{}, fmt.Errorf("shard count must be between 1 and %d (got %d)", MaxCount, count)
	}
	if index < 0 || index >= count {
		return Spec{}, fmt.Errorf("shard index must be between 0 and %d for %d shards (got %d)", count-1, count, index)
	}
	return Spec{index, count}, nil
}

// FromEnv is shard $JOB_COMPLETION_INDEX of count; getenv is os.Getenv
// outside tests.
func FromEnv(count int, getenv func(string) string) (Spec, error) {
	v := getenv(EnvIndex)
	if v == "" {
		return Spec{}, fmt.Errorf("$%s is not set (it is set by an indexed Job)", EnvIndex)
	}
	index, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return Spec{}, fmt.Errorf("$%s=%q is not a number", EnvIndex, v)
	}
	return New(index, count)
}

func (s Spec) norm() Spec {
	if s.Count == 0 {
		return All
	}
	return s
}

// String is "I/N".
func (s Spec) String() string {
	s = s.norm()
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Sharded says whether s is a real slice (more than one shard).
func (s Spec) Sharded() bool { return s.norm().Count > 1 }

// Of is the shard a key belongs to, of count.
func Of(key string, count int) int {
	if count <= 1 {
		return 0
	}
	sum := sha256.Sum256([]byte(filepath.ToSlash(key)))
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(count))
}

// Contains says whether the input with this key is in shard s.
func (s Spec) Contains(key string) bool {
	s = s.norm()
	return Of(key, s.Count) == s.Index
}

// FileName is the name of shard s's output: prefix-IIIII-of-NNNNN.ext.
func (s Spec) FileName(prefix, ext string) string {
	s = s.norm()
	return fmt.Sprintf("%s-%05d-of-%05d%s", prefix, s.Index, s.Count, ext)
}

// ParseFileName reads a name written by FileName with the same prefix and
// ext; ok is false for any other name.
func ParseFileName(name, prefix, ext string) (s Spec, ok bool) {
	rest, found := strings.CutPrefix(name, prefix+"-")
	if !found {
		return Spec{}, false
	}
	rest, found = strings.CutSuffix(rest, ext)
	if !found {
		return Spec{}, false
	}
	i, n, found := strings.Cut(rest, "-of-")
	if !found || len(i) != 5 || len(n) != 5 {
		return Spec{}, false
	}
	index, err1 := strconv.Atoi(i)
	count, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil {
		return Spec{}, false
	}
	s, err := New(index, count)
	return s, err == nil
}
