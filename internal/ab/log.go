// Package ab tells which of several served model versions is better on live
// traffic: a prediction log (JSON Lines, rotated, bounded in total size) that
// the server appends to without waiting, the true labels users send back
// (feedback), and the statistics comparing each version with the champion.
//
// One request's way through it: the server answers, then calls Log.Record;
// the record goes through a bounded channel to the one writer goroutine,
// which appends a line to the current file and rotates it when full. Later
// POST /api/feedback names the request and its true label (a feedback line),
// and GET /api/ab or `petbreed ab report` reads every file back (Read) and
// compares the versions (Compare).
package ab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"petbreed"
)

// Record is one answered request (or one shadow answer) as the log keeps it.
type Record struct {
	RequestID string
	Time      time.Time
	Unit      string // the sticky-assignment unit (a user id), "" if none
	Model     string
	Version   string
	Shadow    bool // a shadow answer: recorded, never returned
	TopK      []petbreed.Prediction
	LatencyMS float64
}

// Defaults of Options.
const (
	DefaultMaxBytes = 64 << 20 // the whole log, all files together
	DefaultFiles    = 4        // rotated files kept beside the current one
	DefaultQueue    = 4096     // records waiting for the writer
	// MaxField is the longest request id, unit, model or version kept; a
	// longer one (a hostile header) is cut to this many bytes.
	MaxField = 256
	// MaxLabel is the longest true label feedback may give.
	MaxLabel = 256
)

// Options bound a Log. Zero fields take their defaults.
type Options struct {
	MaxBytes int64 // total size of the current and rotated files
	Files    int   // rotated files kept (path.1 ... path.Files), oldest deleted
	Queue    int   // records waiting for the writer; more are dropped and counted
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Files <= 0 {
		o.Files = DefaultFiles
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	return o
}

// Log is an open prediction log. Record never blocks; one goroutine writes.
type Log struct {
	path string
	opt  Options

	// mu guards closed and the closing of ch: Record and feedback send
	// under the read lock without ever waiting, Close closes ch under the
	// write lock.
	mu      sync.RWMutex
	closed  bool
	ch      chan item
	flushc  chan chan struct{} // Flush's requests, never closed
	done    chan struct{}      // closed when the writer has finished
	dropped atomic.Uint64
	written atomic.Uint64
	werr    atomic.Value // the writer's last error (error), for Close

	ids *idSet

	// mem mirrors the files' entries, oldest first, so a live report does
	// not decode the files again: the writer appends what it writes and
	// drops the oldest file's entries when rotation deletes it. counts[i]
	// is how many entries file i holds (0: path, i: path.i).
	memMu   sync.Mutex
	mem     []kept
	counts  []int
	skipped int // unreadable lines in the files at Open

	cacheMu  sync.Mutex // one report at a time; guards the cache
	cache    *Report
	cacheKey reportKey
}

// item is what the writer is handed: one line to append, and the line as
// the report reads it (kept in memory once written).
type item struct {
	line []byte
	e    kept
}

// Open opens (or creates) the log at path, bounded to maxBytes in total
// (0: DefaultMaxBytes), with DefaultFiles rotated files.
func Open(path string, maxBytes int64) (*Log, error) {
	return OpenOptions(path, Options{MaxBytes: maxBytes})
}

// OpenOptions opens the log at path with the given bounds. The request ids
// already in the log's files are known to the feedback endpoint.
func OpenOptions(path string, o Options) (*Log, error) {
	o = o.withDefaults()
	if o.MaxBytes < 4096 {
		return nil, fmt.Errorf("prediction log: a bound of %d bytes is too small (at least 4096)", o.MaxBytes)
	}
	l := &Log{path: path, opt: o, ch: make(chan item, o.Queue), flushc: make(chan chan struct{}), done: make(chan struct{})}
	l.ids = newIDSet()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("prediction log: %w", err)
	}
	// Learn the entries (and ids) already logged, oldest first, so a report
	// covers them and feedback for a request answered before a restart is
	// still accepted.
	if err := l.load(); err != nil {
		return nil, err
	}
	f, size, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	go l.writer(f, size)
	return l, nil
}

func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("prediction log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("prediction log: %w", err)
	}
	size := st.Size()
	if size > 0 {
		// A crash may have left a torn last line: end it, so the next line
		// is not glued to it (the reader skips the torn one alone).
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return nil, 0, fmt.Errorf("prediction log: %w", err)
			}
			size++
		}
	}
	return f, size, nil
}

// Record logs r without waiting: when the writer is behind and the queue
// is full (or the log is closed), r is dropped and counted (Dropped).
func (l *Log) Record(r Record) {
	e := entryOf(r)
	k := e.kept()
	// What a reader would skip is not written: no id, no model, a NaN or
	// negative latency.
	if k.RequestID == "" || (k.Model == "" && k.Version == "") || !sane(k.Conf, e.LatencyMS) {
		l.dropped.Add(1)
		return
	}
	line, err := json.Marshal(e)
	if err != nil || !l.send(line, k) {
		l.dropped.Add(1)
		return
	}
	l.ids.add(clip(r.RequestID))
}

// send hands a line to the writer unless the queue is full or the log is
// closed. It never waits.
func (l *Log) send(line []byte, e kept) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return false
	}
	select {
	case l.ch <- item{line: line, e: e}:
		return true
	default:
		return false
	}
}

// Dropped is how many records were not logged because the queue was full
// or the log closed.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written is how many lines the writer has appended.
func (l *Log) Written() uint64 { return l.written.Load() }

// errBusy: the writer did not catch up in time.
var errBusy = errors.New("prediction log: busy")

// Flush waits until every line handed to the writer before it is written
// to the file (not synced), or until the timeout.
func (l *Log) Flush(timeout time.Duration) error {
	c := make(chan struct{})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l.flushc <- c:
	case <-l.done:
		return nil // closed: everything is on disk
	case <-t.C:
		return errBusy
	}
	select {
	case <-c:
		return nil
	case <-t.C:
		return errBusy
	}
}

// Close writes what is queued, syncs and closes the file. Records after
// Close are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.ch)
	}
	l.mu.Unlock()
	<-l.done
	if err, _ := l.werr.Load().(error); err != nil {
		return err
	}
	return nil
}

// writer is the one goroutine appending to the files.
func (l *Log) writer(f *os.File, size int64) {
	defer close(l.done)
	w := bufio.NewWriterSize(f, 64<<10)
	perFile := l.opt.MaxBytes / int64(l.opt.Files+1)
	fail := func(err error) { l.werr.Store(fmt.Errorf("prediction log: %w", err)) }
	write := func(it item) {
		n := int64(len(it.line) + 1)
		if size > 0 && size+n > perFile {
			if err := w.Flush(); err != nil {
				fail(err)
			}
			if nf, err := l.rotate(f); err != nil {
				fail(err) // keep appending to the old file rather than lose lines
			} else {
				f, size = nf, 0
				w.Reset(f)
				l.rotated()
			}
		}
		w.Write(it.line)
		if err := w.WriteByte('\n'); err != nil {
			fail(err)
			if !it.e.Feedback {
				l.ids.remove(it.e.RequestID)
			}
			return
		}
		size += n
		l.memMu.Lock()
		l.mem = append(l.mem, it.e)
		l.counts[0]++
		l.memMu.Unlock()
		l.written.Add(1)
	}
	flush := func() {
		if err := w.Flush(); err != nil {
			fail(err)
		}
	}
loop:
	for {
		select {
		case it, ok := <-l.ch:
			if !ok {
				break loop
			}
			write(it)
			if len(l.ch) == 0 { // idle: let readers see it
				flush()
			}
		case c := <-l.flushc:
			// Everything queued before the request is in ch now.
			for n := len(l.ch); n > 0; n-- {
				it, ok := <-l.ch
				if !ok {
					break
				}
				write(it)
			}
			flush()
			close(c)
		}
	}
	if err := w.Flush(); err != nil {
		fail(err)
	}
	if err := f.Sync(); err != nil {
		fail(err)
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
}

// rotate closes the current file, shifts path.i to path.i+1 (the oldest,
// path.Files, is replaced) and path to path.1, and opens a new path.
func (l *Log) rotate(f *os.File) (*os.File, error) {
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	for i := l.opt.Files - 1; i >= 1; i-- {
		if err := os.Rename(rotated(l.path, i), rotated(l.path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.Rename(l.path, rotated(l.path, 1)); err != nil {
		return nil, err
	}
	nf, _, err := openAppend(l.path)
	return nf, err
}

func rotated(path string, i int) string { return fmt.Sprintf("%s.%d", path, i) }

// rotated follows a rotation in mem: the oldest file's entries are gone,
// every other file moved up one.
func (l *Log) rotated() {
	l.memMu.Lock()
	defer l.memMu.Unlock()
	last := len(l.counts) - 1
	if gone := l.counts[last]; gone > 0 {
		// Their requests are no longer known to feedback.
		for _, e := range l.mem[:gone] {
			if !e.Feedback {
				l.ids.remove(e.RequestID)
			}
		}
		// A new array: the old one may be in a report being computed, and
		// the dropped entries are freed.
		l.mem = slices.Clone(l.mem[gone:])
	}
	copy(l.counts[1:], l.counts[:last])
	l.counts[0] = 0
}

// load reads the log's files into mem and the ids, oldest first.
func (l *Log) load() error {
	l.counts = make([]int, l.opt.Files+1)
	for i := l.opt.Files; i >= 0; i-- {
		name := l.path
		if i > 0 {
			name = rotated(l.path, i)
		}
		es, err := readFiles([]string{name})
		if err != nil {
			return err
		}
		if l.mem == nil {
			l.mem = make([]kept, 0, len(es.entries))
		}
		l.mem = append(l.mem, es.entries...)
		l.counts[i] = len(es.entries)
		l.skipped += es.Skipped
	}
	for _, e := range l.mem {
		if !e.Feedback {
			l.ids.add(e.RequestID)
		}
	}
	return nil
}

// snapshot is the entries written so far. The writer only appends beyond
// its length, or replaces the array, so it can be read without the lock.
func (l *Log) snapshot() *Entries {
	l.memMu.Lock()
	defer l.memMu.Unlock()
	return &Entries{entries: l.mem[:len(l.mem):len(l.mem)], Skipped: l.skipped}
}

// idSet is the request ids of the predictions in the log (as 64-bit
// hashes, counted: a request has several answers), for the feedback
// endpoint. An id is added when it is recorded and removed when rotation
// deletes its line, so it is bounded by the log's own bound.
type idSet struct {
	mu   sync.Mutex
	seed maphash.Seed
	n    map[uint64]int32
}

func newIDSet() *idSet {
	return &idSet{seed: maphash.MakeSeed(), n: make(map[uint64]int32)}
}

func (s *idSet) add(id string) {
	h := maphash.String(s.seed, id)
	s.mu.Lock()
	s.n[h]++
	s.mu.Unlock()
}

func (s *idSet) remove(id string) {
	h := maphash.String(s.seed, id)
	s.mu.Lock()
	if s.n[h]--; s.n[h] <= 0 {
		delete(s.n, h)
	}
	s.mu.Unlock()
}

func (s *idSet) has(id string) bool {
	h := maphash.String(s.seed, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[h] > 0
}
