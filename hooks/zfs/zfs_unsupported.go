//go:build !linux && !freebsd

package zfs

import "github.com/envhooks/envhooks/lib/mounttab"

// Where envhooks does not run (lib/platform stops the programs first), the
// BSD forms stand in so the tree builds.
var (
	legacyMountArgv = FreeBSDLegacyMountArgv
	unmountArgv     = FreeBSDUnmountArgv
)

func isZFS(fstype string) bool { return fstype == "zfs" }

func want(ds string) mounttab.Want { return mounttab.Want{FSType: "zfs", Source: ds} }

func kernelZFS() bool { return false }
