// Package safefile reads and writes the project's own small files safely:
// a write replaces a file atomically (a crash leaves the old file or the new
// one, never a torn one), and a read takes only a regular file of bounded
// size, so a FIFO, a device or a huge file named by mistake is refused
// instead of hanging the program or filling its memory.
//
// google/renameio does the atomic part too, but it probes $TMPDIR with two
// extra files on every write and does not fsync the directory; both matter
// here (thousands of records per migration, and a rename that must survive a
// crash), so the few lines are kept.
package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// WriteAtomic replaces path with data: temp file in the same directory,
// fsync, rename, fsync of the directory.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this finds nothing
	if _, err = f.Write(data); err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes a rename or a removal in dir durable. Filesystems that
// cannot sync a directory (some FUSE ones) are not an error: there is
// nothing more to do on them.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

// Remove removes path; a missing file is not an error.
func Remove(path string) error {
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ErrNotRegular and ErrTooLarge say why Read refused a file.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("too large")
)

// Read returns the content of the regular file at path, at most max bytes.
// It opens without blocking, so a FIFO is refused at once instead of
// waiting for a writer; a device, a directory or a socket is refused too
// (ErrNotRegular), and so is a file over max bytes (ErrTooLarge). A missing
// file is os.ErrNotExist, as from os.ReadFile.
//
// It works on the descriptor with open(2), fstat(2) and read(2) directly:
// os.Open registers every file with Go's poller, which costs a hook's
// idempotent start an epoll instance and a woken thread for nothing. Files
// of /proc report size 0 and are read up to max like any other.
func Read(path string, max int64) ([]byte, error) {
	fd, err := retry(func() (int, error) {
		return unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	})
	if err != nil {
		// A socket or a device without a driver cannot even be opened:
		// say what it is rather than ENXIO.
		var st unix.Stat_t
		if unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(uint32(st.Mode)))
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(uint32(st.Mode)))
	}
	if st.Size > max {
		return nil, fmt.Errorf("%s: %w (%d bytes; at most %d are read)", path, ErrTooLarge, st.Size, max)
	}
	// The size can grow between fstat and the read: read one byte past
	// max to notice.
	limit := max + 1
	buf := make([]byte, 0, min(limit, st.Size+1))
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		end := min(int64(cap(buf)), limit)
		n, err := retry(func() (int, error) { return unix.Read(fd, buf[len(buf):end]) })
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
	return nil, fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, max)
}

func retry(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err != unix.EINTR {
			return n, err
		}
	}
}

func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	}
	return fmt.Sprintf("mode %o", mode)
}
