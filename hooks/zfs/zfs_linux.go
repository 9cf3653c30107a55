package zfs

import (
	"os"

	"github.com/envhooks/envhooks/lib/mounttab"
)

var (
	legacyMountArgv = LinuxLegacyMountArgv
	unmountArgv     = LinuxUnmountArgv
)

// isZFS accepts OpenZFS's type and zfs-fuse's (a FUSE filesystem, which
// mountinfo shows as fuse.zfs with the dataset as its source).
func isZFS(fstype string) bool { return fstype == "zfs" || fstype == "fuse.zfs" }

// want matches the dataset by its name, which both OpenZFS and zfs-fuse
// record as the mount's source; the type differs between them.
func want(ds string) mounttab.Want { return mounttab.Want{Source: ds} }

// kernelZFS reports whether ZFS runs in the kernel: OpenZFS's module makes
// /dev/zfs; zfs-fuse has none (its zfs talks to its daemon over a socket).
func kernelZFS() bool {
	_, err := os.Stat("/dev/zfs")
	return err == nil
}
