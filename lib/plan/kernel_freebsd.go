package plan

import (
	"errors"

	"golang.org/x/sys/unix"
)

type osKernel struct{}

// Bind is not used on FreeBSD: nullfs mounts go through mount(8), which
// builds the nmount(2) arguments.
func (osKernel) Bind(src, target string) error {
	return errors.New("direct bind mounts are a Linux feature; use mount -t nullfs")
}

func (osKernel) Unmount(target string, force bool) error {
	flags := 0
	if force {
		flags = unix.MNT_FORCE
	}
	return unix.Unmount(target, flags)
}
