//go:build !linux && !freebsd

package nullfs

import (
	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/sysexits"
)

var commands []string

func kernelSupport() []doctor.Finding {
	return []doctor.Finding{doctor.Failure(sysexits.Unavailable, "nullfs: kernel", "unsupported on this system", "envhooks runs on FreeBSD and Linux")}
}
