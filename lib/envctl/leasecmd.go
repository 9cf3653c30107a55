package envctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	ttl := n.Config.Seconds(lease.TTLKey)
	lv, _ := n.Leases.(lease.Liveness)
	verdict := map[string]string{}
	out := make([]listedLease, 0, len(ls))
	for _, l := range ls {
		v, ok := verdict[l.Node]
		if !ok {
			v = "unknown"
			if lv != nil && l.Node != lease.OrphanNode {
				alive, known, _, err := lv.Alive(ctx, l.Node, ttl)
				switch {
				case err != nil:
					return sysexits.Wrap(sysexits.Unavailable, err)
				case !known:
					v = "never"
				case alive:
					v = "alive"
				default:
					v = "expired"
				}
			}
			verdict[l.Node] = v
		}
		out = append(out, listedLease{Lease: l, Heartbeat: v})
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JNAME\tOWNER\tSINCE\tGEN\tHEARTBEAT")
	for _, l := range out {
		since := "-"
		if !l.Since.IsZero() {
			since = l.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", l.JName, l.Node, since, l.Generation, l.Heartbeat)
	}
	return tw.Flush()
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
	return newWatcher(n, lv, c).run(ctx)
}
