package envctl

import (
	"context"
	"strings"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/running"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Keys of envctl start and stop, which move and failover run.
var (
	startKey = config.Define(config.Key{Name: "START_COMMAND", Doc: "how envctl start (and so move, restore and failover) starts an environment: a command, %j for the jname, e.g. /usr/local/bin/cbsd jstart %j; RUNNING_CHECK confirms it"})
	stopKey  = config.Define(config.Key{Name: "STOP_COMMAND", Doc: "how envctl stop (and so move and drain) stops an environment: a command, %j for the jname, e.g. /usr/local/bin/cbsd jstop %j; RUNNING_CHECK confirms it"})
)

// Start starts jname on this node with START_COMMAND, if this node owns it
// and it does not run already, and confirms with RUNNING_CHECK that it
// runs.
func (n *Node) Start(ctx context.Context, jname, kind string) error {
	return n.startStop(ctx, jname, kind, true)
}

// Stop stops jname with STOP_COMMAND if it runs, and confirms it stopped.
func (n *Node) Stop(ctx context.Context, jname, kind string) error {
	return n.startStop(ctx, jname, kind, false)
}

func (n *Node) startStop(ctx context.Context, jname, kind string, start bool) error {
	verb, key, done, already := "stop", stopKey, "stopped", "is stopped"
	if start {
		verb, key, done, already = "start", startKey, "started", "runs"
		// Never start what another node owns: mnt-start would refuse
		// anyway, but a command that mounts nothing would not.
		if _, err := lease.Check(ctx, n.Leases, jname, n.Name); err != nil {
			return err
		}
	}
	on, how, err := running.Check(ctx, n.runner(), n.Config, jname, kind)
	if err != nil {
		return sysexits.New(sysexits.TempFail, "cannot tell whether %s runs (%s): %v", jname, how, err)
	}
	if on == start {
		n.Log.Action("%s already %s on %s (%s)", jname, already, n.Name, how)
		return nil
	}
	words := n.Config.Words(key)
	if len(words) == 0 {
		return n.Config.Errorf(key, "cannot %s %s: %s is not set", verb, jname, key)
	}
	argv := make([]string, len(words))
	for i, w := range words {
		argv[i] = strings.ReplaceAll(w, "%j", jname)
	}
	if _, err := n.runner().Run(ctx, run.Cmd{Argv: argv, Timeout: n.Config.Seconds(config.CommandTimeout), Configured: true}); err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if n.DryRun {
		return nil
	}
	if len(n.Config.Words(config.RunningCheck)) == 0 && kind != Container {
		n.Log.Warn("%s: %s exited 0; without RUNNING_CHECK nothing confirms it", jname, key)
		return nil
	}
	on, how, err = running.Check(ctx, n.runner(), n.Config, jname, kind)
	if err != nil {
		return sysexits.New(sysexits.TempFail, "cannot tell whether %s runs after %s (%s): %v", jname, key, how, err)
	}
	if on != start {
		return sysexits.New(sysexits.Unavailable, "%s exited 0, but %s says %s is not %s", key, how, jname, done)
	}
	n.Log.Action("%s %s on %s", done, jname, n.Name)
	return nil
}
