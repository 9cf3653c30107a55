package zfs

import "github.com/envhooks/envhooks/lib/doctor"

const kernelFix = `kldload zfs, and add zfs_load="YES" to /boot/loader.conf`

func kernelSupport() (bool, string) { return doctor.Module("zfs") }
