package iscsi

import (
	"context"
	"time"

	"github.com/envhooks/envhooks/lib/doctor"
)

const (
	kernelModule    = "iscsi_tcp"
	kernelModuleFix = "modprobe iscsi_tcp (Debian: open-iscsi loads it)"
)

// daemonAnswers asks iscsid through iscsiadm: 0 lists sessions, 21 says
// there are none; anything else (20: cannot connect) means no daemon.
func daemonAnswers(ctx context.Context, timeout time.Duration) doctor.Finding {
	return doctor.Answers(ctx, "iscsi: iscsid", timeout, LinuxSessionsArgv(), []int{0, 21}, "iscsid answers",
		"start iscsid (systemctl enable --now iscsid)")
}
