package pull

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress reports one download: a bar on a terminal, otherwise a line every
// interval (Options.ProgressInterval) and one at the end. A nil *progress (no writer) is silent.
// It is used from one goroutine only.
type progress struct {
	w    io.Writer
	name string
	tty  bool
	bar  *progressbar.ProgressBar

	total     int64 // -1: unknown
	n         int64 // bytes in the file so far
	started   time.Time
	startN    int64 // n when the current attempt started
	lastLine  time.Time
	anyAdded  bool
	firstSeen time.Time
	interval  time.Duration // between lines on a non-terminal
}

func newProgress(w io.Writer, name string, interval time.Duration) *progress {
	if w == nil {
		return nil
	}
	return &progress{w: w, name: name, tty: isTerminal(w), total: -1, interval: interval}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// logf prints a note about the download on its own line.
func (p *progress) logf(format string, args ...any) {
	if p == nil {
		return
	}
	if p.bar != nil {
		p.bar.Clear()
	}
	fmt.Fprintf(p.w, "%s: %s\n", p.name, fmt.Sprintf(format, args...))
}

// begin starts (or, after a retry, continues) the report at n bytes of total
// (-1: unknown).
func (p *progress) begin(n, total int64) {
	if p == nil {
		return
	}
	p.n, p.total, p.startN = n, total, n
	now := time.Now()
	p.started, p.lastLine = now, now
	if p.firstSeen.IsZero() {
		p.firstSeen = now
	}
	if !p.tty {
		return
	}
	max := total
	if max <= 0 {
		max = -1
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(p.name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
		)
	} else {
		p.bar.Reset() // a retry: start the rate afresh
		if max > 0 {
			p.bar.ChangeMax64(max)
		}
	}
	p.bar.Set64(n)
}

// add counts n more bytes written.
func (p *progress) add(n int) {
	if p == nil || n == 0 {
		return
	}
	p.n += int64(n)
	p.anyAdded = true
	if p.bar != nil {
		p.bar.Add(n)
		return
	}
	if now := time.Now(); now.Sub(p.lastLine) >= p.interval {
		p.lastLine = now
		fmt.Fprintf(p.w, "%s: %s\n", p.name, p.status(now))
	}
}

func (p *progress) status(now time.Time) string {
	s := formatBytes(p.n)
	if p.total > 0 {
		s = fmt.Sprintf("%s of %s (%.0f%%)", s, formatBytes(p.total), 100*float64(p.n)/float64(p.total))
	}
	if el := now.Sub(p.started).Seconds(); el > 0 && p.n > p.startN {
		s += fmt.Sprintf(", %s/s", formatBytes(int64(float64(p.n-p.startN)/el)))
	}
	return s
}

// done reports the finished, verified file.
func (p *progress) done() {
	if p == nil {
		return
	}
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
	msg := "checksum ok"
	if p.anyAdded {
		msg = fmt.Sprintf("downloaded %s in %s, checksum ok", formatBytes(p.n),
			time.Since(p.firstSeen).Round(100*time.Millisecond))
	}
	fmt.Fprintf(p.w, "%s: %s\n", p.name, msg)
}

// formatBytes writes n in decimal units (kB, MB, GB).
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}
