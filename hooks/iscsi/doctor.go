package iscsi

import (
	"context"
	"fmt"
	"strings"

	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/iscsi"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Diagnose checks the initiator's kernel module and daemon, the commands,
// and that every portal answers discovery within PREFLIGHT_TIMEOUT
// (backend.Diagnoser).
func (b *Backend) Diagnose(ctx context.Context) []doctor.Finding {
	var out []doctor.Finding
	if ok, how := doctor.Module(kernelModule); ok {
		out = append(out, doctor.Pass("iscsi: kernel initiator", "%s", how))
	} else {
		out = append(out, doctor.Failure(sysexits.Unavailable, "iscsi: kernel initiator", how, kernelModuleFix))
	}
	out = append(out, doctor.Commands("iscsi: commands", b.commands()...)...)
	out = append(out, daemonAnswers(ctx, b.PreflightTimeout))
	for _, p := range b.Portals {
		ts, err := iscsi.Discover(ctx, p, iscsi.Options{InitiatorName: b.InitiatorName, CHAP: b.CHAP, Timeout: b.PreflightTimeout})
		if err != nil {
			out = append(out, doctor.Failure(sysexits.Unavailable, "iscsi: portal", err.Error(), "start the target on "+p+" and let this node reach it (ISCSI_CHAP_FILE if it wants CHAP)"))
			continue
		}
		offered := "no targets"
		if len(ts) > 0 {
			offered = fmt.Sprintf("%d targets (%s)", len(ts), strings.Join(iscsi.Names(ts), ", "))
		}
		out = append(out, doctor.Pass("iscsi: portal", "%s answers discovery within PREFLIGHT_TIMEOUT (%s): %s", p, b.PreflightTimeout, offered))
	}
	return out
}

// commands are what the plans of this backend run.
func (b *Backend) commands() []string {
	out := []string{"mount", "umount"}
	if b.OS == Linux {
		out = append(out, "iscsiadm")
	} else {
		out = append(out, "iscsictl", "camcontrol")
	}
	if b.FSType == "zfs" {
		return append(out, "zpool")
	}
	if argv := b.fsckArgv("/dev/null"); len(argv) > 0 {
		out = append(out, argv[0])
	}
	return out
}

// FreeBSDDaemonStatusArgv asks rc(8) whether iscsid runs: exit 0 when it
// does (onestatus: whether or not it is enabled in rc.conf).
func FreeBSDDaemonStatusArgv() []string { return []string{"service", "iscsid", "onestatus"} }
