//go:build !linux && !freebsd

package zfs

const kernelFix = "envhooks runs on FreeBSD and Linux"

func kernelSupport() (bool, string) { return false, "unsupported on this system" }
