// Package rawread reads small files whole with plain open(2) and read(2).
// os.Open registers every file with Go's poller, which costs a hook's
// idempotent start an epoll instance and a woken thread for nothing; the
// hooks read their few small files (the mount table, notes, configuration)
// this way instead.
package rawread

import (
	"os"

	"golang.org/x/sys/unix"
)

// File returns the contents of path; errors are *os.PathError, so
// errors.Is(err, os.ErrNotExist) works as with os.ReadFile.
func File(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 16<<10)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
