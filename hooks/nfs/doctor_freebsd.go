package nfs

import "github.com/envhooks/envhooks/lib/doctor"

var commands = []string{"mount_nfs", "umount"}

const kernelClientFix = `kldload nfscl, and add nfscl_load="YES" to /boot/loader.conf (or nfs_client_enable="YES" to /etc/rc.conf)`

func kernelClient(int) (bool, string) { return doctor.FileSystem("nfs", "nfscl", "nfs") }
