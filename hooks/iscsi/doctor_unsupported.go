//go:build !linux && !freebsd

package iscsi

import (
	"context"
	"time"

	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/sysexits"
)

const (
	kernelModule    = "iscsi"
	kernelModuleFix = "envhooks runs on FreeBSD and Linux"
)

func daemonAnswers(context.Context, time.Duration) doctor.Finding {
	return doctor.Failure(sysexits.Unavailable, "iscsi: initiator", "unsupported on this system", kernelModuleFix)
}
