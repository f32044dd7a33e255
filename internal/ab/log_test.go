package ab

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

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
		es.entries[0].Top1 != "Abyssinian" {
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

func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	const bound = 8192
	l, err := OpenOptions(path, Options{MaxBytes: bound, Files: 2})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		l.Record(rec(fmt.Sprintf("req-%04d", i), "1", false, "Abyssinian", 0.5))
		if i%50 == 0 {
			if err := l.Flush(5 * time.Second); err != nil { // keep the queue from overflowing
				t.Fatal(err)
			}
		}
	}
	// The live report (from memory) covers exactly what the files hold.
	live, herr := l.Report("")
	if herr != nil {
		t.Fatal(herr)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Dropped() != 0 {
		t.Fatalf("%d dropped", l.Dropped())
	}
	fromFiles, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := fromFiles.Compare(""); err != nil || rep.Records != live.Records || live.Records == 0 || live.Records >= n {
		t.Errorf("the live report has %d records, the files %d (%v)", live.Records, rep.Records, err)
	}
	// The oldest requests were deleted with their file: unknown to feedback.
	if l.ids.has("req-0000") || !l.ids.has(fmt.Sprintf("req-%04d", n-1)) || len(l.ids.n) != live.Records {
		t.Errorf("ids: oldest %v, newest %v, %d ids for %d records", l.ids.has("req-0000"), l.ids.has(fmt.Sprintf("req-%04d", n-1)), len(l.ids.n), live.Records)
	}
	// Reopened, the log knows the same entries.
	l2, err := OpenOptions(path, Options{MaxBytes: bound, Files: 2})
	if err != nil {
		t.Fatal(err)
	}
	if again, herr := l2.Report(""); herr != nil || again.Records != live.Records {
		t.Errorf("reopened: %+v %v", again, herr)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path + ".2", path + ".1", path}
	if !slices.Equal(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("path.3: %v", err)
	}
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > bound/3 {
			t.Errorf("%s: %d bytes, over a third of the bound", f, st.Size())
		}
		total += st.Size()
	}
	if total > bound {
		t.Errorf("%d bytes in all, bound %d", total, bound)
	}
	es, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	// The newest records are kept, in order, the oldest deleted.
	got := es.entries
	if len(got) == 0 || len(got) >= n || got[len(got)-1].RequestID != fmt.Sprintf("req-%04d", n-1) || es.Skipped != 0 {
		t.Fatalf("%d entries, last %+v", len(got), got[len(got)-1])
	}
	first := n - len(got)
	for i, e := range got {
		if e.RequestID != fmt.Sprintf("req-%04d", first+i) {
			t.Fatalf("entry %d is %s, want req-%04d", i, e.RequestID, first+i)
		}
	}
}

func TestTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	torn := `{"kind":"prediction","request_id":"a","model":"m","version":"1","top_k":[]}` + "\n" + `{"kind":"predic`
	if err := os.WriteFile(path, []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	es, err := Read(path)
	if err != nil || len(es.entries) != 1 || es.Skipped != 1 {
		t.Fatalf("%+v %v", es, err)
	}
	// Reopened after the crash, the log ends the torn line before appending.
	l, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Record(rec("b", "1", false, "cat", 1))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	es, err = Read(path)
	if err != nil || len(es.entries) != 2 || es.entries[1].RequestID != "b" || es.Skipped != 1 {
		t.Fatalf("%+v %v", es, err)
	}
	// The ids logged before the restart are known.
	l, err = Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.ids.has("a") || !l.ids.has("b") || l.ids.has("c") {
		t.Error("the ids in the log were not learnt")
	}
}

func TestLongLine(t *testing.T) {
	long := `{"kind":"prediction","request_id":"` + strings.Repeat("x", maxLine) + `"}` + "\n" +
		`{"kind":"prediction","request_id":"b","model":"m","version":"1"}` + "\n"
	es := readString(t, long)
	if len(es.entries) != 1 || es.entries[0].RequestID != "b" || es.Skipped != 1 {
		t.Errorf("%d entries, %d skipped", len(es.entries), es.Skipped)
	}
}

func TestUnreadable(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "none.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	// A directory where the log should be: an error, not an empty log.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(filepath.Join(dir, "d")); err == nil {
		t.Error("a directory read as a log")
	}
	if _, err := Open(filepath.Join(dir, "d"), 0); err == nil {
		t.Error("a directory opened as a log")
	}
	if _, err := Open(filepath.Join(dir, "x"), 100); err == nil {
		t.Error("a bound of 100 bytes accepted")
	}
}

// A full queue drops the record and counts it, without waiting.
func TestQueueFull(t *testing.T) {
	l := &Log{ch: make(chan item, 1), ids: newIDSet()} // no writer: the queue fills
	l.Record(rec("a", "1", false, "cat", 1))
	l.Record(rec("b", "1", false, "cat", 1))
	if l.Dropped() != 1 || !l.ids.has("a") || l.ids.has("b") {
		t.Errorf("dropped %d, a %v, b %v", l.Dropped(), l.ids.has("a"), l.ids.has("b"))
	}
	// NaN cannot be written as JSON: dropped too.
	r := rec("c", "1", false, "cat", 1)
	r.LatencyMS = math.NaN()
	<-l.ch
	l.Record(r)
	if l.Dropped() != 2 {
		t.Errorf("dropped %d", l.Dropped())
	}
	// What a reader would skip is not written either.
	for _, bad := range []Record{
		{RequestID: "", Model: "m", Version: "1"},
		{RequestID: "x"},
		{RequestID: "x", Model: "m", LatencyMS: -1},
		{RequestID: "x", Model: "m", LatencyMS: MaxLatencyMS + 1},
		{RequestID: "x", Model: "m", TopK: []petbreed.Prediction{{Label: "cat", Probability: 2}}},
	} {
		before := l.Dropped()
		l.Record(bad)
		if l.Dropped() != before+1 || len(l.ch) != 0 {
			t.Errorf("%+v was not dropped", bad)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", MaxField) // 2 bytes each
	e := entryOf(Record{RequestID: long, Unit: long, Model: "m", Version: "1"})
	if len(e.RequestID) != MaxField || len(e.Unit) != MaxField || !utf8.ValidString(e.RequestID) {
		t.Errorf("%d %d", len(e.RequestID), len(e.Unit))
	}
	if e.Time.IsZero() {
		t.Error("no time")
	}
}

func TestIDSet(t *testing.T) {
	s := newIDSet()
	for _, id := range []string{"a", "b", "a"} {
		s.add(id)
	}
	s.remove("a")
	s.remove("b")
	// a was added twice (two answers), removed once.
	for id, want := range map[string]bool{"a": true, "b": false, "c": false} {
		if s.has(id) != want {
			t.Errorf("has(%q) = %v", id, !want)
		}
	}
	if len(s.n) != 1 {
		t.Errorf("%d hashes kept", len(s.n))
	}
}

// Many goroutines record while reports read and the files rotate.
func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.jsonl")
	l, err := OpenOptions(path, Options{MaxBytes: 64 << 10, Files: 3, Queue: 64})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	const workers, each = 4, 500
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				l.Record(rec(fmt.Sprintf("%d-%d", w, i), fmt.Sprint(w%2), i%3 == 0, "cat", 0.5))
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			if _, herr := l.Report(""); herr != nil {
				t.Error(herr)
			}
		}
	})
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Written() + l.Dropped(); got != workers*each {
		t.Errorf("written %d + dropped %d != %d", l.Written(), l.Dropped(), workers*each)
	}
	es, err := Read(path)
	if err != nil || es.Skipped != 0 || len(es.entries) == 0 {
		t.Fatalf("%v %d skipped", err, es.Skipped)
	}
}
