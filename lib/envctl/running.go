package envctl

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

var runningKey = config.RunningCheck

// refuseIfRunning stops junregister from pulling storage from under a
// running environment (75, with what runs).
func (n *Node) refuseIfRunning(ctx context.Context, jname, kind string) error {
	running, how, err := n.isRunning(ctx, jname, kind)
	if err != nil {
		return sysexits.New(sysexits.TempFail, "cannot tell whether %s runs (%s): %v", jname, how, err)
	}
	if running {
		return sysexits.New(sysexits.TempFail, "%s is running (%s): stop it first", jname, how)
	}
	return nil
}

// runningCheck is the command that tells whether an environment of kind
// runs here: RUNNING_CHECK (configured: it must pass the checks of a
// configured executable), else the kind's own; none on Linux for jails and
// VMs.
func (n *Node) runningCheck(kind string) (words []string, configured bool) {
	switch words := n.Config.Words(runningKey); {
	case len(words) > 0:
		return words, true
	case kind == Container:
		return lxcRunningCheck(n.Config), false
	default:
		return defaultRunningCheck(kind), false
	}
}

func (n *Node) isRunning(ctx context.Context, jname, kind string) (bool, string, error) {
	words, configured := n.runningCheck(kind)
	if len(words) == 0 {
		return false, "no RUNNING_CHECK configured", nil
	}
	argv := make([]string, len(words))
	for i, w := range words {
		argv[i] = strings.ReplaceAll(w, "%j", jname)
	}
	if dev, ok := strings.CutPrefix(argv[0], "exists:"); ok {
		_, err := os.Stat(dev)
		return err == nil, dev + " exists", nil
	}
	// The check only reads: it runs in a dry run too.
	_, err := n.runner().Run(ctx, run.Cmd{Argv: argv, Timeout: n.Config.Seconds(config.CommandTimeout), ReadOnly: true, Configured: configured})
	var re *run.Error
	switch {
	case err == nil:
		return true, run.Quote(argv) + " exited 0", nil
	case errors.As(err, &re) && re.ExitCode == 1:
		return false, run.Quote(argv), nil
	default:
		return false, run.Quote(argv), err
	}
}

// FreeBSDRunningCheck asks the kernel: jls(8) for jails (exit 1: no such
// jail), the vmm device bhyve creates for every VM it runs. It is kept on
// every OS so that the argv is tested everywhere.
func FreeBSDRunningCheck(kind string) []string {
	if kind == VM {
		return []string{"exists:/dev/vmm/%j"}
	}
	return []string{"jls", "-j", "%j", "jid"}
}
