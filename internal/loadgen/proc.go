package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcMem is a process's memory as /proc/<pid>/status reports it, in bytes.
type ProcMem struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the most ever resident (the high-water mark)
}

// ReadProcMem reads VmRSS and VmHWM from /proc/<pid>/status (Linux). A
// process that has exited (or is a zombie) has neither: that is an error.
func ReadProcMem(pid int) (ProcMem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcMem{}, fmt.Errorf("process %d: %w", pid, err)
	}
	defer f.Close()
	m, err := parseStatus(f)
	if err != nil {
		return ProcMem{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return m, nil
}

// ProcessRSS returns the resident set size (VmRSS) of process pid in bytes.
func ProcessRSS(pid int) (int64, error) {
	m, err := ReadProcMem(pid)
	return m.RSS, err
}

// ProcessPeakRSS returns the peak resident set size (VmHWM) of process pid
// in bytes, over its whole life so far.
func ProcessPeakRSS(pid int) (int64, error) {
	m, err := ReadProcMem(pid)
	return m.Peak, err
}

// parseStatus reads the VmRSS and VmHWM lines ("VmRSS:\t  1234 kB") of a
// /proc/<pid>/status file.
func parseStatus(r io.Reader) (ProcMem, error) {
	var m ProcMem
	var haveRSS, havePeak bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb < 0 {
			return m, fmt.Errorf("unexpected %s line %q", key, sc.Text())
		}
		if key == "VmRSS" {
			m.RSS, haveRSS = kb<<10, true
		} else {
			m.Peak, havePeak = kb<<10, true
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if !haveRSS || !havePeak {
		return m, errors.New("no VmRSS/VmHWM in its status (has it exited?)")
	}
	return m, nil
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const userHZ = 100

// ProcessCPU returns the CPU time (user plus system) that process pid has
// used so far, at a resolution of 10 ms.
func ProcessCPU(pid int) (time.Duration, error) {
	_, cpu, err := readStat(pid)
	return cpu, err
}

// ProcessAlive reports whether process pid exists and is not a zombie
// (exited, waiting for its parent to reap it).
func ProcessAlive(pid int) bool {
	state, _, err := readStat(pid)
	return err == nil && state != "Z" && state != "X" && state != "x"
}

// readStat returns the state and the CPU time of /proc/<pid>/stat.
func readStat(pid int) (string, time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return parseStat(b)
}

// parseStat parses "pid (comm) state ppid ... utime stime ...": the command
// name may hold spaces and parentheses, so fields count from the last ')'.
func parseStat(b []byte) (string, time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, fmt.Errorf("unexpected stat %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // state is field 3; utime 14 and stime 15
		return "", 0, fmt.Errorf("unexpected stat %q", b)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, fmt.Errorf("unexpected stat %q", b)
	}
	return f[0], time.Duration(ut+st) * time.Second / userHZ, nil
}

// RSSSampler samples a process's VmRSS at an interval until stopped, and
// keeps the highest value seen.
type RSSSampler struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	max  int64
	n    int
}

// StartRSSSampler samples pid's RSS now and then every interval.
func StartRSSSampler(pid int, interval time.Duration) *RSSSampler {
	s := &RSSSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() {
		if rss, err := ProcessRSS(pid); err == nil {
			s.mu.Lock()
			s.max = max(s.max, rss)
			s.n++
			s.mu.Unlock()
		}
	}
	sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return s
}

// Stop takes a last sample, stops sampling and returns the highest RSS seen
// in bytes and the number of samples taken (0 when the process was never
// readable).
func (s *RSSSampler) Stop() (maxRSS int64, samples int) {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max, s.n
}
