package envctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/inventory"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/record"
	"github.com/envhooks/envhooks/lib/running"
	"github.com/envhooks/envhooks/lib/state"
)

// Status is what envctl finds about one environment on this node.
type Status struct {
	JName      string     `json:"jname"`
	Kind       string     `json:"kind,omitempty"`
	Registered bool       `json:"registered"`
	Since      *time.Time `json:"registered_since,omitempty"`
	Owner      string     `json:"owner,omitempty"`
	OwnerSince *time.Time `json:"owner_since,omitempty"`
	Generation uint64     `json:"generation,omitempty"`
	Attached   []string   `json:"attached,omitempty"` // what the state record says is attached
	Mounted    int        `json:"mounted"`            // how many of those the mount table shows
	Descriptor bool       `json:"descriptor_on_shared_storage"`
	Running    *bool      `json:"running,omitempty"`
	State      string     `json:"state"` // registered-here, owned-elsewhere, free, interrupted, stale, damaged
	Advice     string     `json:"advice,omitempty"`
	// Maintenance is this node's drain mark (envctl list only).
	Maintenance *Maintenance `json:"node_maintenance,omitempty"`
	// Damaged names the records of this environment that cannot be read
	// (state, inventory, lease): the rest is what could be read.
	Damaged []string `json:"damaged,omitempty"`
}

// readable sorts a read's error: a damaged record is noted in st and read
// as absent, anything else is the error.
func (st *Status) readable(err error) error {
	var d *record.DamagedError
	if errors.As(err, &d) {
		st.Damaged = append(st.Damaged, d.Error())
		return nil
	}
	return err
}

// warnStrays names the files of the inventory directory that are not
// records, which every listing skips.
func (n *Node) warnStrays(strays []string) {
	for _, p := range strays {
		n.Log.Warn("%q in INVENTORY_DIR is not an inventory record (records are <jname>.json): skipped", p)
	}
}

// Status looks at the lease, the inventory, the state record and the mount
// table, and names the state it finds, including a half-done migration
// (see classify).
func (n *Node) Status(ctx context.Context, jname string) (*Status, error) {
	if err := environment.CheckName(jname); err != nil {
		return nil, err
	}
	l, err := n.Leases.Get(ctx, jname)
	return n.status(ctx, jname, l, err)
}

// Statuses is Status for many environments, with their leases read in
// batches where the store allows (etcd: a hundred per request) and the
// mount table read once, so envctl list costs little more per environment
// than reading its records.
func (n *Node) Statuses(ctx context.Context, jnames []string) ([]*Status, error) {
	for _, j := range jnames {
		if err := environment.CheckName(j); err != nil {
			return nil, err
		}
	}
	ls, err := lease.GetMany(ctx, n.Leases, jnames)
	var damaged *record.DamagedError
	one := errors.As(err, &damaged) // a damaged lease is named beside the others: read one by one
	if err != nil && !one {
		return nil, err
	}
	sts := make([]*Status, 0, len(jnames))
	for _, j := range jnames {
		var st *Status
		if one {
			st, err = n.Status(ctx, j)
		} else {
			st, err = n.status(ctx, j, ls[j], nil)
		}
		if err != nil {
			return nil, err
		}
		sts = append(sts, st)
	}
	return sts, nil
}

// status is Status once the lease is read: l, or leaseErr when it could
// not be.
func (n *Node) status(ctx context.Context, jname string, l *lease.Lease, leaseErr error) (*Status, error) {
	st := &Status{JName: jname, Kind: Jail}
	var f facts
	var err error
	f.inventory, err = n.Inv.Load(jname)
	if err := st.readable(err); err != nil {
		return nil, err
	}
	if f.inventory != nil {
		st.Registered, st.Kind, st.Since = true, f.inventory.Kind, &f.inventory.Registered
	}
	f.lease = l
	if err := st.readable(leaseErr); err != nil {
		return nil, err
	}
	if l != nil {
		st.Owner, st.OwnerSince, st.Generation = l.Node, &l.Since, l.Generation
	}
	s := n.session(jname, st.Kind)
	f.attached, err = s.Record()
	if err := st.readable(err); err != nil {
		return nil, err
	}
	if f.attached != nil {
		tab, err := n.Mounts.Table()
		if err != nil {
			return nil, err
		}
		for _, a := range f.attached.Actions {
			st.Attached = append(st.Attached, a.What)
		}
		st.Mounted, f.mounts = mountedOf(tab, f.attached), mountsOf(f.attached)
		if st.Mounted > 0 {
			// Only looked at while mounted: an unmounted system directory
			// is just the local mount point.
			p := filepath.Join(s.Env.Dir(environment.System), descriptorName(jname, st.Kind))
			exists, answered := statWithin(p, descriptorProbe)
			st.Descriptor = exists
			if !answered {
				n.Log.Warn("%s did not answer within %s: is the storage server of %s down?", p, descriptorProbe, jname)
			}
		}
	}
	if on, _, err := running.Check(ctx, n.runner(), n.Config, jname, st.Kind); err == nil {
		st.Running = &on
	}
	f.node, f.jname, f.kind, f.mounted, f.damaged = n.Name, jname, st.Kind, st.Mounted, len(st.Damaged) > 0
	st.State, st.Advice = classify(f)
	return st, nil
}

// facts is what Status found, as classify needs it.
type facts struct {
	node, jname, kind string
	inventory         *inventory.Record // this node's registration; nil: none
	lease             *lease.Lease      // nil: nobody owns it
	attached          *state.Record     // what the state record says is attached; nil: nothing
	mounts            int               // how many of attached's actions are mounts (a login is not)
	mounted           int               // how many of those the mount table shows in place
	damaged           bool              // a record of it cannot be read (read as absent above)
}

// classify names the state the facts show and what to run about it: the
// decision table of envctl status, without any I/O.
func classify(f facts) (state, advice string) {
	rec, l, attached := f.inventory, f.lease, f.attached
	mine := l != nil && l.Node == f.node
	nAttached := 0
	if attached != nil {
		nAttached = len(attached.Actions)
	}
	verb := func(op string) string { return "envctl " + verbFor(op, f.kind) + " " + f.jname }
	switch {
	case f.damaged:
		return "damaged", "a record of " + f.jname + " cannot be read (see damaged): move it aside, check what is attached and who owns it, then run " + verb("register") + " or " + verb("unregister") + " again"
	case attached != nil && l != nil && attached.Generation != 0 && attached.Generation < l.Generation:
		return "stale", fmt.Sprintf("storage was attached here under generation %d, but the lease is at %d (owner %s): this node lost ownership since; run mnt-stop -j %s before anything else", attached.Generation, l.Generation, l.Node, f.jname)
	case rec != nil && mine && rec.Generation != 0 && rec.Generation < l.Generation:
		return "stale", fmt.Sprintf("registered here under generation %d, but the lease is at %d: this node lost ownership once; run %s", rec.Generation, l.Generation, verb("register"))
	case rec != nil && l != nil && !mine:
		return "stale", fmt.Sprintf("registered here, but %s owns it now: this node must not start it; run envctl junregister on %s or remove the record", l.Node, f.jname)
	case rec != nil && mine && f.mounted == f.mounts && f.mounts > 0:
		return "registered-here", ""
	case l != nil && !mine && nAttached > 0:
		return "interrupted", fmt.Sprintf("%s owns it but storage is still attached here: run mnt-stop -j %s", l.Node, f.jname)
	case l != nil && !mine:
		return "owned-elsewhere", ""
	case rec == nil && l == nil && nAttached == 0:
		return "free", ""
	case rec == nil:
		return "interrupted", "a register or unregister stopped half way: run " + verb("register") + " or " + verb("unregister") + " again to finish (an environment created here after envctl lease acquire shows so too until it moves: " + verb("unregister") + " moves it on)"
	}
	return "interrupted", "registered here but not fully attached: run " + verb("register") + " again"
}

// mountedOf counts the actions of a state record the mount table shows in
// place: mounts made as they were made (a command, such as an iSCSI login,
// never counts).
func mountedOf(tab mounttab.Table, rec *state.Record) int {
	n := 0
	for _, a := range rec.Actions {
		if top, ok := tab.Top(a.Target); ok && a.Kind == state.KindUnmount && tab.Matches(top, a.Want) {
			n++
		}
	}
	return n
}

// mountsOf counts the mounts a state record lists.
func mountsOf(rec *state.Record) int {
	n := 0
	for _, a := range rec.Actions {
		if a.Kind == state.KindUnmount {
			n++
		}
	}
	return n
}

// descriptorProbe bounds the one look status takes at shared storage: a
// stat on a hard NFS mount whose server is down never returns.
const descriptorProbe = 2 * time.Second

// statWithin reports whether path exists, giving up after limit. A stat
// that hangs is left behind; it ends with the process.
func statWithin(path string, limit time.Duration) (exists, answered bool) {
	done := make(chan bool, 1)
	go func() {
		_, err := os.Stat(path)
		done <- err == nil
	}()
	select {
	case exists = <-done:
		return exists, true
	case <-time.After(limit):
		return false, false
	}
}
