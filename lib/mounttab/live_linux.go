package mounttab

import (
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watcher is Live's view of the kernel on Linux: a mountinfo descriptor that
// polls as changed after every change of the namespace's mount table, and
// the namespace's mount IDs from listmount(2), which are never reused.
type watcher struct {
	fd      int      // /proc/self/mountinfo, only polled; -1 when unavailable
	ids     []uint64 // the mount IDs of Live's table, ascending
	counted bool     // ids is valid
}

func newWatcher() watcher {
	fd, err := unix.Open("/proc/self/mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fd = -1
	}
	return watcher{fd: fd}
}

// changed reports whether the table may have changed since the last call
// that reported a change (or since the descriptor was opened).
func (w *watcher) changed() bool {
	if w.fd < 0 {
		return true
	}
	p := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLPRI}}
	for {
		n, err := unix.Poll(p, 0)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n != 0
	}
}

// snapshot records the mount IDs of the table just read; false when the
// table cannot be tracked here at all.
func (w *watcher) snapshot() bool {
	if w.fd < 0 {
		return false
	}
	ids, err := listMountIDs()
	// Without listmount (before Linux 6.8, or filtered) Live still skips
	// reads while nothing changes; its own changes then force a read.
	w.ids, w.counted = ids, err == nil
	return true
}

// advance checks that the mount IDs moved from the recorded ones by exactly
// added new IDs and removed vanished ones, and records the new list.
func (w *watcher) advance(added, removed int) bool {
	if !w.counted {
		return false
	}
	ids, err := listMountIDs()
	if err != nil {
		w.counted = false
		return false
	}
	in, out := diffCount(w.ids, ids)
	if in != added || out != removed {
		return false
	}
	w.ids = ids
	return true
}

func (w *watcher) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}

// mntIDReq is struct mnt_id_req of linux/mount.h (version 0).
type mntIDReq struct {
	size  uint32
	spare uint32
	mntID uint64
	param uint64
}

const lsmtRoot = ^uint64(0) // LSMT_ROOT: every mount of the namespace

// listMountIDs returns the unique IDs of every mount in this process's mount
// namespace, ascending. x/sys has the system call number but no wrapper.
func listMountIDs() ([]uint64, error) {
	var all []uint64
	buf := make([]uint64, 4096)
	last := uint64(0)
	for {
		req := mntIDReq{size: uint32(unsafe.Sizeof(mntIDReq{})), mntID: lsmtRoot, param: last}
		n, _, errno := unix.Syscall6(unix.SYS_LISTMOUNT, uintptr(unsafe.Pointer(&req)),
			uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0, 0)
		if errno != 0 {
			return nil, errno
		}
		all = append(all, buf[:n]...)
		if int(n) < len(buf) {
			break
		}
		last = buf[n-1]
	}
	if !slices.IsSorted(all) {
		slices.Sort(all)
	}
	return all, nil
}

// diffCount counts the IDs only in b (in) and only in a (out); both are
// ascending.
func diffCount(a, b []uint64) (in, out int) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			i++
			j++
		case a[i] < b[j]:
			out++
			i++
		default:
			in++
			j++
		}
	}
	return in + len(b) - j, out + len(a) - i
}
