package attach

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// probe is a throw-away backend of one command per role: its effect is
// not in the mount table, so the engine runs it through the runner alone.
type probe struct{}

func (probe) Steps(env *environment.Env, roles []environment.Role) ([]plan.Step, error) {
	var steps []plan.Step
	for _, r := range roles {
		steps = append(steps, &plan.Command{ID: "probe:" + string(r), What: "attach " + string(r),
			Cmd: run.Cmd{Argv: []string{"attach", string(r), env.Dir(r)}, Timeout: 7 * time.Second}, UndoArgv: []string{"detach", string(r)}})
	}
	return steps, nil
}

type rig struct {
	dir string
	rec *run.Recorder
	out bytes.Buffer
	log bytes.Buffer
}

func newRig(t *testing.T) *rig { return &rig{dir: t.TempDir(), rec: &run.Recorder{}} }

func (r *rig) session(t *testing.T, extra string, env *environment.Env) *Session {
	t.Helper()
	p := filepath.Join(r.dir, "envhooks.conf")
	require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf("BACKEND=probe\nSTATE_DIR=%s/state\nSYSLOG=0\n%s", r.dir, extra)), 0o600))
	cfg, err := config.LoadFile(p)
	require.NoError(t, err)
	return &Session{Env: env, Config: cfg, Backends: backend.Registry{"probe": func(*config.Config) (plan.Backend, error) { return probe{}, nil }},
		Log: logging.NewTo("test", &r.log, true), Out: &r.out, Runner: r.rec}
}

func jail(jname string) *environment.Env {
	return &environment.Env{Name: jname, Dirs: environment.CBSDDirs("/usr/jails", jname)}
}

func TestStartRecordsAndStopUndoesInReverse(t *testing.T) {
	r := newRig(t)
	s := r.session(t, "", jail("web1"))
	require.NoError(t, s.Start(context.Background()))
	d := environment.CBSDDirs("/usr/jails", "web1")
	assert.Equal(t, [][]string{{"attach", "data", d["data"]}, {"attach", "system", d["system"]}, {"attach", "fstab", d["fstab"]}}, r.rec.Argvs(),
		"data, system, and fstab (MOUNT_FSTAB=1); rcconf only when asked")
	rec, err := s.Record()
	require.NoError(t, err)
	require.NotNil(t, rec)
	assert.Equal(t, "probe", rec.Backend)
	assert.Equal(t, 7*time.Second, rec.Actions[0].Timeout, "the undo keeps the command's deadline")

	r.rec.Cmds = nil
	require.NoError(t, s.Stop(context.Background()))
	assert.Equal(t, [][]string{{"detach", "fstab"}, {"detach", "system"}, {"detach", "data"}}, r.rec.Argvs())
	rec, err = s.Record()
	require.NoError(t, err)
	assert.Nil(t, rec, "nothing left attached, no record left")
}

// A dry run prints through the runner's decorator and changes nothing:
// no command reaches the runner, no record, no lock file.
func TestDryRunChangesNothing(t *testing.T) {
	r := newRig(t)
	s := r.session(t, "", jail("web1"))
	s.DryRun = true
	require.NoError(t, s.Start(context.Background()))
	assert.Empty(t, r.rec.Argvs())
	assert.Contains(t, r.out.String(), "attach data /usr/jails/jails-data/web1-data\n")
	_, err := os.Stat(filepath.Join(r.dir, "state"))
	assert.True(t, os.IsNotExist(err), "not even the state directory")
}

func TestRoles(t *testing.T) {
	r := newRig(t)
	vm := jail("vm1")
	delete(vm.Dirs, environment.Fstab)
	for _, tc := range []struct {
		extra string
		env   *environment.Env
		want  []environment.Role
	}{
		{"", jail("web1"), []environment.Role{environment.Data, environment.System, environment.Fstab}},
		{"MOUNT_FSTAB=0\n", jail("web1"), []environment.Role{environment.Data, environment.System}},
		{"MOUNT_RCCONF=1\n", jail("web1"), []environment.Role{environment.Data, environment.System, environment.Fstab, environment.RCConf}},
		{"", vm, []environment.Role{environment.Data, environment.System}},
	} {
		s := r.session(t, tc.extra, tc.env)
		assert.Equal(t, tc.want, Roles(s.Env, s.Config, s.Log), "%q %s", tc.extra, tc.env.Name)
	}
}

// With leases on, a node that does not own the environment attaches
// nothing: 77 before the first command.
func TestStartWithoutTheLeaseRunsNothing(t *testing.T) {
	r := newRig(t)
	leases := filepath.Join(r.dir, "leases")
	require.NoError(t, os.MkdirAll(leases, 0o755))
	_, err := lease.InitDir(leases, "a") // as envctl lease init: it is on the root filesystem
	require.NoError(t, err)
	s := r.session(t, "LEASE_DIR="+leases+"\nNODE_NAME=a\n", jail("web1"))
	err = s.Start(context.Background())
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err), "%v", err)
	_, err = (&lease.FileStore{Dir: leases}).Acquire(context.Background(), "web1", "b")
	require.NoError(t, err)
	err = s.Start(context.Background())
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
	assert.ErrorContains(t, err, "owned by node b")
	assert.Empty(t, r.rec.Argvs())

	_, err = (&lease.FileStore{Dir: leases}).Takeover(context.Background(), "web1", "a", "b")
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	rec, _ := s.Record()
	assert.Equal(t, uint64(2), rec.Generation, "the record carries the lease generation it was attached under")
}

// StopAfter keeps everything attached when its last step fails.
func TestStopAfterKeepsStorageWhenLastFails(t *testing.T) {
	r := newRig(t)
	s := r.session(t, "", jail("web1"))
	require.NoError(t, s.Start(context.Background()))
	r.rec.Cmds = nil
	err := s.StopAfter(context.Background(), func() error { return sysexits.New(sysexits.CantCreat, "disk full") })
	assert.EqualError(t, err, "disk full")
	assert.Empty(t, detaches(r.rec), "nothing detached")
	require.NoError(t, s.StopAfter(context.Background(), func() error { return nil }))
	assert.Equal(t, [][]string{{"detach", "fstab"}, {"detach", "system"}, {"detach", "data"}}, detaches(r.rec))
}

// detaches are the undo commands the runner saw (StopAfter runs the
// idempotent attach commands again first).
func detaches(rec *run.Recorder) [][]string {
	var out [][]string
	for _, a := range rec.Argvs() {
		if a[0] == "detach" {
			out = append(out, a)
		}
	}
	return out
}

// A failed step rolls back what the run did, in reverse.
func TestFailedStepRollsBack(t *testing.T) {
	r := newRig(t)
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if c.Argv[1] == "fstab" {
			return run.Result{}, &run.Error{Cmd: c, ExitCode: 2, Stderr: "no such export"}
		}
		return run.Result{}, nil
	}
	s := r.session(t, "", jail("web1"))
	err := s.Start(context.Background())
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.ErrorContains(t, err, "no such export")
	argvs := r.rec.Argvs()
	assert.Equal(t, [][]string{{"detach", "system"}, {"detach", "data"}}, argvs[len(argvs)-2:])
	rec, _ := s.Record()
	assert.Nil(t, rec)
}
