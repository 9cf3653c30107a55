//go:build !linux && !freebsd

package nfs

var commands []string

const kernelClientFix = "envhooks runs on FreeBSD and Linux"

func kernelClient(int) (bool, string) { return false, "unsupported on this system" }
