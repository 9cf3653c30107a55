package zfs

import "github.com/envhooks/envhooks/lib/mounttab"

var (
	legacyMountArgv = FreeBSDLegacyMountArgv
	unmountArgv     = FreeBSDUnmountArgv
)

func isZFS(fstype string) bool { return fstype == "zfs" }

func want(ds string) mounttab.Want { return mounttab.Want{FSType: "zfs", Source: ds} }

// kernelZFS: ZFS is always in the kernel on FreeBSD.
func kernelZFS() bool { return true }
