package shard

import (
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Spec
		err  string
	}{
		{"0/1", Spec{0, 1}, ""},
		{"3/8", Spec{3, 8}, ""},
		{" 7/8 ", Spec{7, 8}, ""},
		{"8/8", Spec{}, "between 0 and 7"},
		{"-1/8", Spec{}, "between 0 and 7"},
		{"0/0", Spec{}, "between 1 and"},
		{"0/100000", Spec{}, "between 1 and"},
		{"3", Spec{}, "INDEX/COUNT"},
		{"/8", Spec{}, "JOB_COMPLETION_INDEX"},
		{"a/8", Spec{}, "not a number"},
		{"1/b", Spec{}, "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse(%q) = %v, %v; want error with %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvIndex {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		val   string
		count int
		want  Spec
		err   string
	}{
		{"2", 4, Spec{2, 4}, ""},
		{"", 4, Spec{}, "not set"},
		{"x", 4, Spec{}, "not a number"},
		{"4", 4, Spec{}, "between 0 and 3"},
		{"0", 0, Spec{}, "between 1 and"},
	}
	for _, tt := range tests {
		got, err := FromEnv(tt.count, env(tt.val))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("FromEnv(%d) with %q: %v, %v; want error with %q", tt.count, tt.val, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("FromEnv(%d) with %q: %v, %v; want %v", tt.count, tt.val, got, err, tt.want)
		}
	}
}

// TestPartition: every key is in exactly one shard, the shards are close
// to even, and a key's shard does not depend on which other keys exist.
func TestPartition(t *testing.T) {
	const n, keys = 8, 8000
	sizes := make([]int, n)
	for k := range keys {
		key := fmt.Sprintf("breed_%d/img_%d.jpg", k%37, k)
		in := 0
		for i := range n {
			if (Spec{i, n}).Contains(key) {
				in++
				sizes[i]++
			}
		}
		if in != 1 {
			t.Fatalf("%s is in %d shards", key, in)
		}
	}
	for i, s := range sizes {
		if s < keys/n*85/100 || s > keys/n*115/100 {
			t.Errorf("shard %d has %d of %d keys: %v", i, s, keys, sizes)
		}
	}
	// The zero Spec and All hold everything.
	if !(Spec{}).Contains("x") || !All.Contains("y") || (Spec{}).Sharded() || !(Spec{0, 2}).Sharded() {
		t.Error("the zero Spec is not everything")
	}
}

// TestStable pins the hash: shards computed by another build, another
// machine or an earlier run must agree, so this must never change. The
// values were computed independently (Python's hashlib: the first 8 bytes
// of sha256(key), big-endian, mod 1000).
func TestStable(t *testing.T) {
	for key, want := range map[string]int{"a/b.jpg": 368, "images/Bengal_1.jpg": 787, "x.png": 833} {
		if got := Of(key, 1000); got != want {
			t.Errorf("Of(%q, 1000) = %d, want %d", key, got, want)
		}
	}
	if Of("anything", 1) != 0 || Of("anything", 0) != 0 {
		t.Error("one shard is not shard 0")
	}
}

func TestFileName(t *testing.T) {
	s := Spec{3, 8}
	name := s.FileName("predictions", ".jsonl")
	if name != "predictions-00003-of-00008.jsonl" {
		t.Fatalf("FileName = %q", name)
	}
	if got, ok := ParseFileName(name, "predictions", ".jsonl"); !ok || got != s {
		t.Errorf("ParseFileName(%q) = %v, %v", name, got, ok)
	}
	for _, bad := range []string{"predictions-3-of-8.jsonl", "predictions-00008-of-00008.jsonl",
		"other-00003-of-00008.jsonl", "predictions-00003-of-00008.json", ".predictions-00003-of-00008.jsonl.tmp"} {
		if got, ok := ParseFileName(bad, "predictions", ".jsonl"); ok {
			t.Errorf("ParseFileName(%q) = %v, want not ok", bad, got)
		}
	}
}
