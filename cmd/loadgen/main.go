// Command loadgen drives `petbreed serve` with HTTP load and reports exact
// latency percentiles and throughput; it also has the small helpers that
// scripts/bench-serve.sh needs. It only talks to loopback addresses.
//
//	loadgen -url http://127.0.0.1:8080/api/predict -image photo.jpg -c 32 -n 2000 [-d 20s] [-warmup 50] [-multipart] [-json|-env] [-pid PID]
//	loadgen -wait http://127.0.0.1:8080/api/health [-wait-timeout 60s] [-since EPOCH_SECONDS] [-pid PID]
//	loadgen -rss PID
//	loadgen -free-port
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"petbreed/internal/loadgen"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	url, image, contentType string
	concurrency, requests   int
	duration                time.Duration
	warmup                  int
	multipart               bool
	timeout                 time.Duration
	asJSON, asEnv           bool
	pid                     int
	sampleEvery             time.Duration

	wait        string
	waitTimeout time.Duration
	poll        time.Duration
	since       string

	rss      int
	freePort bool
}

const usageText = `Usage:
  loadgen -url URL -image FILE [-c N] [-n N | -d DURATION] [-warmup N] [-multipart] [-json | -env] [-pid PID]
      POST the image to URL from N concurrent workers (a closed loop, keep-alive) and report
      the exact latency percentiles and the throughput of the successful (2xx) requests.
      With -pid, also the server process's RSS (sampled during the run), peak RSS (VmHWM) and CPU time.
  loadgen -wait HEALTH_URL [-wait-timeout 60s] [-poll 5ms] [-since EPOCH_SECONDS] [-pid PID]
      Wait for HEALTH_URL to answer 200 and print the seconds it took (since -since, a Unix time
      such as bash's $EPOCHREALTIME taken just before starting the server; else since loadgen started
      waiting). With -pid, give up as soon as that process exits.
  loadgen -rss PID
      Print a process's RSS and peak RSS (VmRSS and VmHWM of /proc/PID/status).
  loadgen -free-port
      Print a TCP port free on 127.0.0.1.

Only loopback hosts are allowed (127.0.0.0/8, ::1, localhost): this workplace forbids traffic elsewhere.
Output: a table, or -json, or -env (KEY=VALUE lines for shell scripts).

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "", "URL to POST the image to, e.g. http://127.0.0.1:8080/api/predict")
	fs.StringVar(&o.image, "image", "", "the image file to send")
	fs.StringVar(&o.contentType, "content-type", "", "the image's content type (default: sniffed from its bytes)")
	fs.IntVar(&o.concurrency, "c", 1, "concurrent workers, each with one request in flight")
	fs.IntVar(&o.requests, "n", 0, "measured requests in all (default 1000 when -d is not set)")
	fs.DurationVar(&o.duration, "d", 0, "run for this long (with -n: whichever comes first)")
	fs.IntVar(&o.warmup, "warmup", 0, "requests sent and discarded before measuring")
	fs.BoolVar(&o.multipart, "multipart", false, `send the image as the multipart/form-data field "file" instead of the raw body`)
	fs.DurationVar(&o.timeout, "timeout", loadgen.DefaultTimeout, "per-request timeout")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	fs.BoolVar(&o.asEnv, "env", false, "print KEY=VALUE lines")
	fs.IntVar(&o.pid, "pid", 0, "the server's process id: report its memory and CPU (load), or stop waiting when it exits (-wait)")
	fs.DurationVar(&o.sampleEvery, "sample", 50*time.Millisecond, "with -pid: how often to sample the server's RSS during the run")
	fs.StringVar(&o.wait, "wait", "", "wait for this health URL to answer 200, print the seconds it took, and exit")
	fs.DurationVar(&o.waitTimeout, "wait-timeout", 60*time.Second, "with -wait: give up after this long")
	fs.DurationVar(&o.poll, "poll", 5*time.Millisecond, "with -wait: time between attempts")
	fs.StringVar(&o.since, "since", "", "with -wait: measure from this Unix time in seconds (e.g. bash's $EPOCHREALTIME)")
	fs.IntVar(&o.rss, "rss", 0, "print the RSS and peak RSS of this process and exit")
	fs.BoolVar(&o.freePort, "free-port", false, "print a free TCP port on 127.0.0.1 and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "loadgen: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run 'loadgen -h' for usage.")
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.asJSON && o.asEnv {
		return usage("-json and -env are exclusive")
	}
	modes := 0
	for _, on := range []bool{o.url != "", o.wait != "", o.rss != 0, o.freePort} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return usage("give exactly one of -url, -wait, -rss and -free-port")
	}
	out := outputFormat(o)
	switch {
	case o.freePort:
		return freePort(stdout, stderr)
	case o.rss != 0:
		return printRSS(o.rss, out, stdout, stderr)
	case o.wait != "":
		if err := loadgen.CheckLoopback(o.wait); err != nil {
			return usage("%v", err)
		}
		return waitReady(ctx, o, out, stdout, stderr)
	}
	if err := loadgen.CheckLoopback(o.url); err != nil {
		return usage("%v", err)
	}
	switch {
	case o.image == "":
		return usage("-image is required with -url")
	case o.concurrency < 1:
		return usage("-c must be at least 1")
	case o.requests < 0 || o.duration < 0 || o.warmup < 0 || o.timeout <= 0:
		return usage("-n, -d and -warmup must not be negative, -timeout must be positive")
	case o.pid < 0 || o.sampleEvery <= 0:
		return usage("-pid must be a process id and -sample positive")
	}
	if o.requests == 0 && o.duration == 0 {
		o.requests = 1000
	}
	return load(ctx, o, out, stdout, stderr)
}

type format int

const (
	formatTable format = iota
	formatJSON
	formatEnv
)

func outputFormat(o options) format {
	switch {
	case o.asJSON:
		return formatJSON
	case o.asEnv:
		return formatEnv
	}
	return formatTable
}

// report is the result of a load run, as printed.
type report struct {
	URL            string      `json:"url"`
	Multipart      bool        `json:"multipart"`
	ContentType    string      `json:"content_type"`
	BodyBytes      int         `json:"body_bytes"`
	Concurrency    int         `json:"concurrency"`
	Warmup         int         `json:"warmup"`
	Requests       int         `json:"requests"`
	Errors         int         `json:"errors"`
	ErrorsByStatus map[int]int `json:"errors_by_status"`
	FirstError     string      `json:"first_error,omitempty"`
	ElapsedS       float64     `json:"elapsed_s"`
	Throughput     float64     `json:"throughput"` // successful requests per second
	LatencyMS      latencyMS   `json:"latency_ms"` // of the successful requests
	LoadgenCPUS    float64     `json:"loadgen_cpu_s"`
	Server         *serverStat `json:"server,omitempty"`
	Interrupted    bool        `json:"interrupted,omitempty"`
}

type latencyMS struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// serverStat is what -pid measured of the server; CPU time and the RSS
// samples cover the whole run, warm-up included.
type serverStat struct {
	PID          int     `json:"pid"`
	RSSMaxBytes  int64   `json:"rss_max_bytes"`  // highest VmRSS sampled during the run
	PeakRSSBytes int64   `json:"peak_rss_bytes"` // VmHWM after the run
	CPUS         float64 `json:"cpu_s"`
}

func load(ctx context.Context, o options, out format, stdout, stderr io.Writer) int {
	body, err := os.ReadFile(o.image)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return exitFailure
	}
	ct := o.contentType
	if ct == "" {
		ct = http.DetectContentType(body)
	}
	cfg := loadgen.Config{
		URL: o.url, Body: body, ContentType: ct, Multipart: o.multipart, Filename: filepath.Base(o.image),
		Concurrency: o.concurrency, Requests: o.requests, Duration: o.duration, Warmup: o.warmup, Timeout: o.timeout,
	}

	var (
		sampler  *loadgen.RSSSampler
		cpuStart time.Duration
	)
	if o.pid > 0 {
		if !loadgen.ProcessAlive(o.pid) {
			fmt.Fprintf(stderr, "loadgen: process %d is not running\n", o.pid)
			return exitFailure
		}
		cpuStart, _ = loadgen.ProcessCPU(o.pid)
		sampler = loadgen.StartRSSSampler(o.pid, o.sampleEvery)
	}
	selfStart := selfCPU()
	res, err := loadgen.Run(ctx, cfg)
	selfCPU := selfCPU() - selfStart
	interrupted := err != nil && ctx.Err() != nil
	if err != nil && !interrupted {
		if sampler != nil {
			sampler.Stop()
		}
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return exitFailure
	}

	r := report{
		URL: o.url, Multipart: o.multipart, ContentType: ct, BodyBytes: len(body), Concurrency: o.concurrency,
		Warmup: o.warmup, Requests: res.Requests, Errors: res.Errors, ErrorsByStatus: res.ErrorsByStatus,
		FirstError: res.FirstError, ElapsedS: res.Elapsed.Seconds(), Throughput: res.Throughput,
		LatencyMS:   latencyMS{P50: ms(res.P50), P90: ms(res.P90), P99: ms(res.P99), Max: ms(res.Max), Mean: ms(res.Mean)},
		LoadgenCPUS: selfCPU.Seconds(), Interrupted: interrupted,
	}
	if sampler != nil {
		s := &serverStat{PID: o.pid}
		s.RSSMaxBytes, _ = sampler.Stop()
		if m, err := loadgen.ReadProcMem(o.pid); err == nil {
			s.PeakRSSBytes = m.Peak
		} else {
			fmt.Fprintf(stderr, "loadgen: server memory: %v\n", err)
		}
		if cpu, err := loadgen.ProcessCPU(o.pid); err == nil {
			s.CPUS = (cpu - cpuStart).Seconds()
		}
		r.Server = s
	}
	switch out {
	case formatJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	case formatEnv:
		printEnv(stdout, r)
	default:
		printTable(stdout, r)
	}
	if interrupted {
		fmt.Fprintln(stderr, "loadgen: interrupted: the figures are partial")
		return exitFailure
	}
	return exitOK
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mb formats bytes in megabytes (10^6).
func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// selfCPU is this process's CPU time so far, user plus system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// statusList formats errors by status, most frequent first: "503: 12, 0 (no response): 1".
func statusList(by map[int]int) string {
	codes := make([]int, 0, len(by))
	for c := range by {
		codes = append(codes, c)
	}
	slices.SortFunc(codes, func(a, b int) int {
		if by[a] != by[b] {
			return by[b] - by[a]
		}
		return a - b
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "0 (no response)"
		}
		parts[i] = fmt.Sprintf("%s: %d", name, by[c])
	}
	return strings.Join(parts, ", ")
}

func printTable(w io.Writer, r report) {
	how := "raw " + r.ContentType + " body"
	if r.Multipart {
		how = `multipart field "file" (` + r.ContentType + ")"
	}
	fmt.Fprintf(w, "target      %s: %s of %.1f KB, concurrency %d, warm-up %d\n", r.URL, how, float64(r.BodyBytes)/1e3, r.Concurrency, r.Warmup)
	fmt.Fprintf(w, "requests    %d (%d ok, %d errors)\n", r.Requests, r.Requests-r.Errors, r.Errors)
	if r.Errors > 0 {
		fmt.Fprintf(w, "errors      %s\n", statusList(r.ErrorsByStatus))
		fmt.Fprintf(w, "first error %s\n", oneLine(r.FirstError))
	}
	fmt.Fprintf(w, "elapsed     %.3f s\n", r.ElapsedS)
	fmt.Fprintf(w, "throughput  %.1f req/s (successful)\n", r.Throughput)
	l := r.LatencyMS
	fmt.Fprintf(w, "latency     p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms   mean %.2f ms\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	sent := r.Requests + r.Warmup
	perReq := func(s float64) string {
		if sent == 0 {
			return ""
		}
		return fmt.Sprintf(" (%.2f ms/request)", s*1000/float64(sent))
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server      pid %d: RSS max %s during the run, peak %s (VmHWM); CPU %.2f s%s\n",
			s.PID, mb(s.RSSMaxBytes), mb(s.PeakRSSBytes), s.CPUS, perReq(s.CPUS))
	}
	fmt.Fprintf(w, "loadgen     CPU %.2f s%s\n", r.LoadgenCPUS, perReq(r.LoadgenCPUS))
}

// printEnv prints KEY=VALUE lines, one value per line, for shells
// (`while IFS== read -r k v`). Durations in milliseconds, sizes in bytes.
func printEnv(w io.Writer, r report) {
	kv := func(k string, v any) { fmt.Fprintf(w, "%s=%v\n", k, v) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	kv("requests", r.Requests)
	kv("errors", r.Errors)
	kv("errors_by_status", strings.ReplaceAll(statusList(r.ErrorsByStatus), " (no response)", ""))
	kv("first_error", oneLine(r.FirstError))
	kv("elapsed_s", f(r.ElapsedS))
	kv("throughput", f(r.Throughput))
	kv("p50_ms", f(r.LatencyMS.P50))
	kv("p90_ms", f(r.LatencyMS.P90))
	kv("p99_ms", f(r.LatencyMS.P99))
	kv("max_ms", f(r.LatencyMS.Max))
	kv("mean_ms", f(r.LatencyMS.Mean))
	kv("loadgen_cpu_s", f(r.LoadgenCPUS))
	if s := r.Server; s != nil {
		kv("server_rss_max_bytes", s.RSSMaxBytes)
		kv("server_peak_rss_bytes", s.PeakRSSBytes)
		kv("server_cpu_s", f(s.CPUS))
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func waitReady(ctx context.Context, o options, out format, stdout, stderr io.Writer) int {
	var since time.Time
	if o.since != "" {
		t, err := parseEpoch(o.since)
		if err != nil {
			fmt.Fprintf(stderr, "loadgen: -since: %v\n", err)
			return exitUsage
		}
		since = t
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, o.waitTimeout, fmt.Errorf("gave up after -wait-timeout %v", o.waitTimeout))
	defer cancelTimeout()
	if o.pid > 0 {
		go func() {
			t := time.NewTicker(max(o.poll, 5*time.Millisecond))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if !loadgen.ProcessAlive(o.pid) {
						cancel(fmt.Errorf("process %d exited", o.pid))
						return
					}
				}
			}
		}()
	}
	d, err := loadgen.WaitReady(ctx, o.wait, o.poll)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return exitFailure
	}
	if !since.IsZero() {
		d = time.Since(since)
	}
	secs := strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
	switch out {
	case formatJSON:
		fmt.Fprintf(stdout, "{\"ready_s\": %s}\n", secs)
	case formatEnv:
		fmt.Fprintf(stdout, "ready_s=%s\n", secs)
	default:
		fmt.Fprintln(stdout, secs)
	}
	return exitOK
}

// parseEpoch parses Unix seconds with an optional fraction ("1764000000.123456";
// a comma as the decimal mark too, as bash prints $EPOCHREALTIME in some locales).
func parseEpoch(s string) (time.Time, error) {
	s = strings.Replace(strings.TrimSpace(s), ",", ".", 1)
	secStr, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil || sec <= 0 || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("%q is not a Unix time in seconds", s)
	}
	var nsec int64
	if frac != "" {
		nsec, err = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		if err != nil || strings.ContainsAny(frac, "+-") {
			return time.Time{}, fmt.Errorf("%q is not a Unix time in seconds", s)
		}
	}
	return time.Unix(sec, nsec), nil
}

func printRSS(pid int, out format, stdout, stderr io.Writer) int {
	m, err := loadgen.ReadProcMem(pid)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return exitFailure
	}
	switch out {
	case formatJSON:
		fmt.Fprintf(stdout, "{\"pid\": %d, \"rss_bytes\": %d, \"peak_rss_bytes\": %d}\n", pid, m.RSS, m.Peak)
	case formatEnv:
		fmt.Fprintf(stdout, "rss_bytes=%d\npeak_rss_bytes=%d\n", m.RSS, m.Peak)
	default:
		fmt.Fprintf(stdout, "pid %d: RSS %s, peak %s (VmHWM)\n", pid, mb(m.RSS), mb(m.Peak))
	}
	return exitOK
}

func freePort(stdout, stderr io.Writer) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return exitFailure
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	fmt.Fprintln(stdout, port)
	return exitOK
}
