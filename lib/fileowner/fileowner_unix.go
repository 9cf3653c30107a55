//go:build unix

// Package fileowner tells who owns a file, for the checks that refuse a
// hook or a secret file that someone other than root could have written.
package fileowner

import (
	"os"
	"syscall"
)

// UID returns the owner of fi; ok is false where the OS does not say.
func UID(fi os.FileInfo) (uid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}
