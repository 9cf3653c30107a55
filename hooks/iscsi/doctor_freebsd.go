package iscsi

import (
	"context"
	"time"

	"github.com/envhooks/envhooks/lib/doctor"
)

const (
	kernelModule    = "iscsi"
	kernelModuleFix = `kldload iscsi, and add iscsi_load="YES" to /boot/loader.conf`
)

// daemonAnswers asks rc(8) whether iscsid(8), which logs in for iscsictl,
// runs.
func daemonAnswers(ctx context.Context, timeout time.Duration) doctor.Finding {
	return doctor.Answers(ctx, "iscsi: iscsid", timeout, FreeBSDDaemonStatusArgv(), []int{0}, "iscsid runs",
		`sysrc iscsid_enable=YES && service iscsid start`)
}
