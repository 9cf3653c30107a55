package iscsi_test

import (
	"runtime"

	"github.com/envhooks/envhooks/hooks/iscsi"
)

func iscsiNative() iscsi.OS {
	if runtime.GOOS == "freebsd" {
		return iscsi.FreeBSD
	}
	return iscsi.Linux
}
