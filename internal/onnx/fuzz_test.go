package onnx

import (
	"errors"
	"reflect"
	"testing"
)

// The fuzz targets feed the ONNX reader arbitrary bytes, as a corrupt or
// hostile model file would give it: it answers an error (ErrNotONNX for a
// file that is not a model), never panics, and the edits keep what they do
// not change. `make fuzz` (scripts/fuzz.sh) runs them; `go test` the seeds.

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

// FuzzParseInfo: the header and graph summary of any bytes.
func FuzzParseInfo(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseInfo(data)
		if err != nil {
			if !errors.Is(err, ErrNotONNX) {
				t.Fatalf("error %q does not wrap ErrNotONNX", err)
			}
			return
		}
		for _, v := range append(append([]ValueInfo(nil), info.Inputs...), info.Outputs...) {
			_ = v.String()
			_ = v.Dims()
		}
		_ = info.MetadataKeys()
	})
}

// FuzzGraph: the graph readers and edits on any bytes. A model that parses
// keeps its header, graph summary and metadata through SetMetadata, which
// adds the keys it is given.
func FuzzGraph(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if ts, err := ReadInitializer(data, "w"); err == nil {
			ts.Float32s()
			ts.Int64s()
			_ = ts.Len()
		}
		FindFeatures(data)
		ExposeOutputs(data, "h", "w")
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
