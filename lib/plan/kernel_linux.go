package plan

import "golang.org/x/sys/unix"

type osKernel struct{}

func (osKernel) Bind(src, target string) error {
	return unix.Mount(src, target, "", unix.MS_BIND, "")
}

func (osKernel) Unmount(target string, force bool) error {
	flags := 0
	if force {
		flags = unix.MNT_FORCE
	}
	return unix.Unmount(target, flags)
}
