package nfs

import "github.com/envhooks/envhooks/lib/doctor"

// mount(8) hands NFS to the mount.nfs helper of nfs-common (nfs-utils).
var commands = []string{"mount", "umount", "mount.nfs"}

const kernelClientFix = "install the NFS client (Debian: nfs-common) and a kernel with NFS client support (modprobe nfsv4)"

func kernelClient(version int) (bool, string) {
	if version == 4 {
		return doctor.FileSystem("nfs4", "nfsv4")
	}
	return doctor.FileSystem("nfs", "nfs", "nfsv3")
}
