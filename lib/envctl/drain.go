package envctl

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Maintenance is a node's drain mark in the lease store: while it lasts
// the node acquires nothing new (jregister and lease acquire refuse), and
// it survives reboots because it lives with the leases, not on the node.
type Maintenance struct {
	Node    string    `json:"node"`
	Since   time.Time `json:"since"`
	Targets []string  `json:"targets"`
}

// Drained says where drain sent one environment, so restore brings it
// home.
type Drained struct {
	JName string    `json:"jname"`
	Kind  string    `json:"kind"`
	To    string    `json:"to"`
	Since time.Time `json:"since"`
}

const maintenanceKind = "maintenance"

func drainedKind(home string) string { return "drained/" + home }

// maintenance returns node's mark, nil when it is not in maintenance.
func (n *Node) maintenance(ctx context.Context, node string) (*Maintenance, error) {
	recs, err := lease.RecordsOf(n.Leases)
	if err != nil {
		return nil, nil // a store without records keeps no marks either
	}
	var m Maintenance
	found, err := lease.GetJSON(ctx, recs, maintenanceKind, node, &m)
	if err != nil || !found {
		return nil, sysexits.Wrap(sysexits.Unavailable, err)
	}
	return &m, nil
}

// refuseInMaintenance is the guard of every path that acquires.
func (n *Node) refuseInMaintenance(ctx context.Context, jname string) error {
	m, err := n.maintenance(ctx, n.Name)
	if err != nil {
		return err
	}
	if m != nil {
		return sysexits.New(sysexits.TempFail, "%s is in maintenance since %s (envctl drain): it takes no environment (%s) until envctl restore", n.Name, m.Since.Format(time.RFC3339), jname)
	}
	return nil
}

// Preflight is what a move's target checks before anything changes: its
// configuration loaded (it runs), it is not in maintenance, it reaches the
// lease store and the environment's storage, its workdir exists, and no
// environment of that name is registered or attached here.
func (n *Node) Preflight(ctx context.Context, jname, kind string) error {
	if err := n.refuseInMaintenance(ctx, jname); err != nil {
		return err
	}
	if _, err := n.Leases.Get(ctx, jname); err != nil {
		return sysexits.New(sysexits.Unavailable, "cannot read the lease store: %v", err)
	}
	if _, err := n.records(); err != nil {
		return err
	}
	if kind != Container {
		if fi, err := os.Stat(n.Workdir); err != nil || !fi.IsDir() {
			return sysexits.New(sysexits.Config, "the workdir %s does not exist here", n.Workdir)
		}
	}
	if rec, err := n.Inv.Load(jname); err != nil || rec != nil {
		return sysexits.New(sysexits.CantCreat, "an environment %s is registered here already: junregister it here first", jname)
	}
	if rec, _ := n.session(jname, kind).Record(); rec != nil {
		return sysexits.New(sysexits.CantCreat, "something of %s is still attached here (a state record): run mnt-stop for it here first", jname)
	}
	if _, b, err := n.Backends.Open(n.Config); err != nil {
		return err
	} else if l, ok := b.(backend.Lister); ok {
		names, err := l.Environments()
		if err != nil {
			return sysexits.New(sysexits.Unavailable, "cannot reach the shared storage: %v", err)
		}
		if !slices.Contains(names, jname) {
			return sysexits.New(sysexits.Unavailable, "%s is not on the shared storage as this node sees it", jname)
		}
	}
	n.Log.Action("%s can take %s", n.Name, jname)
	return nil
}

// Drain marks this node in maintenance, then moves every environment it
// has registered to the targets, in turn, PARALLEL at a time, recording
// where each went.
func (n *Node) Drain(ctx context.Context, targets []string, stderr io.Writer) error {
	if len(targets) == 0 {
		// Every node this one knows how to reach.
		for node := range n.ssh().Destinations {
			if node != n.Name {
				targets = append(targets, node)
			}
		}
		sort.Strings(targets)
	}
	if len(targets) == 0 {
		return sysexits.New(sysexits.Usage, "drain needs to=NODE[,NODE...] (or nodes in SSH_DESTINATIONS): the nodes to move this node's environments to")
	}
	if slices.Contains(targets, n.Name) {
		return sysexits.New(sysexits.Usage, "drain to=%s: that is this node", n.Name)
	}
	recs, err := n.records()
	if err != nil {
		return err
	}
	names, _, err := n.Inv.Names() // strays are named by list
	if err != nil {
		return err
	}
	sort.Strings(names)
	if n.DryRun {
		fmt.Fprintf(n.Out, "# mark %s in maintenance, move %d environments to %v\n", n.Name, len(names), targets)
		return nil
	}
	if err := lease.PutJSON(ctx, recs, maintenanceKind, n.Name, Maintenance{Node: n.Name, Since: time.Now().UTC(), Targets: targets}); err != nil {
		return sysexits.New(sysexits.Unavailable, "cannot mark %s in maintenance: %v", n.Name, err)
	}
	n.Log.Action("%s is in maintenance: moving %d environments to %v", n.Name, len(names), targets)
	where := map[string]string{}
	for i, name := range names {
		where[name] = targets[i%len(targets)]
	}
	if len(names) == 0 {
		return nil
	}
	return n.eachSaid(ctx, "drain", names, func(ctx context.Context, jname string) error {
		rec, err := n.Inv.Load(jname)
		if err != nil || rec == nil {
			return sysexits.Wrap(sysexits.DataErr, err)
		}
		to := where[jname]
		// Written first: a drain cut short still knows where it sent it.
		if err := lease.PutJSON(ctx, recs, drainedKind(n.Name), jname, Drained{JName: jname, Kind: rec.Kind, To: to, Since: time.Now().UTC()}); err != nil {
			return sysexits.New(sysexits.Unavailable, "cannot record where %s goes: %v", jname, err)
		}
		err = n.Move(ctx, jname, to, MoveOptions{Op: "drain"})
		if err != nil {
			// Rolled back: it stayed home, so restore has nothing to
			// bring back (a record left behind only costs restore a look).
			if owner, oerr := n.owner(ctx, jname); oerr == nil && owner == n.Name {
				_ = recs.DeleteRecord(context.WithoutCancel(ctx), drainedKind(n.Name), jname)
			}
		}
		return err
	}, stderr)
}

// Restore brings home what this node's drain sent away (asking each
// environment's current owner to move it back), then clears the mark.
func (n *Node) Restore(ctx context.Context, stderr io.Writer) error {
	recs, err := n.records()
	if err != nil {
		return err
	}
	names, err := recs.ListRecords(ctx, drainedKind(n.Name))
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if n.DryRun {
		fmt.Fprintf(n.Out, "# clear the maintenance mark of %s, bring %d environments home\n", n.Name, len(names))
		return nil
	}
	// Coming home is an acquisition, so the mark goes first.
	if err := recs.DeleteRecord(ctx, maintenanceKind, n.Name); err != nil {
		return sysexits.New(sysexits.Unavailable, "cannot clear the maintenance mark of %s: %v", n.Name, err)
	}
	n.Log.Action("%s is out of maintenance: bringing %d environments home", n.Name, len(names))
	if len(names) == 0 {
		return nil
	}
	return n.eachSaid(ctx, "restore", names, func(ctx context.Context, jname string) error {
		var d Drained
		if _, err := lease.GetJSON(ctx, recs, drainedKind(n.Name), jname, &d); err != nil {
			return sysexits.Wrap(sysexits.Unavailable, err)
		}
		owner, err := n.owner(ctx, jname)
		if err != nil {
			return err
		}
		switch owner {
		case n.Name:
			// Home already (a restore cut short, or moved back by hand).
		case "":
			return sysexits.New(sysexits.TempFail, "%s is owned by no node: run envctl recover jname=%s, or jregister it", jname, jname)
		default:
			if _, err := n.remote(owner).run(ctx, "move", "jname="+jname, "to="+n.Name); err != nil {
				return err
			}
		}
		return recs.DeleteRecord(ctx, drainedKind(n.Name), jname)
	}, stderr)
}

// eachSaid is Each for a command whose failures Each has printed.
func (n *Node) eachSaid(ctx context.Context, verb string, jnames []string, fn func(ctx context.Context, jname string) error, stderr io.Writer) error {
	if err := n.Each(ctx, verb, jnames, fn, stderr); err != nil {
		return alreadySaid{err}
	}
	return nil
}
