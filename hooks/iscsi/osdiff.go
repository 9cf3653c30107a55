package iscsi

import (
	"os"
	"strings"

	"github.com/envhooks/envhooks/lib/mounttab"
)

func hostname() string {
	h, _ := os.Hostname()
	h = strings.ToLower(h)
	if h == "" {
		h = "localhost"
	}
	return h
}

func fallbackInitiatorName() string { return "iqn.2026-01.org.envhooks:" + hostname() }

func (b *Backend) fsckArgv(dev string) []string {
	if b.OS == FreeBSD {
		return FreeBSDFsckArgv(b.FSType, dev)
	}
	return LinuxFsckArgv(b.FSType, dev)
}

func (b *Backend) mountArgv(dev, target string) []string {
	if b.OS == FreeBSD {
		return FreeBSDMountArgv(b.FSType, dev, target)
	}
	return LinuxMountArgv(b.FSType, dev, target)
}

func (b *Backend) bindArgv(src, target string) []string {
	if b.OS == FreeBSD {
		return FreeBSDBindArgv(src, target)
	}
	return LinuxBindArgv(src, target)
}

// bindWant matches the role mounts: on Linux mountinfo records the
// underlying filesystem's type for a bind mount, so no type is required.
func (b *Backend) bindWant(src string) mounttab.Want {
	if b.OS == FreeBSD {
		return mounttab.Want{FSType: "nullfs", BindOf: src}
	}
	return mounttab.Want{BindOf: src}
}

func (b *Backend) logoutArgv(target, portal string) []string {
	if b.OS == FreeBSD {
		return FreeBSDLogoutArgv(target, portal)
	}
	return LinuxLogoutArgv(target, portal)
}

// forceUnmountArgv: FreeBSD's umount -f unmounts even while files are open
// in the mount; Linux refuses -f alone while the mount is in use, so there
// it also detaches (-l), and the holders keep their files until they close
// them.
func (b *Backend) forceUnmountArgv(target string) []string {
	if b.OS == FreeBSD {
		return []string{"umount", "-f", target}
	}
	return []string{"umount", "-f", "-l", target}
}
