package ab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"petbreed"
)

func top5() []petbreed.Prediction {
	return []petbreed.Prediction{
		{Label: "Abyssinian", Index: 0, Probability: 0.81}, {Label: "Bengal", Index: 5, Probability: 0.1},
		{Label: "Bombay", Index: 7, Probability: 0.05}, {Label: "Birman", Index: 6, Probability: 0.02},
		{Label: "Sphynx", Index: 33, Probability: 0.01},
	}
}

// BenchmarkRecord is what a request pays for its line: marshalling it and a
// non-blocking send (the writer goroutine runs beside it).
func BenchmarkRecord(b *testing.B) {
	l, err := OpenOptions(filepath.Join(b.TempDir(), "p.jsonl"), Options{Queue: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	r := Record{RequestID: "0123456789abcdef", Time: time.Now(), Unit: "user-42", Model: "champion", Version: "3", TopK: top5(), LatencyMS: 12.5}
	b.ReportAllocs()
	for b.Loop() {
		l.Record(r)
	}
	b.StopTimer()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(l.Dropped()), "dropped")
}

// bigLog writes a log of 100,000 requests, each with a shadow answer and
// one in ten with feedback (about 64 MB: the default bound).
func bigLog(b *testing.B) (string, int) {
	path := filepath.Join(b.TempDir(), "p.jsonl")
	l, err := OpenOptions(path, Options{MaxBytes: 1 << 30, Queue: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	for i := range n {
		id := fmt.Sprintf("req-%06d", i)
		l.Record(Record{RequestID: id, Time: time.Now(), Model: "m", Version: "1", TopK: top5(), LatencyMS: 10})
		l.Record(Record{RequestID: id, Time: time.Now(), Model: "m", Version: "2", Shadow: true, TopK: top5(), LatencyMS: 11})
		if i%1000 == 0 {
			if err := l.Flush(10 * time.Second); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := 0; i < n; i += 10 {
		e := entry{Kind: kindFeedback, RequestID: fmt.Sprintf("req-%06d", i), Time: time.Now(), Label: "Bengal"}
		line, _ := json.Marshal(e)
		for !l.send(line, e.kept()) {
			l.Flush(10 * time.Second)
		}
	}
	if err := l.Close(); err != nil || l.Dropped() != 0 {
		b.Fatal(err, l.Dropped())
	}
	return path, n
}

// BenchmarkReadCompare is `petbreed ab report` on a full log: decode the
// files, compare.
func BenchmarkReadCompare(b *testing.B) {
	path, n := bigLog(b)
	for b.Loop() {
		es, err := Read(path)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := es.Compare("")
		if err != nil || rep.Records != 2*n || rep.Feedback != n/10 {
			b.Fatal(err, rep.Records, rep.Feedback)
		}
	}
	st, _ := os.Stat(path)
	b.ReportMetric(float64(st.Size())/1e6, "MB")
}

// BenchmarkLiveReport is GET /api/ab's work on the same log, open in a
// server: the comparison of the entries kept in memory (a new record each
// time, so no cached report is reused). It also reports the memory the
// entries take.
func BenchmarkLiveReport(b *testing.B) {
	path, n := bigLog(b)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	l, err := Open(path, 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(after.HeapAlloc-before.HeapAlloc) / float64(2*n+n/10)
	i := 0
	for b.Loop() {
		i++
		l.Record(Record{RequestID: fmt.Sprint("new-", i), Model: "m", Version: "1", TopK: top5()})
		rep, herr := l.Report("")
		if herr != nil || rep.Records != 2*n+i {
			b.Fatal(herr, rep.Records)
		}
	}
	b.ReportMetric(perEntry, "heap-B/entry")
}
