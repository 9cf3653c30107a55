package envctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/history"
	"github.com/envhooks/envhooks/lib/journal"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/locallock"
	"github.com/envhooks/envhooks/lib/running"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// A crashed environment is one that should run on its owner and does not.
// The owner is alive and holds the lease, so no other node may touch it:
// the owner's own failover pass restarts it in place, HA_MAX_RESTART times
// within HA_WINDOW, and then gives it up for relocation: it stops it,
// unregisters it (descriptor to the shared storage, detach, release) and
// leaves a relocation record in the lease store, which a surviving node's
// failover pass answers as it answers a dead owner: a lease race picks
// exactly one, which registers and starts it.
//
// "Should run" is the inventory record's Started (see expect): set by
// envctl start, move and failover, cleared by envctl stop. An environment
// started or stopped around envctl (cbsd jstart/jstop by hand) keeps
// whatever envctl last recorded.

var haRestartKey = config.Define(config.Key{Name: "HA_MAX_RESTART", Default: "1", Doc: "per environment: how many times within HA_WINDOW envctl failover (and heartbeat with FAILOVER=1) restarts an HA=1 environment in place with START_COMMAND when it stopped on its live owner without envctl stop; the next time the owner stops, unregisters and releases it for another node to take over (0: at once)", Check: config.IsInt})

// Relocation is an owner's request, kept in the lease store, that another
// node take over an environment it gave up after HA_MAX_RESTART restarts.
// It is written before the owner unregisters it and deleted by the node
// that takes it.
type Relocation struct {
	JName    string    `json:"jname"`
	Kind     string    `json:"kind"`
	From     string    `json:"from"`
	Since    time.Time `json:"since"`
	Restarts int       `json:"restarts"`
}

const relocationKind = "relocate"

// busyWait is how long a failover pass waits for a lock a move, a start or
// a stop of the same environment holds: it looks again on its next pass.
const busyWait = time.Second

// tryLock takes the local lock name (n.lock's or n.moveLock's) if it is
// free within busyWait; a dry run takes none.
func (n *Node) tryLock(ctx context.Context, name string) (func(), bool) {
	if n.DryRun {
		return func() {}, true
	}
	l, err := locallock.Acquire(ctx, n.Config.Get(config.StateDir), name, busyWait)
	if err != nil {
		return nil, false
	}
	return func() { l.Release() }, true
}

// restartCrashed restarts in place, or gives up for relocation, every HA=1
// environment this node owns and expects to run that does not run, and
// finishes giving up any this node began to give up.
func (n *Node) restartCrashed(ctx context.Context, recs lease.Records, envConfig func(string) (*config.Config, error)) error {
	names, _, err := n.Inv.Names() // strays are named by list
	if err != nil {
		return err
	}
	var first error
	fail := func(jname string, err error) {
		n.Log.Error("restart of %s: %v", jname, err)
		if first == nil {
			first = err
		}
	}
	for _, jname := range names {
		rec, err := n.Inv.Load(jname)
		if err != nil || rec == nil || rec.Started.IsZero() {
			continue // damage is status's to name
		}
		cfg, err := envConfig(jname)
		if err != nil {
			fail(jname, err)
			continue
		}
		if !cfg.Bool(haKey) {
			continue
		}
		if err := n.restartOne(ctx, recs, cfg, jname, rec.Kind); err != nil {
			fail(jname, err)
		}
	}
	// Give-ups cut short (a crash, a failed unregister) go on.
	mine, err := n.relocations(ctx, recs)
	if err != nil {
		return err
	}
	for _, r := range mine {
		if r.From != n.Name {
			continue
		}
		if owner, err := n.owner(ctx, r.JName); err != nil || owner != n.Name {
			continue // released already (or unknown): the survivors' turn
		}
		cfg, err := envConfig(r.JName)
		if err != nil {
			fail(r.JName, err)
			continue
		}
		unlock, ok := n.tryLock(ctx, r.JName+".move")
		if !ok {
			continue
		}
		err = n.giveUp(ctx, recs, cfg, r)
		unlock()
		if err != nil {
			fail(r.JName, err)
		}
	}
	return first
}

// restartOne looks at one environment expected to run here.
func (n *Node) restartOne(ctx context.Context, recs lease.Records, cfg *config.Config, jname, kind string) error {
	// A move or recover of it holds this lock from its first step to its
	// last; one that runs now stops and starts it on purpose.
	unlock, ok := n.tryLock(ctx, jname+".move")
	if !ok {
		return nil
	}
	defer unlock()
	if j, err := journal.Load(ctx, recs, jname); err != nil || j != nil {
		return sysexits.Wrap(sysexits.Unavailable, err) // an open journal: recover's, not ours
	}
	if owner, err := n.owner(ctx, jname); err != nil || owner != n.Name {
		return err // another node's now: abandonLost lets it go
	}
	here := *n
	here.Config = cfg
	if on, how, err := running.Check(ctx, here.runner(), cfg, jname, kind); err != nil || on {
		if err != nil {
			return sysexits.New(sysexits.TempFail, "cannot tell whether %s runs (%s): %v", jname, how, err)
		}
		return nil
	}
	evs, err := history.List(ctx, recs, jname)
	if err != nil {
		// Neither restarted nor given up blindly.
		return sysexits.New(sysexits.Unavailable, "cannot read the history of %s: %v", jname, err)
	}
	restarts := restartsHere(evs, cfg, n.Name)
	if restarts < cfg.Int(haRestartKey) {
		return here.restart(ctx, jname, kind, restarts)
	}
	if relocated := failovers(evs, cfg); relocated >= cfg.Int(haRelocateKey) {
		// Said once: envctl stop clears what it is expected to do, and
		// it is an operator's now.
		if err := here.Stop(ctx, jname, kind); err != nil {
			return err
		}
		return sysexits.New(sysexits.TempFail, "%s stopped again after %d restarts here, and it failed over %d times within HA_WINDOW (HA_MAX_RELOCATE %d): leaving it stopped here for an operator", jname, restarts, relocated, cfg.Int(haRelocateKey))
	}
	return here.giveUp(ctx, recs, cfg, Relocation{JName: jname, Kind: kind, From: n.Name, Since: time.Now().UTC(), Restarts: restarts})
}

// restartsHere counts the restarts on node among evs within HA_WINDOW
// since the environment last came to node.
func restartsHere(evs []history.Event, cfg *config.Config, node string) int {
	since := time.Now().Add(-cfg.Seconds(haWindowKey))
	count := 0
	for _, ev := range evs {
		switch {
		case ev.Event == "restart" && ev.Node == node && ev.Time.After(since):
			count++
		case ev.Event != "restart" && ev.Node == node:
			count = 0 // it came here anew: a fresh budget
		}
	}
	return count
}

// restart starts jname again with START_COMMAND, if, under its lock, it is
// still expected to run and does not. The restart is in the history before
// START_COMMAND runs, so one that keeps failing uses up the budget.
func (n *Node) restart(ctx context.Context, jname, kind string, before int) error {
	unlock, ok := n.tryLock(ctx, jname+".envctl")
	if !ok {
		return nil // a start, stop or unregister of it runs: the next pass looks again
	}
	defer unlock()
	rec, err := n.Inv.Load(jname)
	if err != nil || rec == nil || rec.Started.IsZero() {
		return nil // stopped through envctl, or unregistered, meanwhile
	}
	on, how, err := running.Check(ctx, n.runner(), n.Config, jname, kind)
	if err != nil {
		return sysexits.New(sysexits.TempFail, "cannot tell whether %s runs (%s): %v", jname, how, err)
	}
	if on {
		return nil
	}
	budget := n.Config.Int(haRestartKey)
	n.note(ctx, history.Event{JName: jname, Kind: kind, Event: "restart", Node: n.Name, From: n.Name,
		Note: fmt.Sprintf("%s says it does not run; restart %d of HA_MAX_RESTART %d", how, before+1, budget)})
	if n.DryRun {
		n.Log.Action("would restart %s here (%s says it does not run)", jname, how)
		return nil
	}
	if err := n.startStop(ctx, jname, kind, true); err != nil {
		return err
	}
	n.Log.Warn("%s had stopped (%s): restarted it here, restart %d of HA_MAX_RESTART %d within HA_WINDOW", jname, how, before+1, budget)
	return nil
}

// giveUp stops and unregisters jname so that another node takes it over:
// the relocation record first, so that a give-up cut short is finished by
// this node's next pass and answered by the survivors all the same.
func (n *Node) giveUp(ctx context.Context, recs lease.Records, cfg *config.Config, r Relocation) error {
	if n.DryRun {
		n.Log.Action("would give %s up for another node to take over (it stopped again after %d restarts)", r.JName, r.Restarts)
		return nil
	}
	here := *n
	here.Config = cfg
	if err := lease.PutJSON(ctx, recs, relocationKind, r.JName, r); err != nil {
		return sysexits.New(sysexits.Unavailable, "cannot ask for the relocation of %s (nothing was changed): %v", r.JName, err)
	}
	if err := here.Stop(ctx, r.JName, r.Kind); err != nil {
		return err
	}
	if err := here.Unregister(ctx, r.JName, r.Kind); err != nil {
		return err
	}
	n.note(ctx, history.Event{JName: r.JName, Kind: r.Kind, Event: "relocate", From: n.Name,
		Note: fmt.Sprintf("stopped again after %d restarts within HA_WINDOW: released for another node", r.Restarts)})
	n.Log.Warn("%s stopped again after %d restarts here: stopped, unregistered and released it for another node to take over", r.JName, r.Restarts)
	return nil
}

// dropRelocation ends a request to relocate jname once a node registered
// it: a survivor answering it, or an operator registering it again, on
// the node that gave it up too (which would otherwise take the request
// for its own give-up cut short, and give it up again).
func (n *Node) dropRelocation(ctx context.Context, jname string) {
	recs, err := lease.RecordsOf(n.Leases)
	if err != nil {
		return // a store without records has no requests either
	}
	if err := recs.DeleteRecord(context.WithoutCancel(ctx), relocationKind, jname); err != nil {
		n.Log.Warn("could not drop the relocation record of %s: %v", jname, err)
	}
}

// relocations lists the relocation records.
func (n *Node) relocations(ctx context.Context, recs lease.Records) ([]Relocation, error) {
	names, err := recs.ListRecords(ctx, relocationKind)
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Unavailable, err)
	}
	var out []Relocation
	for _, name := range names {
		var r Relocation
		found, err := lease.GetJSON(ctx, recs, relocationKind, name, &r)
		if err != nil {
			n.Log.Error("the relocation record of %s: %v", name, err)
			continue
		}
		if found && r.JName == name {
			out = append(out, r)
		}
	}
	return out, nil
}

// takeRelocated answers the relocation records of other nodes: an
// environment its owner gave up and released is registered here (the lease
// race picks one survivor) and started. A record whose environment another
// node took is dropped.
func (n *Node) takeRelocated(ctx context.Context, lv lease.Liveness, recs lease.Records, envConfig func(string) (*config.Config, error)) error {
	all, err := n.relocations(ctx, recs)
	if err != nil {
		return err
	}
	var first error
	for _, r := range all {
		err := n.takeOneRelocated(ctx, lv, recs, envConfig, r)
		switch {
		case err == nil, errors.Is(err, errNotExpired), errors.Is(err, errNotEligible):
		default:
			n.Log.Error("relocation of %s from %s: %v", r.JName, r.From, err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

func (n *Node) takeOneRelocated(ctx context.Context, lv lease.Liveness, recs lease.Records, envConfig func(string) (*config.Config, error), r Relocation) error {
	owner, err := n.owner(ctx, r.JName)
	switch {
	case err != nil:
		return err
	case owner == r.From:
		return errNotExpired // still giving it up (or dead: the failover of dead owners' leases takes it)
	case owner != "":
		// Taken: by this node in a pass cut short, or by another.
		return sysexits.Wrap(sysexits.Unavailable, recs.DeleteRecord(ctx, relocationKind, r.JName))
	case r.From == n.Name:
		return errNotEligible // the node that gave it up does not take it back
	}
	cfg, err := envConfig(r.JName)
	if err != nil {
		return err
	}
	if !cfg.Bool(haKey) {
		return errNotEligible
	}
	rank, err := n.rank(ctx, lv, cfg, r.From)
	if err != nil {
		return err
	}
	if time.Since(r.Since) < rank {
		return errNotExpired
	}
	if n.DryRun {
		n.Log.Action("would take %s over (given up by %s after %d restarts) and start it here", r.JName, r.From, r.Restarts)
		return nil
	}
	if err := n.Register(ctx, r.JName, r.Kind, RegisterOptions{}); err != nil {
		var held *lease.HeldError
		if errors.As(err, &held) || sysexits.Code(err) == sysexits.NoPerm {
			return errNotEligible // another survivor won the race
		}
		return err
	}
	n.note(ctx, history.Event{JName: r.JName, Kind: r.Kind, Event: "failover", Node: n.Name, From: r.From,
		Note: fmt.Sprintf("given up by %s after %d restarts", r.From, r.Restarts)})
	if err := n.startTakenOver(ctx, cfg, r.JName, r.Kind); err != nil {
		return err
	}
	n.Log.Action("took %s over from %s (given up there after %d restarts) and started it here", r.JName, r.From, r.Restarts)
	return nil
}

// startTakenOver starts an HA=1 environment failover took over. It is
// expected to run here even when START_COMMAND fails: this node's next
// passes then retry it within HA_MAX_RESTART and give it up after, as
// for one that crashed.
func (n *Node) startTakenOver(ctx context.Context, cfg *config.Config, jname, kind string) error {
	starter := *n
	starter.Config = cfg
	err := starter.Start(ctx, jname, kind)
	if err != nil && !n.DryRun {
		if unlock, ok := n.tryLock(ctx, jname+".envctl"); ok {
			n.expect(jname, true)
			unlock()
		}
	}
	return err
}
