package nullfs

import (
	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/sysexits"
)

var commands = []string{"mount", "umount"}

func kernelSupport() []doctor.Finding {
	ok, how := doctor.FileSystem("nullfs")
	if !ok {
		return []doctor.Finding{doctor.Failure(sysexits.Unavailable, "nullfs: kernel", how, `kldload nullfs, and add nullfs_load="YES" to /boot/loader.conf`)}
	}
	return []doctor.Finding{doctor.Pass("nullfs: kernel", "%s", how)}
}
