package mounttab

import (
	"path/filepath"

	"golang.org/x/sys/unix"
)

func read() (Table, error) {
	// MNT_NOWAIT returns the kernel's cached statistics instead of asking
	// every filesystem, so a dead NFS server cannot block this call.
	n, err := unix.Getfsstat(nil, unix.MNT_NOWAIT)
	if err != nil {
		return nil, err
	}
	buf := make([]unix.Statfs_t, n+8) // room for mounts made meanwhile
	n, err = unix.Getfsstat(buf, unix.MNT_NOWAIT)
	if err != nil {
		return nil, err
	}
	t := make(Table, 0, n)
	for _, s := range buf[:n] {
		t = append(t, Mount{
			Source: unix.ByteSliceToString(s.Mntfromname[:]),
			Target: filepath.Clean(unix.ByteSliceToString(s.Mntonname[:])),
			FSType: unix.ByteSliceToString(s.Fstypename[:]),
		})
	}
	return t, nil
}

// ShowsDir reports whether mount m shows directory dir: on FreeBSD a nullfs
// mount names its source directory as what it mounts from.
func (t Table) ShowsDir(m Mount, dir string) bool {
	return m.FSType == "nullfs" && filepath.Clean(m.Source) == filepath.Clean(dir)
}

// WithBind returns the table as it is after a nullfs mount of src on target.
func (t Table) WithBind(src, target string) Table {
	m := Mount{Source: filepath.Clean(src), Target: filepath.Clean(target), FSType: "nullfs"}
	return append(t[:len(t):len(t)], m)
}
