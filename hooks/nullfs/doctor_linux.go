package nullfs

import "github.com/envhooks/envhooks/lib/doctor"

// Bind mounts are made with mount(2) itself; umount(8) undoes a busy one.
var commands = []string{"umount"}

func kernelSupport() []doctor.Finding {
	return []doctor.Finding{doctor.Pass("nullfs: kernel", "bind mounts are part of every Linux kernel")}
}
