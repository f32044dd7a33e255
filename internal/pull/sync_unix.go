//go:build unix

package pull

import "syscall"

// syncFilesystems flushes written files to disk: one sync instead of an fsync
// per extracted file (7,390 of them for the pets images).
func syncFilesystems() { syscall.Sync() }
