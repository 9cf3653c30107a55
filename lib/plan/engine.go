package plan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/crashpoint"
	"github.com/envhooks/envhooks/lib/deadline"
	"github.com/envhooks/envhooks/lib/inplace"
	"github.com/envhooks/envhooks/lib/record"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// rollbackBudget bounds the undo of a failed run, which must happen even
// when the run's own deadline is what failed it.
const rollbackBudget = 30 * time.Second

// Engine applies plans and keeps their records.
type Engine struct {
	Sys   *System
	Store state.Store
}

// Attach brings every step into place for the environment rec names. It is
// idempotent: steps already in place are only recorded. On failure it undoes
// what this run did, in reverse, and returns the step's error.
//
// The record is written ahead: before a step that may attach something
// runs, the record names it as pending (with every later step of the plan
// known by then, so that a step whose effect another one makes, like a
// clone that mounts, is covered too), and after the run it names each as
// done. A run killed at any point leaves a record that names everything it
// may have attached: the next start finishes it, the next stop undoes it.
func (e *Engine) Attach(ctx context.Context, base state.Record, steps []Step) error {
	e.Sys.Changed() // the table may have changed since the last operation
	rec, err := e.Store.Load(base.JName)
	if err != nil {
		return sysexits.Wrap(sysexits.CantCreat, err)
	}
	if rec == nil {
		rec = &base
	} else {
		rec.Backend, rec.Node = base.Backend, base.Node
		if base.Generation != 0 {
			rec.Generation = base.Generation
		}
	}
	if err := e.Sys.resolvePaths(steps); err != nil {
		return err
	}
	if e.allInPlace(ctx, rec, steps) {
		e.Sys.Log.Debug("everything is already in place for %s", base.JName)
		return nil
	}
	r := &attachRun{e: e, rec: rec}
	// A dry run is what people run before the storage is ready: a failed
	// preflight does not cut the plan short, it is reported after it.
	var preflight error
	for i := 0; i < len(steps); i++ {
		st := steps[i]
		if err := ctx.Err(); err != nil {
			return r.fail(ctx, sysexits.New(sysexits.Unavailable, "out of time before %s: %v", st, deadline.Why(ctx)))
		}
		if x, ok := st.(Expander); ok {
			more, err := x.Expand(ctx, e.Sys)
			if err == nil {
				err = e.Sys.resolvePaths(more)
			}
			if err != nil {
				return r.fail(ctx, err)
			}
			steps = append(steps[:i+1:i+1], append(more, steps[i+1:]...)...)
			continue
		}
		done, err := st.Done(ctx, e.Sys)
		if err != nil {
			return r.fail(ctx, err)
		}
		undo := st.Undo()
		if done {
			e.Sys.Log.Debug("already in place: %s", st)
			if undo != nil && !rec.Done(undo.ID) {
				rec.Put(*undo)
				r.dirty = true
			}
			continue
		}
		e.Sys.Log.Debug("doing: %s", st)
		e.Sys.changing()
		if _, isCheck := st.(*Check); !isCheck && !e.Sys.DryRun {
			// A check attaches nothing; any other step may, even one
			// that leaves the undo to a later step.
			if err := r.intend(undo, steps[i+1:]); err != nil {
				return r.fail(ctx, err)
			}
		}
		r.trying = undo
		if err := st.Apply(ctx, e.Sys); err != nil {
			if c, ok := st.(*Check); ok && c.Preflight && e.Sys.DryRun {
				preflight = cmp.Or(preflight, err)
				continue
			}
			return r.fail(ctx, err)
		}
		r.trying = nil
		if e.Sys.DryRun {
			continue
		}
		if undo == nil {
			e.Sys.Log.Debug("done: %s", st)
			continue
		}
		e.Sys.Log.Action("%s", st)
		crashpoint.Here("attach:applied")
		rec.Put(*undo) // done: no longer pending
		delete(r.intended, undo.ID)
		r.made = append(r.made, *undo)
		r.dirty = true
	}
	if e.Sys.DryRun {
		return DryRunFailure(preflight)
	}
	if r.dirty {
		if err := r.save(); err != nil {
			// What this run attached stays named, as pending, in the
			// record on disk: the next stop undoes it.
			return err
		}
		crashpoint.Here("attach:recorded")
	}
	return nil
}

// attachRun is the bookkeeping of one Attach.
type attachRun struct {
	e      *Engine
	rec    *state.Record
	made   []state.Action // undo actions of the steps this run applied, in order
	trying *state.Action  // the step being applied
	// intended are the pending actions this run wrote that it has not
	// applied (yet): on failure they are dropped, not undone.
	intended map[string]bool
	dirty    bool
}

// intend records undo (nil: the step leaves nothing to undo) as pending,
// with the later steps' undos that are not recorded yet, before the step
// runs: a step can attach what a later one claims (a clone mounts the
// dataset the next step records). It writes the record only when that adds
// or changes something.
func (r *attachRun) intend(undo *state.Action, later []Step) error {
	if r.intended == nil {
		r.intended = map[string]bool{}
	}
	changed := false
	pend := func(a state.Action, exact bool) {
		a.Pending = true
		if known := r.rec.Has(a.ID); known && (!exact || r.pendingEquals(a)) {
			return
		} else if !known {
			r.intended[a.ID] = true
		}
		r.rec.Put(a)
		changed = true
	}
	if undo != nil {
		pend(*undo, true)
	}
	for _, st := range later {
		if _, ok := st.(Expander); ok {
			continue
		}
		if u := st.Undo(); u != nil {
			pend(*u, false)
		}
	}
	if !changed {
		return nil
	}
	if err := r.save(); err != nil {
		return err
	}
	crashpoint.Here("attach:intent")
	return nil
}

func (r *attachRun) pendingEquals(a state.Action) bool {
	for _, b := range r.rec.Actions {
		if b.ID == a.ID {
			return reflect.DeepEqual(a, b)
		}
	}
	return false
}

func (r *attachRun) save() error {
	r.dirty = false
	if err := r.e.Store.Save(r.rec); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot record what is attached in %s: %v", r.e.Store.Dir, err)
	}
	return nil
}

// fail undoes what this run attached, in reverse, and returns err. The
// step that failed is undone too when its undo is an unmount (which looks
// at the mount table first, so it never touches what is not there); a
// failed command attached nothing by its contract. Intentions of steps
// that never ran are dropped. Failures to undo are logged, not returned:
// the caller reports the error that caused the rollback, and whatever is
// left stays in the record.
func (r *attachRun) fail(ctx context.Context, err error) error {
	e := r.e
	if e.Sys.DryRun {
		return err
	}
	changed := len(r.made) > 0 || len(r.intended) > 0 || r.dirty
	undo := r.made
	if r.trying != nil && r.trying.Kind == state.KindUnmount {
		undo = append(undo, *r.trying)
	}
	if len(undo) > 0 {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackBudget)
		defer cancel()
		for i := len(undo) - 1; i >= 0; i-- {
			a := undo[i]
			// Undone or left in the record: no longer a mere intention.
			delete(r.intended, a.ID)
			if uerr := e.Sys.undo(ctx, a); uerr != nil {
				e.Sys.Log.Error("rollback: could not undo %s: %v", a.What, uerr)
				continue
			}
			if r.trying == nil || a.ID != r.trying.ID {
				e.Sys.Log.Action("rolled back: %s", a.What)
			}
			r.rec.Remove(a.ID)
		}
	}
	// Steps that never ran, and a command that failed (which attached
	// nothing, by its contract), leave no trace.
	for id := range r.intended {
		r.rec.Remove(id)
	}
	if changed {
		if serr := e.Store.Save(r.rec); serr != nil {
			e.Sys.Log.Error("rollback: cannot update the record in %s: %v", e.Store.Dir, serr)
		}
	}
	return err
}

// allInPlace is the idempotent fast path: when inplace.Decide finds every
// step that leaves something attached recorded and in place, nothing needs
// doing, so the checks (stat of sources, network preflight) are skipped
// too: a second start costs one read of the mount table and never touches
// the network. Any doubt (an error, a step without an undo, such as an exec
// hook, an action a crashed run left pending) falls back to the full path.
func (e *Engine) allInPlace(ctx context.Context, rec *state.Record, steps []Step) bool {
	var needs []inplace.Need
	for _, st := range steps {
		if _, isCheck := st.(*Check); isCheck {
			continue
		}
		var id string
		if undo := st.Undo(); undo != nil {
			id = undo.ID
		}
		needs = append(needs, inplace.Need{ID: id, Shows: func() (bool, error) { return st.Done(ctx, e.Sys) }})
	}
	return inplace.Decide(needs, rec.Done)
}

// Sweep is what a detach checks beyond the record: the environment's plan
// and its directories. Everything the plan attaches that the mount table
// (or the step itself) shows attached is undone even when no record names
// it (the record was lost, or is damaged), and anything still mounted in
// the directories afterwards fails the detach, named: a stop never reports
// success with something left attached.
type Sweep struct {
	Steps []Step
	Dirs  []string
}

// Detach undoes everything recorded for jname, last attached first. A
// missing record means nothing is attached: success.
func (e *Engine) Detach(ctx context.Context, jname string) error {
	return e.DetachSweeping(ctx, jname, Sweep{})
}

// DetachSweeping is Detach, then what sweep finds attached that no record
// named (see Sweep).
func (e *Engine) DetachSweeping(ctx context.Context, jname string, sweep Sweep) error {
	e.Sys.Changed()
	return e.DetachCached(ctx, jname, sweep)
}

// DetachCached is DetachSweeping on the mount table this engine already
// holds, for a caller that attached or checked under the same lock moments
// before.
func (e *Engine) DetachCached(ctx context.Context, jname string, sweep Sweep) error {
	rec, loadErr := e.Store.Load(jname)
	var damaged *record.DamagedError
	if loadErr != nil && !errors.As(loadErr, &damaged) {
		return sysexits.Wrap(sysexits.CantCreat, loadErr)
	}
	undone := map[string]bool{}
	if rec != nil && len(rec.Actions) > 0 {
		if err := e.undoRecord(ctx, rec, undone); err != nil {
			return err
		}
	} else {
		e.Sys.Log.Debug("nothing recorded as attached for %s", jname)
	}
	if err := e.sweep(ctx, sweep, undone); err != nil {
		return err
	}
	if loadErr != nil {
		return sysexits.New(sysexits.DataErr, "%v; what the plan of %s attaches is detached: check that nothing else of it is attached (an iSCSI session, an imported pool), then remove the record", loadErr, jname)
	}
	return nil
}

func (e *Engine) undoRecord(ctx context.Context, rec *state.Record, undone map[string]bool) error {
	e.Sys.changing()
	// The record is written once at the end: if this run dies half way, the
	// next one finds the entries already undone "not mounted", which is
	// success, so nothing is lost by not rewriting it after every step.
	for i := len(rec.Actions) - 1; i >= 0; i-- {
		a := rec.Actions[i]
		if err := e.Sys.undo(ctx, a); err != nil {
			if !e.Sys.DryRun {
				if serr := e.Store.Save(rec); serr != nil {
					e.Sys.Log.Error("cannot update the record in %s: %v", e.Store.Dir, serr)
				}
			}
			return err
		}
		undone[a.ID] = true
		crashpoint.Here("detach:undone")
		if e.Sys.DryRun {
			continue
		}
		e.Sys.Log.Action("undone: %s", a.What)
		rec.Remove(a.ID)
	}
	if e.Sys.DryRun {
		return nil
	}
	if err := e.Store.Save(rec); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot update the record in %s: %v", e.Store.Dir, err)
	}
	return nil
}

// sweep undoes, last first, the plan's steps that show attached although
// no record named them, then fails if anything is still mounted in the
// environment's directories. Expanders are not expanded (that may need
// what is being detached); what they would have found shows as left.
func (e *Engine) sweep(ctx context.Context, sw Sweep, undone map[string]bool) error {
	if err := e.Sys.resolvePaths(sw.Steps); err != nil {
		return err
	}
	for i := len(sw.Steps) - 1; i >= 0; i-- {
		st := sw.Steps[i]
		if _, ok := st.(Expander); ok {
			continue
		}
		if _, ok := st.(*Check); ok {
			continue
		}
		a := st.Undo()
		if a == nil {
			continue
		}
		// A mount the record undid no longer shows, whatever the record
		// said of it; a command it undid is not run twice, and a dry
		// run, which undoes nothing, says each undo once.
		if undone[a.ID] && (a.Kind != state.KindUnmount || e.Sys.DryRun) {
			continue
		}
		attached, err := e.attachedNow(ctx, st, *a)
		if err != nil || !attached {
			continue
		}
		e.Sys.changing()
		e.Sys.Log.Warn("%s is attached but no record named it: undoing it", a.What)
		if err := e.Sys.undo(ctx, *a); err != nil {
			return err
		}
		undone[a.ID] = true
		if !e.Sys.DryRun {
			e.Sys.Log.Action("undone: %s", a.What)
		}
	}
	if e.Sys.DryRun || len(sw.Dirs) == 0 {
		return nil
	}
	e.Sys.Changed()
	t, err := e.Sys.Mounts()
	if err != nil {
		return sysexits.Wrap(sysexits.OSErr, err)
	}
	var left []string
	for _, dir := range sw.Dirs {
		for _, m := range t.Under(dir) {
			left = append(left, fmt.Sprintf("%s on %s", m.Describe(), m.Target))
		}
	}
	if len(left) > 0 {
		return sysexits.New(sysexits.CantCreat, "still mounted in the environment's directories, and neither recorded nor planned by envhooks: %s; unmount it by hand", strings.Join(left, ", "))
	}
	return nil
}

// attachedNow tells whether a step's effect shows now: a mount by the mount
// table, anything else by asking the step.
func (e *Engine) attachedNow(ctx context.Context, st Step, a state.Action) (bool, error) {
	if a.Kind == state.KindUnmount {
		t, err := e.Sys.Mounts()
		if err != nil {
			return false, err
		}
		return t.Shows(t.Resolve(a.Target), a.Want), nil
	}
	return st.Done(ctx, e.Sys)
}

// Record returns what is recorded as attached for jname (nil: nothing).
func (e *Engine) Record(jname string) (*state.Record, error) { return e.Store.Load(jname) }
