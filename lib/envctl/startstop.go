package envctl

import (
	"context"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/fence"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/running"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// START_COMMAND is envctl start's, which move, restore and failover run;
// STOP_COMMAND (fence.StopCommandKey) is shared by envctl stop and
// self-fencing: one way to stop an environment.
var startKey = config.Define(config.Key{Name: "START_COMMAND", Doc: "how envctl start (and so move, restore and failover) starts an environment: a command, %j for the jname, e.g. /usr/local/bin/cbsd jstart %j; RUNNING_CHECK confirms it"})

// stopCommand is STOP_COMMAND, or the kind's own way to stop; fast (for
// self-fencing) stops at once, without a clean shutdown. configured says
// whether the argv came from the configuration.
func (n *Node) stopCommand(kind, jname string, fast bool) (argv []string, configured bool) {
	cfg := n.Config
	if words := cfg.Words(fence.StopCommandKey); len(words) > 0 {
		return fence.Command(words, jname), true
	}
	switch {
	case kind == Container && fast:
		return []string{"lxc-stop", "-P", cfg.Get(config.LXCPath), "-n", jname, "-k"}, false
	case kind == Container:
		return []string{"lxc-stop", "-P", cfg.Get(config.LXCPath), "-n", jname}, false
	case kind == VM && fast:
		return []string{cfg.Get(cbsdKey), "bstop", "noacpi=1", "jname=" + jname}, true
	case kind == VM:
		return []string{cfg.Get(cbsdKey), "bstop", "jname=" + jname}, true
	case fast:
		return []string{cfg.Get(cbsdKey), "jstop", "fast=1", "jname=" + jname}, true
	}
	return []string{cfg.Get(cbsdKey), "jstop", "jname=" + jname}, true
}

// Start starts jname on this node with START_COMMAND, if this node owns it
// and it does not run already, and confirms with RUNNING_CHECK that it
// runs. From then on jname is expected to run here (see expect).
func (n *Node) Start(ctx context.Context, jname, kind string) error {
	unlock, err := n.lock(ctx, jname)
	if err != nil {
		return err
	}
	defer unlock()
	if err := n.startStop(ctx, jname, kind, true); err != nil {
		return err
	}
	n.expect(jname, true)
	return nil
}

// Stop stops jname with STOP_COMMAND if it runs, and confirms it stopped.
// It is no longer expected to run, from before STOP_COMMAND on: nothing
// restarts what is being stopped.
func (n *Node) Stop(ctx context.Context, jname, kind string) error {
	unlock, err := n.lock(ctx, jname)
	if err != nil {
		return err
	}
	defer unlock()
	return n.stopLocked(ctx, jname, kind)
}

// stopLocked is Stop for a caller holding jname's lock.
func (n *Node) stopLocked(ctx context.Context, jname, kind string) error {
	n.expect(jname, false)
	return n.startStop(ctx, jname, kind, false)
}

// expect records in jname's inventory record whether it is expected to
// run here: envctl start sets it, envctl stop clears it, and nothing else
// does, so a stop that did not come through envctl (a crash, a killed
// process) leaves it set. The caller holds jname's lock. Without a record
// (not registered here) there is nothing to record; a record that cannot
// be written is said, not fatal: the start or stop itself happened.
func (n *Node) expect(jname string, running bool) {
	if n.DryRun {
		return
	}
	rec, err := n.Inv.Load(jname)
	if err != nil || rec == nil || rec.Started.IsZero() != running {
		return
	}
	rec.Started = time.Time{}
	if running {
		rec.Started = time.Now().UTC().Truncate(time.Second)
	}
	if err := n.Inv.Save(rec); err != nil {
		n.Log.Warn("could not record in the inventory that %s is expected to run (%v): %v", jname, running, err)
	}
}

// startStop runs START_COMMAND or STOP_COMMAND unless RUNNING_CHECK says
// it is not needed. The caller holds jname's lock.
func (n *Node) startStop(ctx context.Context, jname, kind string, start bool) error {
	verb, key, done, already := "stop", fence.StopCommandKey, "stopped", "is stopped"
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
	argv, configured := n.stopCommand(kind, jname, false)
	if start {
		words := n.Config.Words(key)
		if len(words) == 0 {
			return n.Config.Errorf(key, "cannot %s %s: %s is not set", verb, jname, key)
		}
		argv, configured = fence.Command(words, jname), true
	}
	if _, err := n.runner().Run(ctx, run.Cmd{Argv: argv, Timeout: n.Config.Seconds(config.CommandTimeout), Configured: configured}); err != nil {
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
