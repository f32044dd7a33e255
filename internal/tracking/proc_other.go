//go:build !unix

package tracking

// lockFile is a no-op where flock is not available: concurrent processes
// then rely on the exclusive renames alone.
func lockFile(path string) (func(), error) { return func() {}, nil }

// processGone cannot tell without kill(2): stale runs are never reaped.
func processGone(pid int, procStart string) bool { return false }

func procStartTime(pid int) string { return "" }
