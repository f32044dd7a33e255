//go:build unix

package tracking

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockFile takes an exclusive flock on path, creating it if needed. The
// lock belongs to the open file, so it also excludes other goroutines of
// this process, and the kernel drops it when the process dies.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// processGone reports whether the process pid that recorded procStart (its
// start time from /proc, "" if unknown) no longer exists on this host: no
// such pid, a zombie, or a pid since reused by a process that started at
// another time. When in doubt it answers false.
func processGone(pid int, procStart string) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return true
	}
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	state, start, ok := procStat(pid)
	if !ok {
		return false
	}
	if state == "Z" || state == "X" {
		return true
	}
	return procStart != "" && start != procStart
}

// procStartTime is this process's start time as /proc records it ("" where
// there is no /proc).
func procStartTime(pid int) string {
	_, start, _ := procStat(pid)
	return start
}

// procStat reads the state and start time (field 22, in clock ticks since
// boot) of pid from /proc/<pid>/stat.
func procStat(pid int) (state, start string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may contain spaces
	if i < 0 {
		return "", "", false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return "", "", false
	}
	return f[0], f[19], true
}
