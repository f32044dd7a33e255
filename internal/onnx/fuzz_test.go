package onnx

import (
	"reflect"
	"testing"
)

// FuzzSetMetadata, with FuzzReadInfo and FuzzFindFeatures beside the other
// tests, feeds the ONNX reader arbitrary bytes, as a corrupt or hostile
// model file would: it answers an error, never panics, and an edit keeps
// what it does not change. `make fuzz` (scripts/fuzz.sh) runs them; `go
// test` runs the seeds.

func fuzzSeeds(f *testing.F) {
	m := synthModel()
	f.Add(m)
	f.Add(m[:len(m)/2])
	f.Add(m[:len(m)-1])
	f.Add([]byte{})
	f.Add(fVarint(1, 7))
	f.Add(msg(fVarint(1, 7), fBytes(7, nil)))
	f.Add(msg(fVarint(1, 7), fBytes(7, fBytes(11, tensorValue("x", Float, []any{1 << 62, -1, "N", nil})))))
	f.Add(msg(fVarint(1, 7), fBytes(7, fBytes(5, msg(fVarint(1, 1<<40), fVarint(2, int64(Float)), fString(8, "w"))))))
	f.Add(msg(fVarint(1, 7), fBytes(7, fBytes(5, msg(fVarint(1, -1), fVarint(2, int64(Float)), fString(8, "w"), fBytes(9, []byte{1, 2, 3}))))))
}

// FuzzSetMetadata: the metadata edit and the initializer decoding on any
// bytes (FuzzReadInfo and FuzzFindFeatures cover the other readers). A
// model that parses keeps its header and graph summary through SetMetadata,
// which adds the keys it is given.
func FuzzSetMetadata(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if ts, err := ReadInitializer(data, "w"); err == nil {
			n := 1
			for _, d := range ts.Dims {
				n *= int(d)
			}
			if v, err := ts.Float32s(); err == nil && len(v) != n {
				t.Fatalf("Float32s gave %d values for a tensor of %d", len(v), n)
			}
			if v, err := ts.Int64s(); err == nil && len(v) != n {
				t.Fatalf("Int64s gave %d values for a tensor of %d", len(v), n)
			}
		}
		before, err := ParseInfo(data)
		if err != nil {
			return
		}
		out, err := SetMetadata(data, map[string]string{"petbreed.fuzz": "v", "a": "2"})
		if err != nil {
			t.Fatalf("SetMetadata on a model that parses: %v", err)
		}
		after, err := ParseInfo(out)
		if err != nil {
			t.Fatalf("SetMetadata made a model that does not parse: %v", err)
		}
		if after.Metadata["petbreed.fuzz"] != "v" || after.Metadata["a"] != "2" {
			t.Fatalf("metadata after SetMetadata: %v", after.Metadata)
		}
		before.Metadata, after.Metadata = nil, nil
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("SetMetadata changed the model:\n%+v\n%+v", before, after)
		}
	})
}
