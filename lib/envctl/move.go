package envctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/crashpoint"
	"github.com/envhooks/envhooks/lib/history"
	"github.com/envhooks/envhooks/lib/journal"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/locallock"
	"github.com/envhooks/envhooks/lib/running"
	"github.com/envhooks/envhooks/lib/ssh"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// A move runs on the owner and takes an environment to another node in
// the order CBSD needs (stop, give up, take, start), writing each step to
// a journal in the lease store before the next. Any failure rolls back
// (the target gives it up, this node takes it again and starts it if it
// ran); a move cut short by a crash is finished or undone by
// envctl recover on either node. Every action is idempotent and decided
// from the lease, not from the journal alone, so repeating one is safe.

// records is the lease store's records: journals, history, marks.
func (n *Node) records() (lease.Records, error) {
	r, err := lease.RecordsOf(n.Leases)
	return r, sysexits.Wrap(sysexits.Config, err)
}

// moveLock serialises moves and recoveries of jname on this node: its
// holder is the one process that may act on jname's journal here. Its
// name is not register's, which a move runs while holding it.
func (n *Node) moveLock(ctx context.Context, jname string) (func(), error) {
	if n.DryRun {
		return func() {}, nil
	}
	l, err := locallock.Acquire(ctx, n.Config.Get(config.StateDir), jname+".move", n.Config.Seconds(config.LockTimeout))
	if err != nil {
		return nil, err
	}
	return func() { l.Release() }, nil
}

// note appends an ownership change to jname's history; a history that
// cannot be written is said, not fatal: the change itself happened.
func (n *Node) note(ctx context.Context, ev history.Event) {
	if n.DryRun {
		return
	}
	r, err := lease.RecordsOf(n.Leases)
	if err == nil {
		ev.By = n.Name
		err = history.Append(context.WithoutCancel(ctx), r, ev, n.Config.Int(history.KeepKey))
	}
	if err != nil {
		n.Log.Warn("could not add to the history of %s: %v", ev.JName, err)
	}
}

// MoveOptions say what a move is part of.
type MoveOptions struct {
	Op string // move, drain, restore (for the journal and history)
}

// Move takes jname from this node to node to.
func (n *Node) Move(ctx context.Context, jname, to string, opt MoveOptions) error {
	if to == n.Name {
		return sysexits.New(sysexits.Usage, "%s: to=%s is this node", jname, to)
	}
	if opt.Op == "" {
		opt.Op = "move"
	}
	recs, err := n.records()
	if err != nil {
		return err
	}
	unlock, err := n.moveLock(ctx, jname)
	if err != nil {
		return err
	}
	defer unlock()
	if j, err := journal.Load(ctx, recs, jname); err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	} else if j != nil {
		return sysexits.New(sysexits.TempFail, "a %s of %s from %s to %s is unfinished (step %s, %s): run envctl recover jname=%s", j.Op, jname, j.From, j.To, j.Step, j.Direction, jname)
	}
	l, err := n.Leases.Get(ctx, jname)
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if l == nil || l.Node != n.Name {
		if l != nil {
			return sysexits.Wrap(sysexits.NoPerm, &lease.HeldError{Lease: *l})
		}
		return sysexits.New(sysexits.NoPerm, "%s is not owned by %s: run envctl move on its owner", jname, n.Name)
	}
	rec, err := n.Inv.Load(jname)
	if err != nil {
		return sysexits.Wrap(sysexits.DataErr, err)
	}
	if rec == nil {
		return sysexits.New(sysexits.DataErr, "%s is owned by %s but not registered here: run envctl jregister %s first", jname, n.Name, jname)
	}
	kind := rec.Kind
	on, how, err := running.Check(ctx, n.runner(), n.Config, jname, kind)
	if err != nil {
		return sysexits.New(sysexits.TempFail, "cannot tell whether %s runs (%s): %v", jname, how, err)
	}
	target := n.peer(to)
	if err := n.preflight(ctx, target, jname, kind); err != nil {
		return err
	}
	if n.DryRun {
		return n.dryMove(jname, kind, to, on)
	}
	now := time.Now().UTC()
	j := &journal.Journal{JName: jname, Kind: kind, Op: opt.Op, From: n.Name, To: to, Step: journal.Begun,
		Direction: journal.Forward, WasRunning: on, By: n.Name, Started: now}
	if err := journal.Save(ctx, recs, j); err != nil {
		return sysexits.New(sysexits.Unavailable, "cannot write the journal of %s (nothing was changed): %v", jname, err)
	}
	crashpoint.Here("move:" + journal.Begun)
	if err := n.forward(ctx, recs, j); err != nil {
		n.Log.Error("%s of %s to %s failed, rolling back: %v", opt.Op, jname, to, err)
		if rerr := n.rollback(ctx, recs, j, err); rerr != nil {
			return sysexits.New(sysexits.Code(err), "%s of %s to %s failed (%v), and so did its rollback (%v): the journal stays open%s; fix what failed, then run envctl recover jname=%s", opt.Op, jname, to, err, rerr, n.ownedBy(ctx, jname), jname)
		}
		return sysexits.New(sysexits.Code(err), "%s of %s to %s failed and was rolled back: %v", opt.Op, jname, to, err)
	}
	return nil
}

func (n *Node) dryMove(jname, kind, to string, on bool) error {
	if on {
		fmt.Fprintf(n.Out, "# stop %s here (STOP_COMMAND)\n", jname)
	}
	fmt.Fprintf(n.Out, "# %s %s here, %s it on %s\n", verbFor("unregister", kind), jname, verbFor("register", kind), to)
	if on {
		fmt.Fprintf(n.Out, "# start %s on %s (START_COMMAND there) and check it runs\n", jname, to)
	}
	return nil
}

// step records that j reached step.
func (n *Node) step(ctx context.Context, recs lease.Records, j *journal.Journal, step string) error {
	j.Step = step
	if err := journal.Save(ctx, recs, j); err != nil {
		return sysexits.New(sysexits.Unavailable, "cannot write the journal of %s at step %s: %v", j.JName, step, err)
	}
	crashpoint.Here("move:" + step)
	return nil
}

// forward takes j to its target from whatever step it reached, then
// commits: the journal closes and the history says where it went.
func (n *Node) forward(ctx context.Context, recs lease.Records, j *journal.Journal) error {
	from, to := n.peer(j.From), n.peer(j.To)
	owner, err := n.owner(ctx, j.JName)
	if err != nil {
		return err
	}
	if owner == j.From {
		if j.WasRunning {
			if err := from.Stop(ctx, j.JName, j.Kind); err != nil {
				return err
			}
			if err := n.step(ctx, recs, j, journal.Stopped); err != nil {
				return err
			}
		}
		if err := from.Unregister(ctx, j.JName, j.Kind); err != nil {
			return err
		}
		if err := n.step(ctx, recs, j, journal.Released); err != nil {
			return err
		}
		owner = ""
	}
	if owner != j.To {
		if owner != "" {
			return sysexits.New(sysexits.NoPerm, "%s is owned by %s, which takes part in no move of it: leaving it alone", j.JName, owner)
		}
		if err := to.Register(ctx, j.JName, j.Kind); err != nil {
			return err
		}
		if err := n.step(ctx, recs, j, journal.Registered); err != nil {
			return err
		}
	}
	if j.WasRunning {
		if err := to.Start(ctx, j.JName, j.Kind); err != nil {
			return err
		}
		if err := n.step(ctx, recs, j, journal.Started); err != nil {
			return err
		}
	}
	if err := journal.Close(ctx, recs, j.JName); err != nil {
		return sysexits.New(sysexits.Unavailable, "%s is on %s, but its journal could not be closed: %v; run envctl recover jname=%s", j.JName, j.To, err, j.JName)
	}
	n.note(ctx, history.Event{JName: j.JName, Kind: j.Kind, Event: j.Op, Node: j.To, From: j.From})
	n.Log.Action("%s of %s from %s to %s done", j.Op, j.JName, j.From, j.To)
	return nil
}

// rollback brings j back to its source, as it was before the move began.
func (n *Node) rollback(ctx context.Context, recs lease.Records, j *journal.Journal, why error) error {
	ctx = context.WithoutCancel(ctx)
	j.Direction = journal.Back
	if why != nil {
		j.Failure = why.Error()
	}
	if err := journal.Save(ctx, recs, j); err != nil {
		return sysexits.New(sysexits.Unavailable, "cannot write the journal of %s: %v", j.JName, err)
	}
	from, to := n.peer(j.From), n.peer(j.To)
	owner, err := n.owner(ctx, j.JName)
	if err != nil {
		return err
	}
	if owner == j.To {
		if err := to.Stop(ctx, j.JName, j.Kind); err != nil {
			return err
		}
		if err := to.Unregister(ctx, j.JName, j.Kind); err != nil {
			return err
		}
		owner = ""
	}
	if owner != j.From {
		if owner != "" {
			return sysexits.New(sysexits.NoPerm, "%s is owned by %s, which takes part in no move of it: leaving it alone", j.JName, owner)
		}
		if err := from.Register(ctx, j.JName, j.Kind); err != nil {
			return err
		}
	}
	if j.WasRunning {
		if err := from.Start(ctx, j.JName, j.Kind); err != nil {
			return err
		}
	}
	if err := journal.Close(ctx, recs, j.JName); err != nil {
		return sysexits.New(sysexits.Unavailable, "%s is back on %s, but its journal could not be closed: %v", j.JName, j.From, err)
	}
	n.note(ctx, history.Event{JName: j.JName, Kind: j.Kind, Event: "rollback", Node: j.From, From: j.From, Note: j.Failure})
	n.Log.Action("%s of %s to %s rolled back: it is on %s again", j.Op, j.JName, j.To, j.From)
	return nil
}

// ownedBy says who owns jname now, for a message about a move left
// unfinished: ", owned by b" (", owned by no node"), or nothing when the
// lease store does not answer.
func (n *Node) ownedBy(ctx context.Context, jname string) string {
	owner, err := n.owner(context.WithoutCancel(ctx), jname)
	switch {
	case err != nil:
		return ""
	case owner == "":
		return ", owned by no node"
	}
	return ", owned by " + owner
}

func (n *Node) owner(ctx context.Context, jname string) (string, error) {
	l, err := n.Leases.Get(ctx, jname)
	if err != nil {
		return "", sysexits.Wrap(sysexits.Unavailable, err)
	}
	if l == nil {
		return "", nil
	}
	return l.Node, nil
}

// preflight asks the target whether it can take jname, before anything
// changes.
func (n *Node) preflight(ctx context.Context, target peer, jname, kind string) error {
	r, ok := target.(*remotePeer)
	if !ok {
		return n.Preflight(ctx, jname, kind)
	}
	if _, err := r.run(ctx, "preflight", "jname="+jname, "kind="+kind); err != nil {
		return sysexits.New(sysexits.Code(err), "%s cannot take %s (nothing was changed): %v", r.node, jname, err)
	}
	return nil
}

// Recover finishes or undoes an unfinished move of jname: forward when the
// target has registered it, back otherwise or when it was rolling back
// already. It runs where the move ran; from another node it asks that node
// over ssh, and acts itself only when that node is unreachable and its
// heartbeat has expired (it is dead, so no move runs there).
func (n *Node) Recover(ctx context.Context, jname string) error {
	recs, err := n.records()
	if err != nil {
		return err
	}
	j, err := journal.Load(ctx, recs, jname)
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if j == nil {
		n.Log.Action("no move of %s is unfinished: nothing to recover", jname)
		return nil
	}
	if j.By != n.Name {
		_, err := n.remote(j.By).run(ctx, "recover", "jname="+jname)
		var se *ssh.Error
		if err == nil || !errors.As(err, &se) || !se.Unreachable {
			return err
		}
		if dead, why := n.dead(ctx, j.By); !dead {
			return sysexits.New(sysexits.TempFail, "the move of %s runs on %s, which does not answer over ssh (%v) but %s: run envctl recover there, or here once it is down", jname, j.By, se.Err, why)
		}
		n.Log.Warn("%s, which moved %s, is unreachable and its heartbeat expired: recovering from here", j.By, jname)
	}
	unlock, err := n.moveLock(ctx, jname)
	if err != nil {
		return err
	}
	defer unlock()
	if j, err = journal.Load(ctx, recs, jname); err != nil || j == nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if n.DryRun {
		fmt.Fprintf(n.Out, "# recover the %s of %s from %s to %s (step %s, %s)\n", j.Op, jname, j.From, j.To, j.Step, j.Direction)
		return nil
	}
	if j.Direction == journal.Forward && (j.Step == journal.Registered || j.Step == journal.Started) {
		n.Log.Action("finishing the %s of %s to %s (it reached step %s)", j.Op, jname, j.To, j.Step)
		err := n.forward(ctx, recs, j)
		var se *ssh.Error
		if err == nil || (errors.As(err, &se) && se.Unreachable) {
			// A node out of reach refused nothing: the move stays on
			// its way forward for the next recover.
			return err
		}
		n.Log.Error("finishing the %s of %s failed, rolling back: %v", j.Op, jname, err)
		if rerr := n.rollback(ctx, recs, j, err); rerr != nil {
			return sysexits.New(sysexits.Code(rerr), "finishing the %s of %s failed (%v), and so did its rollback (%v): the journal stays open%s", j.Op, jname, err, rerr, n.ownedBy(ctx, jname))
		}
		return nil
	}
	n.Log.Action("undoing the %s of %s to %s (it reached step %s)", j.Op, jname, j.To, j.Step)
	return n.rollback(ctx, recs, j, nil)
}

// dead says whether node's heartbeat expired, and if not, why it counts
// as alive.
func (n *Node) dead(ctx context.Context, node string) (bool, string) {
	lv, ok := n.Leases.(lease.Liveness)
	if !ok {
		return false, "this lease store keeps no heartbeats"
	}
	alive, known, last, err := lv.Alive(ctx, node, n.Config.Seconds(lease.TTLKey))
	switch {
	case err != nil:
		return false, fmt.Sprintf("its heartbeat cannot be read (%v)", err)
	case !known:
		return false, "it never sent a heartbeat"
	case alive:
		return false, "its heartbeat is fresh (" + last.UTC().Format(time.RFC3339) + ")"
	}
	return true, ""
}
