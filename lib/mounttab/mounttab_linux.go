package mounttab

import (
	"bytes"
	"os"
	"path/filepath"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func read() (Table, error) {
	raw, err := readProcFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	infos, err := mountinfo.GetMountsFromReader(bytes.NewReader(raw), nil)
	if err != nil {
		return nil, err
	}
	t := make(Table, 0, len(infos))
	for _, i := range infos {
		t = append(t, Mount{
			Source:  i.Source,
			Target:  filepath.Clean(i.Mountpoint),
			FSType:  i.FSType,
			Options: i.Options,
			Dev:     devString(i.Major, i.Minor),
			Root:    i.Root,
		})
	}
	return t, nil
}

// ShowsDir reports whether mount m shows directory dir: the mount was made
// by binding dir onto m.Target. Linux records a bind mount as (filesystem,
// directory within it), so dir is resolved the same way through the mount
// that holds it and the two pairs are compared.
func (t Table) ShowsDir(m Mount, dir string) bool {
	dir = filepath.Clean(dir)
	holder, ok := t.containing(dir)
	if !ok {
		return false
	}
	rel, err := filepath.Rel(holder.Target, dir)
	if err != nil {
		return false
	}
	return m.Dev == holder.Dev && filepath.Clean(m.Root) == filepath.Join(holder.Root, rel)
}

// WithBind returns the table as it is after binding src onto target:
// mountinfo shows the filesystem holding src and the directory within it.
// The engine uses it to keep its copy of the table right without reading
// the whole table again after each mount(2).
func (t Table) WithBind(src, target string) Table {
	src = filepath.Clean(src)
	holder, ok := t.containing(src)
	if !ok {
		return nil
	}
	rel, err := filepath.Rel(holder.Target, src)
	if err != nil {
		return nil
	}
	m := Mount{Source: holder.Source, Target: filepath.Clean(target), FSType: holder.FSType, Options: holder.Options,
		Dev: holder.Dev, Root: filepath.Join(holder.Root, rel)}
	return append(t[:len(t):len(t)], m)
}

// readProcFile reads a /proc file whole with plain system calls. The
// process's own mount table is /proc/self/mountinfo: envhooks never moves a
// single thread into another mount namespace, so it does not need moby's
// /proc/thread-self, which pins the goroutine to a fresh OS thread; and plain
// read(2) keeps Go's poller (an epoll instance and its thread) out of the
// hooks' idempotent path.
func readProcFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
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
