package plan

import (
	"cmp"
	"context"
	"time"

	"github.com/envhooks/envhooks/lib/deadline"
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
	if e.allInPlace(ctx, rec, steps) {
		e.Sys.Log.Debug("everything is already in place for %s", base.JName)
		return nil
	}
	var made []state.Action // undo actions this run created, in order
	dirty := false
	// A dry run is what people run before the storage is ready: a failed
	// preflight does not cut the plan short, it is reported after it.
	var preflight error
	fail := func(err error) error {
		e.rollback(ctx, rec, made)
		return err
	}
	for i := 0; i < len(steps); i++ {
		st := steps[i]
		if err := ctx.Err(); err != nil {
			return fail(sysexits.New(sysexits.Unavailable, "out of time before %s: %v", st, deadline.Why(ctx)))
		}
		if x, ok := st.(Expander); ok {
			more, err := x.Expand(ctx, e.Sys)
			if err != nil {
				return fail(err)
			}
			steps = append(steps[:i+1:i+1], append(more, steps[i+1:]...)...)
			continue
		}
		done, err := st.Done(ctx, e.Sys)
		if err != nil {
			return fail(err)
		}
		undo := st.Undo()
		if done {
			e.Sys.Log.Debug("already in place: %s", st)
			if undo != nil && !rec.Has(undo.ID) {
				rec.Actions = append(rec.Actions, *undo)
				dirty = true
			}
			continue
		}
		e.Sys.Log.Debug("doing: %s", st)
		e.Sys.changing()
		if err := st.Apply(ctx, e.Sys); err != nil {
			if c, ok := st.(*Check); ok && c.Preflight && e.Sys.DryRun {
				preflight = cmp.Or(preflight, err)
				continue
			}
			return fail(err)
		}
		if e.Sys.DryRun {
			continue
		}
		if undo == nil {
			e.Sys.Log.Debug("done: %s", st)
			continue
		}
		e.Sys.Log.Action("%s", st)
		{
			rec.Remove(undo.ID)
			rec.Actions = append(rec.Actions, *undo)
			made = append(made, *undo)
			// Persist at once: a crash between two steps must still leave
			// mnt-stop a record of what is attached.
			if err := e.Store.Save(rec); err != nil {
				return fail(sysexits.New(sysexits.CantCreat, "cannot record what was attached in %s: %v", e.Store.Dir, err))
			}
			dirty = false
		}
	}
	if e.Sys.DryRun {
		return DryRunFailure(preflight)
	}
	if dirty {
		if err := e.Store.Save(rec); err != nil {
			return sysexits.New(sysexits.CantCreat, "cannot record what was attached in %s: %v", e.Store.Dir, err)
		}
	}
	return nil
}

// allInPlace is the idempotent fast path: when every step that leaves
// something attached is already in place and recorded, nothing needs doing,
// so the checks (stat of sources, network preflight) are skipped too: a
// second start costs one read of the mount table and never touches the
// network. Any doubt (an error, a step without an undo, such as an exec
// hook) falls back to the full path.
func (e *Engine) allInPlace(ctx context.Context, rec *state.Record, steps []Step) bool {
	attaching := 0
	for _, st := range steps {
		if _, isCheck := st.(*Check); isCheck {
			continue
		}
		undo := st.Undo()
		if undo == nil || !rec.Has(undo.ID) {
			return false
		}
		if done, err := st.Done(ctx, e.Sys); err != nil || !done {
			return false
		}
		attaching++
	}
	return attaching > 0
}

// rollback undoes made in reverse. Failures are logged, not returned: the
// caller reports the error that caused the rollback.
func (e *Engine) rollback(ctx context.Context, rec *state.Record, made []state.Action) {
	if len(made) == 0 || e.Sys.DryRun {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackBudget)
	defer cancel()
	for i := len(made) - 1; i >= 0; i-- {
		a := made[i]
		if err := e.Sys.undo(ctx, a); err != nil {
			e.Sys.Log.Error("rollback: could not undo %s: %v", a.What, err)
			continue
		}
		e.Sys.Log.Action("rolled back: %s", a.What)
		rec.Remove(a.ID)
	}
	if err := e.Store.Save(rec); err != nil {
		e.Sys.Log.Error("rollback: cannot update the record in %s: %v", e.Store.Dir, err)
	}
}

// Detach undoes everything recorded for jname, last attached first. A
// missing record means nothing is attached: success.
func (e *Engine) Detach(ctx context.Context, jname string) error {
	e.Sys.Changed()
	return e.DetachCached(ctx, jname)
}

// DetachCached is Detach on the mount table this engine already holds, for
// a caller that attached or checked under the same lock moments before.
func (e *Engine) DetachCached(ctx context.Context, jname string) error {
	rec, err := e.Store.Load(jname)
	if err != nil {
		return sysexits.Wrap(sysexits.CantCreat, err)
	}
	if rec == nil || len(rec.Actions) == 0 {
		e.Sys.Log.Debug("nothing recorded as attached for %s", jname)
		return nil
	}
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

// Record returns what is recorded as attached for jname (nil: nothing).
func (e *Engine) Record(jname string) (*state.Record, error) { return e.Store.Load(jname) }
