package envctl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/envhooks/envhooks/lib/fence"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// listedLease is one line of envctl lease list.
type listedLease struct {
	lease.Lease
	Heartbeat string `json:"heartbeat"` // alive, expired, never, unknown (the store keeps none)
}

// leaseList prints every lease in the store, with its owner's liveness:
// one place to see the whole cluster's ownership.
func (n *Node) leaseList(ctx context.Context, w io.Writer, asJSON bool) error {
	ls, err := n.Leases.List(ctx)
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	owners := make([]string, 0, len(ls))
	for _, l := range ls {
		owners = append(owners, l.Node)
	}
	// Every owner's heartbeat at once where the store allows (etcd: one
	// read), not one read per owner.
	states, err := lease.Nodes(ctx, n.Leases, owners, n.Config.Seconds(lease.TTLKey))
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	listed := func(l lease.Lease) listedLease {
		v := "unknown"
		if st, ok := states[l.Node]; states != nil && l.Node != lease.OrphanNode {
			switch {
			case !ok || !st.Known:
				v = "never"
			case st.Alive:
				v = "alive"
			default:
				v = "expired"
			}
		}
		return listedLease{Lease: l, Heartbeat: v}
	}
	bw := bufio.NewWriter(w)
	if asJSON {
		// One lease at a time: a cluster's 100,000 leases are never one
		// encoded array in memory.
		sep := "["
		for _, l := range ls {
			b, err := json.MarshalIndent(listed(l), "  ", "  ")
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(bw, "%s\n  %s", sep, b); err != nil {
				return err
			}
			sep = ","
		}
		end := "\n]\n"
		if len(ls) == 0 {
			end = "[]\n"
		}
		if _, err := bw.WriteString(end); err != nil {
			return err
		}
		return bw.Flush()
	}
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JNAME\tOWNER\tSINCE\tGEN\tHEARTBEAT")
	for _, l := range ls {
		since := "-"
		if !l.Since.IsZero() {
			since = l.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", l.JName, l.Node, since, l.Generation, listed(l).Heartbeat)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// firstBeat closes done after the first beat that succeeds.
type firstBeat struct {
	lease.Liveness
	done chan struct{}
	once sync.Once
}

func (f *firstBeat) Beat(ctx context.Context, node string, ttl time.Duration) error {
	err := f.Liveness.Beat(ctx, node, ttl)
	if err == nil {
		f.once.Do(func() { close(f.done) })
	}
	return err
}

// heartbeat renews this node's liveness in the lease store every third of
// LEASE_TTL until it is stopped (SIGTERM, SIGINT): the service that lets
// other nodes take this node's environments over only once it is dead, and
// that fences this node's environments when it is cut off (see watcher).
func (n *Node) heartbeat(ctx context.Context) error {
	lv, ok := n.Leases.(lease.Liveness)
	if !ok {
		return sysexits.New(sysexits.Config, "the %s lease store keeps no heartbeats", n.Config.Get(lease.BackendKey))
	}
	c, err := fence.Load(n.Config)
	if err != nil {
		return err
	}
	selfFence := "off (SELF_FENCE=0)"
	if n.Config.Bool(fence.SelfKey) {
		selfFence = fmt.Sprintf("after %s without a renewal, within %s", c.RenewBy(), c.Fence)
	}
	if n.DryRun {
		fmt.Fprintf(n.Out, "# renew the heartbeat of %s every %s (LEASE_TTL %s); self-fencing %s\n", n.Name, c.Interval, c.TTL, selfFence)
		return nil
	}
	n.Log.Action("heartbeat of %s every %s (LEASE_TTL %s); self-fencing %s", n.Name, c.Interval, c.TTL, selfFence)
	if u, ok := n.Leases.(lease.Upgrader); ok {
		// Once per cluster, after this node's first beat (which says
		// which envctl it runs): leases written by an older envctl get
		// what newer ones have (etcd: the index by owner).
		first := make(chan struct{})
		lv = &firstBeat{Liveness: lv, done: first}
		go func() {
			select {
			case <-ctx.Done():
				return
			case <-first:
			}
			if err := u.Upgrade(ctx); err != nil && ctx.Err() == nil {
				n.Log.Warn("%v", err)
			}
		}()
	}
	return newWatcher(n, lv, c).run(ctx)
}
