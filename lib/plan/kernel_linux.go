package plan

import "golang.org/x/sys/unix"

type osKernel struct{}

func (osKernel) Bind(src, target string) error {
	return unix.Mount(src, target, "", unix.MS_BIND, "")
}

// Unmount with force detaches the mount (MNT_FORCE|MNT_DETACH): Linux
// refuses MNT_FORCE alone while the mount is in use (EBUSY), which is
// exactly when FORCE_UNMOUNT=1 is asked for. The processes holding files
// in it keep them until they close them.
func (osKernel) Unmount(target string, force bool) error {
	flags := 0
	if force {
		flags = unix.MNT_FORCE | unix.MNT_DETACH
	}
	return unix.Unmount(target, flags)
}
