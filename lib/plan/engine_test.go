package plan

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// fakeKernel is a mount table that "mount -t fake SRC TGT" and "umount TGT"
// change, with scripted failures.
type fakeKernel struct {
	mu       sync.Mutex
	table    mounttab.Table
	failOn   map[string]error // first argv word + target -> error
	busyLeft int              // umount reports busy this many times
	silent   bool             // mount "succeeds" without mounting
}

func (k *fakeKernel) read() (mounttab.Table, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append(mounttab.Table(nil), k.table...), nil
}

func (k *fakeKernel) respond(c run.Cmd) (run.Result, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	a := c.Argv
	target := a[len(a)-1]
	if err, ok := k.failOn[a[0]+" "+target]; ok {
		return run.Result{}, err
	}
	switch a[0] {
	case "mount":
		if !k.silent {
			k.table = append(k.table, mounttab.Mount{Source: a[3], Target: target, FSType: a[2]})
		}
	case "umount":
		if k.busyLeft > 0 && !(len(a) == 3 && a[1] == "-f") {
			k.busyLeft--
			return run.Result{}, &run.Error{Cmd: c, ExitCode: 32, Stderr: "umount: " + target + ": target is busy."}
		}
		for i := len(k.table) - 1; i >= 0; i-- {
			if k.table[i].Target == target {
				k.table = append(k.table[:i], k.table[i+1:]...)
				return run.Result{}, nil
			}
		}
		return run.Result{}, &run.Error{Cmd: c, ExitCode: 32, Stderr: "umount: " + target + ": not mounted."}
	}
	return run.Result{}, nil
}

type rig struct {
	k      *fakeKernel
	rec    *run.Recorder
	eng    *Engine
	root   string
	out    bytes.Buffer
	logbuf bytes.Buffer
}

func newRig(t *testing.T) *rig {
	r := &rig{k: &fakeKernel{failOn: map[string]error{}}, root: t.TempDir()}
	r.rec = &run.Recorder{Respond: r.k.respond}
	r.eng = &Engine{
		Sys: &System{Run: r.rec, Log: logging.NewTo("test", &r.logbuf, true), Out: &r.out,
			CommandTimeout: time.Second, UnmountTimeout: 300 * time.Millisecond, ReadMounts: r.k.read},
		Store: state.Store{Dir: filepath.Join(r.root, "state")},
	}
	return r
}

func (r *rig) step(role string) *Mount {
	src := "srv:/" + role
	target := filepath.Join(r.root, "env", role)
	return &Mount{Target: target, Want: mounttab.Want{FSType: "fake", Source: src},
		Argv: []string{"mount", "-t", "fake", src, target}, UnmountArgv: []string{"umount", target},
		ForceArgv: []string{"umount", "-f", target}, What: "mount " + src + " on " + target}
}

func (r *rig) steps(roles ...string) []Step {
	var s []Step
	for _, role := range roles {
		s = append(s, r.step(role))
	}
	return s
}

var base = state.Record{JName: "web1", Backend: "fake", Node: "a"}

func TestAttachIsIdempotent(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data", "system")))
	assert.Len(t, r.k.table, 2)
	assert.Len(t, r.rec.Argvs(), 2)
	rec, err := r.eng.Record("web1")
	require.NoError(t, err)
	require.Len(t, rec.Actions, 2)
	assert.Equal(t, "mount:"+filepath.Join(r.root, "env", "data"), rec.Actions[0].ID)
	first, _ := os.ReadFile(r.eng.Store.Path("web1"))

	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data", "system")))
	assert.Len(t, r.k.table, 2, "no stacked mount")
	assert.Len(t, r.rec.Argvs(), 2, "the second run runs nothing")
	second, _ := os.ReadFile(r.eng.Store.Path("web1"))
	assert.Equal(t, string(first), string(second), "the record is not rewritten")
}

func TestAttachRefusesAnotherSourceAtTarget(t *testing.T) {
	r := newRig(t)
	target := filepath.Join(r.root, "env", "data")
	r.k.table = mounttab.Table{{Source: "other:/x", Target: target, FSType: "fake"}}
	err := r.eng.Attach(context.Background(), base, r.steps("data", "system"))
	require.Error(t, err)
	assert.Equal(t, sysexits.CantCreat, sysexits.Code(err))
	assert.Contains(t, err.Error(), "other:/x")
	assert.Empty(t, r.rec.Argvs(), "nothing was run")
	rec, _ := r.eng.Record("web1")
	assert.Nil(t, rec)
}

func TestAttachRollsBackWhenALaterStepFails(t *testing.T) {
	r := newRig(t)
	fstab := filepath.Join(r.root, "env", "fstab")
	r.k.failOn["mount "+fstab] = &run.Error{Cmd: run.Cmd{Argv: []string{"mount"}}, ExitCode: 32, Stderr: "mount: no such export"}
	err := r.eng.Attach(context.Background(), base, r.steps("data", "system", "fstab"))
	require.Error(t, err)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Contains(t, err.Error(), "no such export")
	assert.Empty(t, r.k.table, "steps 1 and 2 were undone")
	argv := r.rec.Argvs()
	require.Len(t, argv, 5)
	assert.Equal(t, []string{"umount", filepath.Join(r.root, "env", "system")}, argv[3], "undone in reverse")
	assert.Equal(t, []string{"umount", filepath.Join(r.root, "env", "data")}, argv[4])
	rec, _ := r.eng.Record("web1")
	assert.Nil(t, rec, "nothing recorded as attached")
}

// A run that finds earlier mounts in place rolls back only its own work.
func TestRollbackKeepsWhatEarlierRunsAttached(t *testing.T) {
	r := newRig(t)
	require.NoError(t, r.eng.Attach(context.Background(), base, r.steps("data")))
	fstab := filepath.Join(r.root, "env", "fstab")
	r.k.failOn["mount "+fstab] = &run.Error{ExitCode: 1}
	require.Error(t, r.eng.Attach(context.Background(), base, r.steps("data", "system", "fstab")))
	require.Len(t, r.k.table, 1)
	assert.Equal(t, filepath.Join(r.root, "env", "data"), r.k.table[0].Target)
	rec, _ := r.eng.Record("web1")
	require.NotNil(t, rec)
	assert.Len(t, rec.Actions, 1)
}

func TestAttachRefusesNonEmptyTarget(t *testing.T) {
	r := newRig(t)
	target := filepath.Join(r.root, "env", "data")
	require.NoError(t, os.MkdirAll(target, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(target, "precious"), []byte("x"), 0o644))
	err := r.eng.Attach(context.Background(), base, r.steps("data"))
	require.Error(t, err)
	assert.Equal(t, sysexits.CantCreat, sysexits.Code(err))
	assert.Contains(t, err.Error(), "precious")
	assert.Empty(t, r.rec.Argvs())

	r.eng.Sys.AllowNonEmpty = true
	require.NoError(t, r.eng.Attach(context.Background(), base, r.steps("data")))
	assert.Len(t, r.k.table, 1)
}

func TestAttachCreatesMissingTarget(t *testing.T) {
	r := newRig(t)
	require.NoError(t, r.eng.Attach(context.Background(), base, r.steps("data")))
	fi, err := os.Stat(filepath.Join(r.root, "env", "data"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
}

func TestMountThatDoesNotShowIsAnError(t *testing.T) {
	r := newRig(t)
	r.k.silent = true
	err := r.eng.Attach(context.Background(), base, r.steps("data"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not show")
}

func TestDryRunChangesNothing(t *testing.T) {
	r := newRig(t)
	r.eng.Sys.DryRun = true
	r.eng.Sys.Run = run.DryRun{Out: &r.out}
	require.NoError(t, r.eng.Attach(context.Background(), base, r.steps("data", "system")))
	data := filepath.Join(r.root, "env", "data")
	assert.Equal(t, "mkdir -p "+data+"\nmount -t fake srv:/data "+data+"\nmkdir -p "+filepath.Join(r.root, "env", "system")+
		"\nmount -t fake srv:/system "+filepath.Join(r.root, "env", "system")+"\n", r.out.String())
	_, err := os.Stat(data)
	assert.True(t, os.IsNotExist(err), "no directory created")
	_, err = os.Stat(filepath.Join(r.root, "state"))
	assert.True(t, os.IsNotExist(err), "no state written")
}

func TestDetachUndoesInReverseAndIsIdempotent(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data", "system")))
	require.NoError(t, r.eng.Detach(ctx, "web1"))
	assert.Empty(t, r.k.table)
	argv := r.rec.Argvs()
	assert.Equal(t, []string{"umount", filepath.Join(r.root, "env", "system")}, argv[2])
	assert.Equal(t, []string{"umount", filepath.Join(r.root, "env", "data")}, argv[3])
	rec, _ := r.eng.Record("web1")
	assert.Nil(t, rec)
	require.NoError(t, r.eng.Detach(ctx, "web1"), "nothing recorded: success")
	assert.Len(t, r.rec.Argvs(), 4)
}

func TestDetachWhenAlreadyUnmountedByHand(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data")))
	r.k.table = nil
	require.NoError(t, r.eng.Detach(ctx, "web1"))
	assert.Len(t, r.rec.Argvs(), 1, "not mounted: no umount run")
}

func TestDetachLeavesSomeoneElsesMountAlone(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data")))
	r.k.table[0].Source = "other:/x"
	require.NoError(t, r.eng.Detach(ctx, "web1"))
	assert.Len(t, r.k.table, 1)
	assert.Contains(t, r.logbuf.String(), "leaving it alone")
}

func TestBusyUnmountIsRetried(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data")))
	r.k.busyLeft = 2
	require.NoError(t, r.eng.Detach(ctx, "web1"))
	assert.Empty(t, r.k.table)
	assert.Len(t, r.rec.Argvs(), 4, "mount, then umount three times")
}

func TestBusyUnmountGivesUpWith75(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data")))
	r.k.busyLeft = 1000
	err := r.eng.Detach(ctx, "web1")
	require.Error(t, err)
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err))
	assert.Contains(t, err.Error(), "busy")
	assert.Contains(t, err.Error(), "FORCE_UNMOUNT=1")
	assert.Len(t, r.k.table, 1)
	rec, _ := r.eng.Record("web1")
	require.NotNil(t, rec, "the record stays so a later mnt-stop can finish")
	assert.Len(t, rec.Actions, 1)

	r.eng.Sys.ForceUnmount = true
	require.NoError(t, r.eng.Detach(ctx, "web1"))
	assert.Empty(t, r.k.table)
	last := r.rec.Argvs()[len(r.rec.Argvs())-1]
	assert.Equal(t, "-f", last[1])
}

// An umount that hangs (a hard NFS mount whose server is down) is killed
// at its deadline: 69 with what to do, the mount and its record kept; with
// FORCE_UNMOUNT=1 the forced unmount follows at once.
func TestHungUnmount(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	require.NoError(t, r.eng.Attach(ctx, base, r.steps("data")))
	target := r.k.table[0].Target
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if slices.Equal(c.Argv, []string{"umount", target}) {
			c.Timeout = time.Second
			return run.Result{}, &run.Error{Cmd: c, ExitCode: -1, TimedOut: true}
		}
		return r.k.respond(c)
	}
	err := r.eng.Detach(ctx, "web1")
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Contains(t, err.Error(), "did not finish within COMMAND_TIMEOUT (1s)")
	assert.Contains(t, err.Error(), "FORCE_UNMOUNT=1 to detach it now")
	assert.Len(t, r.k.table, 1)
	rec, _ := r.eng.Record("web1")
	require.NotNil(t, rec)
	assert.Len(t, rec.Actions, 1)

	r.eng.Sys.ForceUnmount = true
	require.NoError(t, r.eng.Detach(ctx, "web1"))
	assert.Empty(t, r.k.table)
	last := r.rec.Argvs()[len(r.rec.Argvs())-1]
	assert.Equal(t, []string{"umount", "-f", target}, last)
}

func TestAdoptsMatchingMountWithoutRecord(t *testing.T) {
	r := newRig(t)
	target := filepath.Join(r.root, "env", "data")
	r.k.table = mounttab.Table{{Source: "srv:/data", Target: target, FSType: "fake"}}
	require.NoError(t, r.eng.Attach(context.Background(), base, r.steps("data")))
	assert.Empty(t, r.rec.Argvs())
	rec, _ := r.eng.Record("web1")
	require.NotNil(t, rec)
	assert.Len(t, rec.Actions, 1)
}

func TestCommandStepUndoTreatsAlreadyUndoneAsSuccess(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	login := &Command{ID: "session:t", What: "log in to t", Cmd: run.Cmd{Argv: []string{"login", "t"}},
		UndoArgv: []string{"logout", "t"}, OKExit: []int{21}}
	require.NoError(t, r.eng.Attach(ctx, base, []Step{login}))
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		return run.Result{}, &run.Error{Cmd: c, ExitCode: 21, Stderr: "no session"}
	}
	require.NoError(t, r.eng.Detach(ctx, "web1"))
	assert.Equal(t, [][]string{{"login", "t"}, {"logout", "t"}}, r.rec.Argvs())
}

func TestCheckFailureStopsBeforeAnything(t *testing.T) {
	r := newRig(t)
	probe := &Check{What: "probe", Fn: func(context.Context, *System) error {
		return sysexits.New(sysexits.Unavailable, "server down")
	}}
	err := r.eng.Attach(context.Background(), base, append([]Step{probe}, r.steps("data")...))
	require.Error(t, err)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Empty(t, r.rec.Argvs())
}

// A dry run is what people run before the server is up: a failed
// preflight does not cut the plan short. Every command is printed, then
// the preflight's error, with its code; a check that is no preflight (the
// steps after it need its answer) still ends the plan where it fails.
func TestDryRunPrintsThePlanPastAFailedPreflight(t *testing.T) {
	down := func(context.Context, *System) error { return sysexits.New(sysexits.Unavailable, "server down") }
	for _, preflight := range []bool{true, false} {
		r := newRig(t)
		r.eng.Sys.DryRun = true
		r.eng.Sys.Run = run.DryRun{Out: &r.out}
		probe := &Check{What: "probe", Preflight: preflight, Fn: down}
		err := r.eng.Attach(context.Background(), base, append([]Step{probe}, r.steps("data", "system")...))
		require.Error(t, err)
		assert.Equal(t, sysexits.Unavailable, sysexits.Code(err), "the preflight's own code")
		assert.Equal(t, preflight, IsDryRunFailure(err))
		if !preflight {
			assert.Empty(t, r.out.String(), "a failed check that is no preflight ends the plan")
			continue
		}
		assert.Equal(t, "dry run: the plan above would not run: server down", err.Error())
		assert.Contains(t, r.out.String(), "mount -t fake srv:/data ")
		assert.Contains(t, r.out.String(), "mount -t fake srv:/system ")
		_, err = os.Stat(filepath.Join(r.root, "state"))
		assert.True(t, os.IsNotExist(err), "no state written")
	}
	// Only the first failure is reported.
	r := newRig(t)
	r.eng.Sys.DryRun = true
	r.eng.Sys.Run = run.DryRun{Out: &r.out}
	second := &Check{What: "second", Preflight: true, Fn: func(context.Context, *System) error { return sysexits.New(sysexits.Config, "second") }}
	err := r.eng.Attach(context.Background(), base, []Step{&Check{What: "first", Preflight: true, Fn: down}, second, r.step("data")})
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	// Outside a dry run a failed preflight still stops before anything.
	r = newRig(t)
	err = r.eng.Attach(context.Background(), base, append([]Step{&Check{What: "probe", Preflight: true, Fn: down}}, r.steps("data")...))
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.False(t, IsDryRunFailure(err))
	assert.Empty(t, r.rec.Argvs())
}

func TestExpiredContextRollsBack(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	stopper := &Check{What: "cancel", Fn: func(context.Context, *System) error { cancel(); return nil }}
	steps := append(r.steps("data"), stopper, r.step("system"))
	err := r.eng.Attach(ctx, base, steps)
	require.Error(t, err)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Empty(t, r.k.table, "the data mount was rolled back even though the context is done")
	assert.True(t, strings.Contains(err.Error(), "out of time"))
}

// A second start with everything mounted and recorded runs no check at all:
// for NFS that means no network call when nothing needs doing.
func TestIdempotentPathSkipsChecks(t *testing.T) {
	r := newRig(t)
	probes := 0
	probe := &Check{What: "probe", Fn: func(context.Context, *System) error { probes++; return nil }}
	steps := append([]Step{probe}, r.steps("data", "system")...)
	require.NoError(t, r.eng.Attach(context.Background(), base, steps))
	assert.Equal(t, 1, probes)
	require.NoError(t, r.eng.Attach(context.Background(), base, steps))
	assert.Equal(t, 1, probes, "nothing to do: no probe")
	r.k.table = r.k.table[:1] // system was unmounted behind our back
	require.NoError(t, r.eng.Attach(context.Background(), base, steps))
	assert.Equal(t, 2, probes, "something to do: probe first")
	assert.Len(t, r.k.table, 2)
}
