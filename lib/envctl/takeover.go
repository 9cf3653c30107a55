package envctl

import (
	"context"
	"time"

	"github.com/envhooks/envhooks/lib/fence"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// takeLease makes this node the owner of jname: a plain acquire, or a
// takeover from the node that holds it (--force --from, --takeover), which
// runs the fence step first and stops if it fails (unless --no-fence).
func (n *Node) takeLease(ctx context.Context, jname string, opt RegisterOptions) (*lease.Lease, error) {
	if !opt.Force && !opt.Takeover {
		return n.Leases.Acquire(ctx, jname, n.Name)
	}
	cur, err := n.Leases.Get(ctx, jname)
	if err != nil {
		return nil, err
	}
	if cur == nil || cur.Node == n.Name {
		return n.Leases.Acquire(ctx, jname, n.Name)
	}
	if opt.Force && cur.Node != opt.From {
		return nil, sysexits.New(sysexits.NoPerm, "refusing the takeover: %s is held by %s, not by %s as you said", jname, cur.Node, opt.From)
	}
	if opt.Takeover {
		if err := n.expired(ctx, cur); err != nil {
			return nil, err
		}
	}
	if opt.NoFence {
		n.Log.Warn("--no-fence: taking %s from %s without fencing it: if %s still runs it, two nodes write its storage", jname, cur.Node, cur.Node)
	} else {
		step, err := fence.NewStep(n.Config, n.Backends, n.runner(), n.Log)
		if err != nil {
			return nil, err
		}
		how, err := step.Fence(ctx, fence.Request{JName: jname, Victim: cur.Node, Generation: cur.Generation, Forced: opt.Force})
		if err != nil {
			return nil, err
		}
		n.Log.Action("fence step before taking %s from %s: %s", jname, cur.Node, how)
	}
	return n.Leases.Takeover(ctx, jname, n.Name, cur.Node)
}

// expired refuses (77) a takeover from a holder whose heartbeat is not yet
// LEASE_TTL + FENCE_MARGIN old by this node's clock, or that never sent
// one: until then it may be cut off and still fencing itself.
func (n *Node) expired(ctx context.Context, cur *lease.Lease) error {
	c, err := fence.Load(n.Config)
	if err != nil {
		return err
	}
	lv, ok := n.Leases.(lease.Liveness)
	if !ok {
		return sysexits.New(sysexits.Config, "this lease store keeps no heartbeats: take %s over with --force --from %s", cur.JName, cur.Node)
	}
	after := c.TakeoverAfter()
	alive, known, last, err := lv.Alive(ctx, cur.Node, after)
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if !known {
		return sysexits.Wrap(sysexits.NoPerm, &lease.NotExpiredError{Lease: *cur})
	}
	// etcd judges a heartbeat by its own TTL: the margin is waited for
	// here, on the time of the holder's last beat.
	if age := time.Since(last); alive || (!last.IsZero() && age < after) {
		since := "a moment"
		if !last.IsZero() {
			since = age.Round(time.Millisecond).String()
		}
		return sysexits.New(sysexits.NoPerm, "refusing the takeover of %s: its owner %s is alive or may be (last heartbeat %s ago); a takeover waits until that is LEASE_TTL + FENCE_MARGIN (%s) old, by when a cut-off owner has fenced itself; run envctl junregister %s on %s, or wait",
			cur.JName, cur.Node, since, after, cur.JName, cur.Node)
	}
	return nil
}
