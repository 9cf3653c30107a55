package envctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/history"
	"github.com/envhooks/envhooks/lib/journal"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Keys of automatic failover. HA and its HA_* keys are read per
// environment (envhooks.d/<jname>.conf), FAILOVER per node.
var (
	failoverKey    = config.Define(config.Key{Name: "FAILOVER", Default: "0", Doc: "1: envctl heartbeat also restarts this node's crashed HA=1 environments (HA_MAX_RESTART) and takes over and starts the HA=1 environments of nodes whose heartbeat expired or that gave them up (envctl failover does one pass)", Check: config.IsBool})
	haKey          = config.Define(config.Key{Name: "HA", Default: "0", Doc: "per environment: 1 lets envctl failover move it to a surviving node when its owner's heartbeat has been older than LEASE_TTL plus HA_DELAY", Check: config.IsBool})
	haNodesKey     = config.Define(config.Key{Name: "HA_NODES", Doc: "per environment: the nodes it may fail over to, most preferred first, separated by blanks (empty: any node running failover)"})
	haDelayKey     = config.Define(config.Key{Name: "HA_DELAY", Default: "5", Doc: "seconds beyond LEASE_TTL a dead owner's heartbeat must be expired before failover (the fence margin); each less preferred node waits LEASE_TTL/3 more", Check: config.IsSeconds})
	haRelocateKey  = config.Define(config.Key{Name: "HA_MAX_RELOCATE", Default: "1", Doc: "per environment: how many failovers HA_WINDOW allows; beyond it the environment stays where it is, stopped, for an operator (no ping-pong)", Check: config.IsSeconds})
	haWindowKey    = config.Define(config.Key{Name: "HA_WINDOW", Default: "3600", Doc: "per environment: the seconds HA_MAX_RELOCATE counts failovers over", Check: config.IsSeconds})
	errNotExpired  = errors.New("not expired long enough")
	errNotEligible = errors.New("not eligible")
)

// Takeover is how failover takes an environment from a dead node. The
// default is jregister --takeover's path, fence step included.
type Takeover interface {
	Take(ctx context.Context, n *Node, jname, kind, from string) error
}

// registerTakeover takes over as jregister --takeover does: the lease
// only if its owner's heartbeat is LEASE_TTL + FENCE_MARGIN old, after the
// fence step (a race among survivors decides), then attach, descriptor,
// record.
type registerTakeover struct{}

func (registerTakeover) Take(ctx context.Context, n *Node, jname, kind, _ string) error {
	return n.Register(ctx, jname, kind, RegisterOptions{Takeover: true})
}

// Failover makes one pass: what another node took over while this one was
// away is let go; this node's own HA=1 environments that crashed are
// restarted in place or given up (see restartCrashed); then every HA=1
// environment whose owner's heartbeat expired, or that its owner gave up,
// that this node may take, and whose relocations are within budget, is
// taken over and started here. envConfig loads an environment's own
// configuration.
func (n *Node) Failover(ctx context.Context, envConfig func(jname string) (*config.Config, error)) error {
	lv, ok := n.Leases.(lease.Liveness)
	if !ok {
		return sysexits.New(sysexits.Config, "failover needs heartbeats: the %s lease store keeps none", n.Config.Get(lease.BackendKey))
	}
	recs, err := n.records()
	if err != nil {
		return err
	}
	// First what this node lost while it was away: a node coming back
	// must neither run nor keep attached what another node took over.
	lost := n.abandonLost(ctx)
	// Then what crashed here while this node lives: restarted in place,
	// or given up for another node.
	crashed := n.restartCrashed(ctx, recs, envConfig)
	if err := n.refuseInMaintenance(ctx, "failover"); err != nil {
		return cmp.Or(lost, crashed) // a node in maintenance takes nothing
	}
	relocated := n.takeRelocated(ctx, lv, recs, envConfig)
	all, err := n.Leases.List(ctx)
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	ttl := n.Config.Seconds(lease.TTLKey)
	var first error
	for _, l := range all {
		if l.Node == n.Name || l.Node == lease.OrphanNode {
			continue
		}
		alive, known, last, err := lv.Alive(ctx, l.Node, ttl)
		if err != nil || alive || !known {
			continue
		}
		cfg, err := envConfig(l.JName)
		if err != nil {
			n.Log.Error("failover of %s: %v", l.JName, err)
			continue
		}
		if !cfg.Bool(haKey) {
			continue
		}
		err = n.failOne(ctx, lv, recs, cfg, l, last)
		switch {
		case err == nil, errors.Is(err, errNotExpired), errors.Is(err, errNotEligible):
		default:
			n.Log.Error("failover of %s from %s: %v", l.JName, l.Node, err)
			if first == nil {
				first = err
			}
		}
	}
	return cmp.Or(lost, crashed, relocated, first)
}

func (n *Node) failOne(ctx context.Context, lv lease.Liveness, recs lease.Records, cfg *config.Config, l lease.Lease, last time.Time) error {
	ttl := n.Config.Seconds(lease.TTLKey)
	rank, err := n.rank(ctx, lv, cfg, l.Node)
	if err != nil {
		return err
	}
	wait := ttl + cfg.Seconds(haDelayKey) + rank
	if !last.IsZero() && time.Since(last) < wait {
		return errNotExpired
	}
	if j, err := journal.Load(ctx, recs, l.JName); err != nil || j != nil {
		if j != nil {
			return sysexits.New(sysexits.TempFail, "a move of it is unfinished: run envctl recover jname=%s", l.JName)
		}
		return err
	}
	evs, err := history.List(ctx, recs, l.JName)
	if err != nil {
		return err
	}
	kind := Jail
	for _, ev := range evs {
		if ev.Kind != "" {
			kind = ev.Kind
		}
	}
	if moved := failovers(evs, cfg); moved >= cfg.Int(haRelocateKey) {
		return sysexits.New(sysexits.TempFail, "it failed over %d times within HA_WINDOW (HA_MAX_RELOCATE %d): leaving it for an operator", moved, cfg.Int(haRelocateKey))
	}
	if n.DryRun {
		n.Log.Action("would take %s over from %s and start it here", l.JName, l.Node)
		return nil
	}
	take := n.Takeover
	if take == nil {
		take = registerTakeover{}
	}
	if err := take.Take(ctx, n, l.JName, kind, l.Node); err != nil {
		var held *lease.HeldError
		if errors.As(err, &held) || sysexits.Code(err) == sysexits.NoPerm {
			return errNotEligible // another survivor won the race
		}
		return err
	}
	n.note(ctx, history.Event{JName: l.JName, Kind: kind, Event: "failover", Node: n.Name, From: l.Node})
	if err := n.startTakenOver(ctx, cfg, l.JName, kind); err != nil {
		return err
	}
	n.Log.Action("failed %s over from %s (heartbeat last seen %s) and started it here", l.JName, l.Node, last.UTC().Format(time.RFC3339))
	return nil
}

// rank is how much longer than the best placed survivor this node waits
// before it takes an environment from the node from: LEASE_TTL/3 for each
// node HA_NODES prefers to it that is alive, so in the common case the
// preferred survivor wins (the lease race keeps it one winner
// regardless). errNotEligible when HA_NODES does not name this node.
func (n *Node) rank(ctx context.Context, lv lease.Liveness, cfg *config.Config, from string) (time.Duration, error) {
	prefs := cfg.Words(haNodesKey)
	if len(prefs) == 0 {
		return 0, nil
	}
	if !slices.Contains(prefs, n.Name) {
		return 0, errNotEligible
	}
	ttl := n.Config.Seconds(lease.TTLKey)
	var wait time.Duration
	for _, p := range prefs {
		if p == n.Name {
			break
		}
		if alive, _, _, err := lv.Alive(ctx, p, ttl); err == nil && alive && p != from {
			wait += ttl / 3
		}
	}
	return wait, nil
}

// failovers counts the failovers among evs within HA_WINDOW: what
// HA_MAX_RELOCATE bounds, relocations after restarts included.
func failovers(evs []history.Event, cfg *config.Config) int {
	since := time.Now().Add(-cfg.Seconds(haWindowKey))
	count := 0
	for _, ev := range evs {
		if ev.Event == "failover" && ev.Time.After(since) {
			count++
		}
	}
	return count
}

// failoverLoop makes a failover pass every LEASE_TTL/3 until ctx ends,
// beside the heartbeat.
func (n *Node) failoverLoop(ctx context.Context, envConfig func(string) (*config.Config, error)) {
	t := time.NewTicker(n.Config.Seconds(lease.TTLKey) / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Failures are logged per environment by the pass.
			_ = n.Failover(ctx, envConfig)
		}
	}
}

// Abandon drops what this node still has of an environment another node
// owns now (taken over while this node was dead or cut off): it stops it
// here if it runs, detaches its storage and drops the local record. The
// lease, the other node's, and the descriptor on the shared storage are
// left alone. It refuses while this node owns the environment or nobody
// does: then junregister is the way.
func (n *Node) Abandon(ctx context.Context, jname string) error {
	unlock, l, err := n.begin(ctx, jname)
	if err != nil {
		return err
	}
	defer unlock()
	if l == nil || l.Node == n.Name {
		return sysexits.New(sysexits.Usage, "%s is not owned by another node: use junregister", jname)
	}
	rec, err := n.Inv.Load(jname)
	if err != nil || rec == nil {
		return sysexits.Wrap(sysexits.DataErr, err)
	}
	if n.DryRun {
		fmt.Fprintf(n.Out, "# stop %s here if it runs, detach it, drop its record (owned by %s now)\n", jname, l.Node)
		return nil
	}
	if err := n.stopLocked(ctx, jname, rec.Kind); err != nil {
		return err
	}
	if err := n.session(jname, rec.Kind).Stop(ctx); err != nil {
		return err
	}
	if err := n.Inv.Remove(jname); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot remove the inventory record: %v", err)
	}
	n.note(ctx, history.Event{JName: jname, Kind: rec.Kind, Event: "abandon", Node: l.Node, From: n.Name, Generation: l.Generation, Note: "registered here, owned by " + l.Node})
	n.Log.Warn("%s is owned by %s now: stopped and detached it here, dropped its record", jname, l.Node)
	return nil
}

// abandonLost abandons every environment registered here that another
// node owns: what a node coming back after a failover still holds.
func (n *Node) abandonLost(ctx context.Context) error {
	names, _, err := n.Inv.Names() // strays are named by list
	if err != nil {
		return err
	}
	var first error
	for _, jname := range names {
		l, err := n.Leases.Get(ctx, jname)
		if err != nil || l == nil || l.Node == n.Name || l.Node == lease.OrphanNode {
			continue
		}
		if err := n.Abandon(ctx, jname); err != nil {
			n.Log.Error("%s is owned by %s, but this node could not let it go: %v", jname, l.Node, err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}
