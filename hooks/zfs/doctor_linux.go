package zfs

import "github.com/envhooks/envhooks/lib/doctor"

const kernelFix = "install OpenZFS (modprobe zfs); zfs-fuse works too, without the kernel module"

// kernelSupport looks for OpenZFS's module; zfs-fuse has none, which the
// dataset check below then shows working or not.
func kernelSupport() (bool, string) { return doctor.FileSystem("zfs") }
