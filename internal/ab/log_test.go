package ab

import (
	"path/filepath"
	"testing"
	"time"

	"petbreed"
)

func rec(id, version string, shadow bool, label string, p float32) Record {
	return Record{
		RequestID: id, Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Model: "pet-breed", Version: version,
		Shadow: shadow, TopK: []petbreed.Prediction{{Label: label, Index: 0, Probability: p}}, LatencyMS: 3,
	}
}

func TestRecordRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "predictions.jsonl")
	l, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		l.Record(rec(id, "1", i == 2, "Abyssinian", 0.9))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	es, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(es.entries) != 3 || es.Skipped != 0 || es.entries[2].RequestID != "c" || !es.entries[2].Shadow ||
		es.entries[0].TopK[0].Label != "Abyssinian" {
		t.Errorf("%+v", es)
	}
	if l.Dropped() != 0 || l.Written() != 3 {
		t.Errorf("dropped %d written %d", l.Dropped(), l.Written())
	}
	l.Record(rec("d", "1", false, "x", 1))
	if l.Dropped() != 1 {
		t.Errorf("a record after Close was not dropped: %d", l.Dropped())
	}
}
