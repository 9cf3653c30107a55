package testenv

import (
	"os"

	"golang.org/x/sys/unix"
)

// MakeTmpfs makes a new directory named like os.MkdirTemp's pattern with a
// tmpfs on it: servers' fsyncs there cost what they cost on a
// battery-backed disk, not on a test machine's. It is only seen inside the
// test's private mount namespace. RemoveTmpfs ends it.
func MakeTmpfs(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
		os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// RemoveTmpfs unmounts and removes a directory MakeTmpfs made.
func RemoveTmpfs(dir string) {
	unix.Unmount(dir, unix.MNT_DETACH)
	os.RemoveAll(dir)
}

// SharedTmpfs is a scratch tmpfs (MakeTmpfs) a test package's tests and
// servers share.
func SharedTmpfs(pattern string) *Shared[string] {
	return &Shared[string]{Make: func() (string, error) { return MakeTmpfs(pattern) }, End: RemoveTmpfs}
}
