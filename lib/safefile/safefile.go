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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
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

// WriteJSON writes v as indented JSON with WriteAtomic, creating the
// directory with dirPerm when it is missing.
func WriteJSON(path string, v any, perm, dirPerm os.FileMode) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return err
	}
	return WriteAtomic(path, append(raw, '\n'), perm)
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
func Read(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: %w (%d bytes; at most %d are read)", path, ErrTooLarge, fi.Size(), max)
	}
	// The size can grow between Stat and the read: read one byte past max
	// to notice.
	raw, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("%s: %w (more than %d bytes)", path, ErrTooLarge, max)
	}
	return raw, nil
}

// ReadJSON decodes the file at path (at most max bytes, see Read) into v;
// found is false when there is no such file. what names the file's kind in
// the error of a damaged one.
func ReadJSON(path, what string, max int64, v any) (found bool, err error) {
	raw, err := Read(path, max)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("%s %v", what, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("%s %s is damaged: %v", what, path, err)
	}
	return true, nil
}

func kind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}
