package envctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/descriptor"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/running"
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
	State      string     `json:"state"` // registered-here, owned-elsewhere, free, interrupted, stale
	Advice     string     `json:"advice,omitempty"`
}

// Status looks at the lease, the inventory, the state record and the mount
// table, and names the state it finds, including a half-done migration.
func (n *Node) Status(ctx context.Context, jname string) (*Status, error) {
	if err := environment.CheckName(jname); err != nil {
		return nil, err
	}
	st := &Status{JName: jname, Kind: Jail}
	rec, err := n.Inv.Load(jname)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		st.Registered, st.Kind, st.Since = true, rec.Kind, &rec.Registered
	}
	l, err := n.Leases.Get(ctx, jname)
	if err != nil {
		return nil, err
	}
	if l != nil {
		st.Owner, st.OwnerSince, st.Generation = l.Node, &l.Since, l.Generation
	}
	s := n.session(jname, st.Kind)
	attached, err := s.Record()
	if err != nil {
		return nil, err
	}
	if attached != nil {
		tab, err := mounttab.Read()
		if err != nil {
			return nil, err
		}
		for _, a := range attached.Actions {
			st.Attached = append(st.Attached, a.What)
			if top, ok := tab.Top(a.Target); ok && tab.Matches(top, a.Want) {
				st.Mounted++
			}
		}
		if st.Mounted > 0 {
			// Only looked at while mounted: an unmounted system directory
			// is just the local mount point.
			_, err := os.Stat(filepath.Join(s.Env.Dir(environment.System), descriptor.FileName(jname)))
			st.Descriptor = err == nil
		}
	}
	if on, _, err := running.Check(ctx, nil, n.Config, jname, st.Kind); err == nil {
		st.Running = &on
	}
	mine := l != nil && l.Node == n.Name
	verb := func(op string) string { return "envctl " + verbFor(op, st.Kind) + " " + jname }
	switch {
	case attached != nil && l != nil && attached.Generation != 0 && attached.Generation < l.Generation:
		st.State, st.Advice = "stale", fmt.Sprintf("storage was attached here under generation %d, but the lease is at %d (owner %s): this node lost ownership since; run mnt-stop -j %s before anything else", attached.Generation, l.Generation, l.Node, jname)
	case rec != nil && mine && rec.Generation != 0 && rec.Generation < l.Generation:
		st.State, st.Advice = "stale", fmt.Sprintf("registered here under generation %d, but the lease is at %d: this node lost ownership once; run %s", rec.Generation, l.Generation, verb("register"))
	case rec != nil && l != nil && !mine:
		st.State, st.Advice = "stale", fmt.Sprintf("registered here, but %s owns it now: this node must not start it; run envctl junregister on %s or remove the record", l.Node, jname)
	case rec != nil && mine && st.Mounted == len(st.Attached) && len(st.Attached) > 0:
		st.State = "registered-here"
	case l != nil && !mine:
		st.State = "owned-elsewhere"
		if len(st.Attached) > 0 {
			st.State, st.Advice = "interrupted", fmt.Sprintf("%s owns it but storage is still attached here: run mnt-stop -j %s", l.Node, jname)
		}
	case rec == nil && l == nil && len(st.Attached) == 0:
		st.State = "free"
	case rec == nil:
		st.State, st.Advice = "interrupted", "a register or unregister stopped half way: run "+verb("register")+" or "+verb("unregister")+" again to finish (an environment created here after envctl lease acquire shows so too until it moves: "+verb("unregister")+" moves it on)"
	default:
		st.State, st.Advice = "interrupted", "registered here but not fully attached: run "+verb("register")+" again"
	}
	return st, nil
}
