package ab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"petbreed"
)

// The kinds of line in the log.
const (
	kindPrediction = "prediction"
	kindFeedback   = "feedback"
)

// entry is one line of the log: a prediction or a feedback.
type entry struct {
	Kind      string                `json:"kind"`
	RequestID string                `json:"request_id"`
	Time      time.Time             `json:"time"`
	Unit      string                `json:"unit,omitempty"`
	Model     string                `json:"model,omitempty"`
	Version   string                `json:"version,omitempty"`
	Shadow    bool                  `json:"shadow,omitempty"`
	TopK      []petbreed.Prediction `json:"top_k,omitempty"`
	LatencyMS float64               `json:"latency_ms,omitempty"`
	Label     string                `json:"label,omitempty"` // feedback: the true label
}

// seen is an entry as read back: what the comparison needs, the top-1 only.
type seen struct {
	Kind      string  `json:"kind"`
	RequestID string  `json:"request_id"`
	Model     string  `json:"model"`
	Version   string  `json:"version"`
	Shadow    bool    `json:"shadow"`
	TopK      top1    `json:"top_k"`
	LatencyMS float64 `json:"latency_ms"`
	Label     string  `json:"label"`
}

// top1 reads only the first of a top-k list.
type top1 struct {
	petbreed.Prediction
	ok bool
}

func (t *top1) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		if tok == nil && err == nil { // null
			return nil
		}
		return errors.New("top_k: not a list")
	}
	if !dec.More() {
		return nil
	}
	if err := dec.Decode(&t.Prediction); err != nil {
		return err
	}
	t.ok = true
	return nil
}

func entryOf(r Record) entry {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	return entry{
		Kind: kindPrediction, RequestID: clip(r.RequestID), Time: t.UTC(),
		Unit: clip(r.Unit), Model: clip(r.Model), Version: clip(r.Version),
		Shadow: r.Shadow, TopK: r.TopK, LatencyMS: r.LatencyMS,
	}
}

// kept is an entry as a report needs it, small: the log's entries are
// held in memory by a live log (a line of the file is about 1.6 times its size).
type kept struct {
	RequestID, Model, Version string
	Top1                      string // the top-1 label ("" if none)
	Label                     string // feedback: the true label
	Conf, LatencyMS           float32
	Shadow, Feedback, HasTop  bool
}

// kept is the entry as a report reads it.
func (e entry) kept() kept {
	k := kept{RequestID: e.RequestID, Model: e.Model, Version: e.Version, Label: e.Label,
		LatencyMS: float32(e.LatencyMS), Shadow: e.Shadow, Feedback: e.Kind == kindFeedback}
	if len(e.TopK) > 0 {
		k.Top1, k.Conf, k.HasTop = e.TopK[0].Label, e.TopK[0].Probability, true
	}
	return k
}

// kept is the line read back; in interns the strings many lines share.
func (e *seen) kept(in map[string]string) kept {
	intern := func(s string) string {
		if v, ok := in[s]; ok {
			return v
		}
		if len(in) < 4096 {
			in[s] = s
		}
		return s
	}
	return kept{RequestID: e.RequestID, Model: intern(e.Model), Version: intern(e.Version), Top1: intern(e.TopK.Label),
		Label: intern(e.Label), Conf: e.TopK.Probability, LatencyMS: float32(e.LatencyMS), Shadow: e.Shadow,
		Feedback: e.Kind == kindFeedback, HasTop: e.TopK.ok}
}

// clip cuts s to MaxField bytes, at a rune boundary.
func clip(s string) string {
	if len(s) <= MaxField {
		return s
	}
	s = s[:MaxField]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// maxLine is the longest line read back; a longer one is skipped.
const maxLine = 1 << 20

// Files are the log's files, oldest first: path.N ... path.1, path. Those
// that do not exist are left out.
func Files(path string) ([]string, error) {
	var files []string
	for i := maxRotated; i >= 1; i-- {
		if _, err := os.Stat(rotated(path, i)); err == nil {
			files = append(files, rotated(path, i))
		}
	}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no prediction log at %s (nor rotated files): %w", path, os.ErrNotExist)
	}
	return files, nil
}

// maxRotated is the most rotated files a reader looks for.
const maxRotated = 1000

// Entries is what reading a log found.
type Entries struct {
	entries []kept
	Skipped int // lines that were not a valid entry (a torn last line, say)
}

// Read reads the log at each path with its rotated files, oldest first,
// one log after the other (the logs of several servers read as one). A
// line that is not a valid entry (a torn last line after a crash) is
// skipped and counted; a file that cannot be read is an error.
func Read(paths ...string) (*Entries, error) {
	all := &Entries{}
	for _, path := range paths {
		files, err := Files(path)
		if err != nil {
			return nil, err
		}
		es, err := readFiles(files)
		if err != nil {
			return nil, err
		}
		all.entries = append(all.entries, es.entries...)
		all.Skipped += es.Skipped
	}
	return all, nil
}

func readFiles(files []string) (*Entries, error) {
	fs, err := openFiles(files)
	if err != nil {
		return nil, err
	}
	return readOpen(fs)
}

// openFiles opens the files, leaving out those gone meanwhile (rotated
// away). Holding them open, a reader is not disturbed by a rotation.
func openFiles(files []string) ([]*os.File, error) {
	fs := make([]*os.File, 0, len(files))
	for _, name := range files {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			for _, f := range fs {
				f.Close()
			}
			return nil, fmt.Errorf("prediction log: %w", err)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// readOpen reads the open files in order and closes them.
func readOpen(fs []*os.File) (*Entries, error) {
	defer func() {
		for _, f := range fs {
			f.Close()
		}
	}()
	es := &Entries{}
	for _, f := range fs {
		if err := es.read(f); err != nil {
			return nil, fmt.Errorf("prediction log %s: %w", f.Name(), err)
		}
	}
	return es, nil
}

// read appends the entries of one file.
func (es *Entries) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	in := map[string]string{}
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			var e seen
			if json.Unmarshal(line, &e) != nil || !e.valid() {
				es.Skipped++
			} else {
				es.entries = append(es.entries, e.kept(in))
			}
		}
		if err == io.EOF {
			return nil
		}
		if err == errLongLine {
			es.Skipped++
			continue
		}
		if err != nil {
			return err
		}
	}
}

var errLongLine = errors.New("line too long")

// readLine reads one line without its newline; a line over maxLine is
// consumed and reported as errLongLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, errLongLine
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

func (e *seen) valid() bool {
	if e.RequestID == "" {
		return false
	}
	switch e.Kind {
	case kindPrediction:
		return (e.Version != "" || e.Model != "") && sane(e.TopK.Probability, e.LatencyMS)
	case kindFeedback:
		return e.Label != ""
	}
	return false
}

// MaxLatencyMS is the longest latency a record may carry (an hour): beyond
// it, or below 0, the value is not a request's, and sums of such would
// overflow the report.
const MaxLatencyMS = 3600e3

// sane says whether a top-1 probability and a latency are values a
// prediction can have: a probability in [0, 1] (a float32 softmax may pass
// 1 by a rounding), a latency in [0, MaxLatencyMS].
func sane(p float32, latencyMS float64) bool {
	return p >= 0 && p <= 1.001 && latencyMS >= 0 && latencyMS <= MaxLatencyMS
}
