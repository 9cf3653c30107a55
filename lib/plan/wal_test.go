package plan

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// onDisk reads what the record on disk says, as a run killed now would
// leave it.
func (r *rig) onDisk(t *testing.T) map[string]bool {
	rec, err := r.eng.Store.Load("web1")
	require.NoError(t, err)
	out := map[string]bool{} // id -> pending
	if rec != nil {
		for _, a := range rec.Actions {
			out[a.ID] = a.Pending
		}
	}
	return out
}

// Before each mount runs, the record on disk names it (pending), and every
// later step too; after the run, all are done.
func TestRecordIsWrittenAhead(t *testing.T) {
	r := newRig(t)
	steps := r.steps("data", "system")
	var seen []map[string]bool
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		seen = append(seen, r.onDisk(t))
		return r.k.respond(c)
	}
	require.NoError(t, r.eng.Attach(context.Background(), base, steps))
	data, system := "mount:"+filepath.Join(r.root, "env", "data"), "mount:"+filepath.Join(r.root, "env", "system")
	require.Len(t, seen, 2)
	assert.Equal(t, map[string]bool{data: true, system: true}, seen[0], "before the first mount: both intended")
	assert.Equal(t, map[string]bool{data: true, system: true}, seen[1], "done marks are written at the end")
	assert.Equal(t, map[string]bool{data: false, system: false}, r.onDisk(t))
}

// A step that mounts what a later step records (a clone that mounts its
// dataset) runs with the later step already intended.
func TestIntentCoversWhatALaterStepClaims(t *testing.T) {
	r := newRig(t)
	claimed := r.step("data")
	var before map[string]bool
	creator := &Command{What: "create and mount", Cmd: run.Cmd{Argv: []string{"create"}}}
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if c.Argv[0] == "create" {
			before = r.onDisk(t)
		}
		return r.k.respond(c)
	}
	require.NoError(t, r.eng.Attach(context.Background(), base, []Step{creator, claimed}))
	assert.Equal(t, map[string]bool{claimed.Undo().ID: true}, before)
}

// A record a killed run left pending: the next start finishes it (marks
// what is in place done, does the rest), the next stop undoes it, and a
// pending action whose target shows someone else's mount is left alone
// quietly.
func TestPendingRecordIsFinishedOrUndone(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	data, system := r.step("data"), r.step("system")
	pending := func(m *Mount) state.Action { a := *m.Undo(); a.Pending = true; return a }
	require.NoError(t, r.eng.Store.Save(&state.Record{JName: "web1", Actions: []state.Action{pending(data), pending(system)}}))
	r.k.table = mounttab.Table{{Source: "srv:/data", Target: data.Target, FSType: "fake"}} // data made it, system did not
	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data", "system")))
	assert.Len(t, r.k.table, 2)
	assert.Equal(t, map[string]bool{data.Undo().ID: false, system.Undo().ID: false}, r.onDisk(t))

	require.NoError(t, r.eng.Store.Save(&state.Record{JName: "web1", Actions: []state.Action{pending(data), pending(system)}}))
	r.k.table = mounttab.Table{{Source: "srv:/data", Target: data.Target, FSType: "fake"}, {Source: "other:/x", Target: system.Target, FSType: "fake"}}
	require.NoError(t, r.eng.Detach(ctx, "web1"))
	assert.Equal(t, mounttab.Table{{Source: "other:/x", Target: system.Target, FSType: "fake"}}, r.k.table)
	assert.NotContains(t, r.logbuf.String(), "warning", "a pending action never mounted says nothing")
	assert.NoFileExists(t, r.eng.Store.Path("web1"))
}

// A failed run leaves no intention behind: what it mounted is undone, what
// it never reached is dropped, and a command that failed attached nothing.
func TestFailureLeavesNoIntention(t *testing.T) {
	r := newRig(t)
	fstab := filepath.Join(r.root, "env", "fstab")
	r.k.failOn["mount "+fstab] = &run.Error{ExitCode: 32}
	err := r.eng.Attach(context.Background(), base, r.steps("data", "fstab", "system"))
	require.Error(t, err)
	assert.Empty(t, r.k.table)
	assert.NoFileExists(t, r.eng.Store.Path("web1"))

	failing := &Command{ID: "session:t", What: "log in", Cmd: run.Cmd{Argv: []string{"login"}}, UndoArgv: []string{"logout"}}
	r.rec.Respond = func(c run.Cmd) (run.Result, error) { return run.Result{}, &run.Error{Cmd: c, ExitCode: 1} }
	require.Error(t, r.eng.Attach(context.Background(), base, []Step{failing}))
	assert.NoFileExists(t, r.eng.Store.Path("web1"))
	assert.NotContains(t, r.rec.Argvs(), []string{"logout"})
}

// A check that fails writes nothing: bad input changes nothing on disk.
func TestFailedCheckWritesNoRecord(t *testing.T) {
	r := newRig(t)
	probe := &Check{What: "probe", Fn: func(context.Context, *System) error { return sysexits.New(sysexits.Unavailable, "down") }}
	require.Error(t, r.eng.Attach(context.Background(), base, append([]Step{probe}, r.steps("data")...)))
	_, err := os.Stat(r.eng.Store.Dir)
	assert.True(t, os.IsNotExist(err))
}

// Without a record (lost), a stop finds the plan's mounts in the table and
// undoes them; anything else in the environment's directories fails it.
func TestSweepWithoutRecord(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	steps := r.steps("data", "system")
	require.NoError(t, r.eng.Attach(ctx, base, steps))
	require.NoError(t, os.Remove(r.eng.Store.Path("web1")))
	require.NoError(t, r.eng.Detach(ctx, "web1"), "the record alone knows nothing")
	assert.Len(t, r.k.table, 2)
	dirs := []string{filepath.Join(r.root, "env", "data"), filepath.Join(r.root, "env", "system")}
	require.NoError(t, r.eng.DetachSweeping(ctx, "web1", Sweep{Steps: r.steps("data", "system"), Dirs: dirs}))
	assert.Empty(t, r.k.table)
	assert.Contains(t, r.logbuf.String(), "no record named it")

	r.k.table = mounttab.Table{{Source: "other:/x", Target: filepath.Join(dirs[0], "sub"), FSType: "fake"}}
	err := r.eng.DetachSweeping(ctx, "web1", Sweep{Steps: r.steps("data", "system"), Dirs: dirs})
	assert.Equal(t, sysexits.CantCreat, sysexits.Code(err))
	assert.ErrorContains(t, err, "other:/x (fake) on "+filepath.Join(dirs[0], "sub"))
}

// A damaged record: the sweep still detaches what the plan attaches, and
// the stop names the record with 65.
func TestSweepWithDamagedRecord(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data")))
	require.NoError(t, os.WriteFile(r.eng.Store.Path("web1"), []byte("{"), 0o600))
	err := r.eng.Attach(ctx, base, r.steps("data"))
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err), "a start refuses it: %v", err)
	err = r.eng.DetachSweeping(ctx, "web1", Sweep{Steps: r.steps("data")})
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
	assert.ErrorContains(t, err, "state record "+r.eng.Store.Path("web1")+" is damaged")
	assert.Empty(t, r.k.table)
}
