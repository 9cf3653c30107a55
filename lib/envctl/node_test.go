package envctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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

// probe attaches each role with one command the runner records: a
// throw-away backend, so register and unregister run without mounts.
type probe struct{}

func (probe) Steps(env *environment.Env, roles []environment.Role) ([]plan.Step, error) {
	var steps []plan.Step
	for _, r := range roles {
		steps = append(steps, &plan.Command{ID: "probe:" + string(r), What: "attach " + string(r),
			Cmd: run.Cmd{Argv: []string{"attach", string(r)}}, UndoArgv: []string{"detach", string(r)}})
	}
	return steps, nil
}

type cluster struct {
	root, leases string
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{root: t.TempDir()}
	c.leases = filepath.Join(c.root, "leases")
	require.NoError(t, os.MkdirAll(c.leases, 0o755))
	_, err := lease.InitDir(c.leases, "test") // as envctl lease init: it is on the root filesystem
	require.NoError(t, err)
	return c
}

// node is one node of the cluster, sharing its lease directory, with a
// workdir of its own; extra adds configuration lines.
func (c *cluster) node(t *testing.T, name, extra string) (*Node, *run.Recorder, *bytes.Buffer) {
	home := filepath.Join(c.root, name)
	conf := filepath.Join(home, "envhooks.conf")
	require.NoError(t, os.MkdirAll(home, 0o755))
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf("BACKEND=probe\nLEASE_DIR=%s\nNODE_NAME=%s\nWORKDIR=%s/jails\nSTATE_DIR=%s/state\nINVENTORY_DIR=%s/inv\nSYSLOG=0\n%s",
		c.leases, name, home, home, home, extra)), 0o600))
	cfg, err := config.LoadFile(conf)
	require.NoError(t, err)
	var out bytes.Buffer
	n, err := NewNode(cfg, backend.Registry{"probe": func(*config.Config) (plan.Backend, error) { return probe{}, nil }}, logging.NewTo("envctl", &out, false), false, &out)
	require.NoError(t, err)
	rec := &run.Recorder{}
	n.Runner = rec
	return n, rec, &out
}

// descriptorAt leaves the environment's descriptor where jregister looks.
func descriptorAt(t *testing.T, n *Node, jname string) {
	sys := n.env(jname, Jail).Dir(environment.System)
	require.NoError(t, os.MkdirAll(sys, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sys, "rc.conf_"+jname), []byte(fmt.Sprintf("jname=\"%s\";\npath=\"CBSDROOT/jails/%s\";\nemulator=\"jail\";\n", jname, jname)), 0o644))
}

func TestRegisterThenUnregisterMovesOwnership(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, recA, _ := c.node(t, "a", "")
	b, _, _ := c.node(t, "b", "")
	descriptorAt(t, a, "web1")
	require.NoError(t, a.Register(ctx, "web1", Jail, RegisterOptions{}))
	assert.Equal(t, [][]string{{"attach", "data"}, {"attach", "system"}, {"attach", "fstab"}}, recA.Argvs())
	st, err := a.Status(ctx, "web1")
	require.NoError(t, err)
	assert.Equal(t, "a", st.Owner)
	assert.True(t, st.Registered)
	inv, err := a.Inv.Load("web1")
	require.NoError(t, err)
	assert.Contains(t, inv.Descriptor, filepath.Join(c.root, "a", "jails")+"/jails/web1", "the local workdir replaces CBSDROOT")

	err = b.Register(ctx, "web1", Jail, RegisterOptions{})
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err), "%v", err)
	assert.ErrorContains(t, err, "owned by node a")
	err = b.Unregister(ctx, "web1", Jail)
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))

	recA.Cmds = nil
	require.NoError(t, a.Unregister(ctx, "web1", Jail))
	assert.Contains(t, recA.Argvs(), []string{"detach", "data"})
	l, err := a.Leases.Get(ctx, "web1")
	require.NoError(t, err)
	assert.Nil(t, l, "the lease is released last")
	gone, _ := a.Inv.Load("web1")
	assert.Nil(t, gone)
	st, err = a.Status(ctx, "web1")
	require.NoError(t, err)
	assert.Equal(t, "free", st.State)
}

// A failed attach undoes what the run did, the lease included.
func TestFailedRegisterReleasesTheLease(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, recA, _ := c.node(t, "a", "")
	recA.Respond = func(cmd run.Cmd) (run.Result, error) {
		if cmd.Argv[1] == "system" {
			return run.Result{}, &run.Error{Cmd: cmd, ExitCode: 1, Stderr: "export gone"}
		}
		return run.Result{}, nil
	}
	err := a.Register(ctx, "web1", Jail, RegisterOptions{})
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	l, _ := a.Leases.Get(ctx, "web1")
	assert.Nil(t, l)
	// No descriptor anywhere: refused with 65, and undone the same way.
	recA.Respond = nil
	err = a.Register(ctx, "web1", Jail, RegisterOptions{})
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
	assert.ErrorContains(t, err, "no descriptor for web1")
	l, _ = a.Leases.Get(ctx, "web1")
	assert.Nil(t, l)
	assert.Contains(t, recA.Argvs(), []string{"detach", "data"})
}

// A dry run prints what it would do through the runner's decorator: the
// runner sees nothing and no lease, record or inventory appears.
func TestDryRegisterChangesNothing(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, recA, out := c.node(t, "a", "")
	a.DryRun = true
	require.NoError(t, a.Register(ctx, "web1", Jail, RegisterOptions{}))
	assert.Empty(t, recA.Argvs())
	assert.Contains(t, out.String(), "# acquire the lease of web1 for a\n")
	assert.Contains(t, out.String(), "attach data\n")
	l, _ := a.Leases.Get(ctx, "web1")
	assert.Nil(t, l)
}

// A dry run that would be refused still prints its whole plan, and
// returns the refusal after it: jregister and junregister of an
// environment another node owns (77), junregister of one that runs (75).
func TestDryRunShowsThePlanOfARefusal(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, _, _ := c.node(t, "a", "")
	descriptorAt(t, a, "web1")
	require.NoError(t, a.Register(ctx, "web1", Jail, RegisterOptions{}))

	b, recB, out := c.node(t, "b", "")
	b.DryRun = true
	err := b.Register(ctx, "web1", Jail, RegisterOptions{})
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err), "%v", err)
	assert.True(t, plan.IsDryRunFailure(err))
	assert.ErrorContains(t, err, "dry run: the plan above would not run: ")
	assert.ErrorContains(t, err, "owned by node a")
	for _, line := range []string{"# acquire the lease of web1 for b\n", "attach data\n", "attach system\n", "# read rc.conf_web1, write the inventory record"} {
		assert.Contains(t, out.String(), line)
	}
	out.Reset()
	err = b.Unregister(ctx, "web1", Jail)
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err), "%v", err)
	assert.True(t, plan.IsDryRunFailure(err))
	assert.Contains(t, out.String(), "# remove the inventory record, release the lease of web1\n")
	assert.Empty(t, recB.Argvs(), "the dry runs ran nothing")

	a2, recA2, out2 := c.node(t, "a", "RUNNING_CHECK=/usr/local/bin/is-running %j\n")
	recA2.Respond = func(cmd run.Cmd) (run.Result, error) { return run.Result{}, nil } // it runs
	a2.DryRun = true
	err = a2.Unregister(ctx, "web1", Jail)
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err), "%v", err)
	assert.True(t, plan.IsDryRunFailure(err))
	assert.Contains(t, out2.String(), "detach data\n", "the plan shows what would be detached")
	assert.Contains(t, out2.String(), "# remove the inventory record, release the lease of web1\n")
	l, _ := a.Leases.Get(ctx, "web1")
	require.NotNil(t, l)
	assert.Equal(t, "a", l.Node, "nothing changed")
	// Outside a dry run the same refusals come first and alone.
	a2.DryRun = false
	out2.Reset()
	err = a2.Unregister(ctx, "web1", Jail)
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err))
	assert.False(t, plan.IsDryRunFailure(err))
	assert.NotContains(t, out2.String(), "detach")
}

// CBSD_DELEGATE runs the configured cbsd, marked as an executable the
// configuration names, and RUNNING_CHECK from the configuration likewise.
func TestConfiguredCommandsAreMarked(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, recA, _ := c.node(t, "a", "CBSD_DELEGATE=1\nCBSD_COMMAND=/usr/local/bin/cbsd\nRUNNING_CHECK=/usr/local/bin/is-running %j\n")
	recA.Respond = func(cmd run.Cmd) (run.Result, error) {
		if cmd.Argv[0] == "/usr/local/bin/is-running" {
			return run.Result{}, &run.Error{Cmd: cmd, ExitCode: 1}
		}
		if cmd.Argv[0] == "/usr/local/bin/cbsd" && cmd.Argv[1] == "jregister" {
			// CBSD's jregister moves the descriptor out of jails-rcconf.
			require.NoError(t, os.Remove(filepath.Join(a.Workdir, "jails-rcconf", "rc.conf_web1")))
		}
		if cmd.Argv[0] == "/usr/local/bin/cbsd" && cmd.Argv[1] == "junregister" {
			descriptorAt(t, a, "web1")
			rc := filepath.Join(a.Workdir, "jails-rcconf", "rc.conf_web1")
			require.NoError(t, os.MkdirAll(filepath.Dir(rc), 0o755))
			require.NoError(t, os.WriteFile(rc, []byte("jname=\"web1\";\n"), 0o644))
		}
		return run.Result{}, nil
	}
	descriptorAt(t, a, "web1")
	require.NoError(t, os.MkdirAll(filepath.Join(a.Workdir, "jails-rcconf"), 0o755)) // CBSD's, on a CBSD node
	require.NoError(t, a.Register(ctx, "web1", Jail, RegisterOptions{}))
	require.NoError(t, a.Unregister(ctx, "web1", Jail))
	var configured []string
	for _, cmd := range recA.Cmds {
		if cmd.Configured {
			configured = append(configured, cmd.Argv[0]+" "+cmd.Argv[1])
		}
		if cmd.Argv[0] == "/usr/local/bin/is-running" {
			assert.True(t, cmd.ReadOnly, "the running check only reads: a dry run runs it")
		}
	}
	assert.Equal(t, []string{"/usr/local/bin/cbsd jregister", "/usr/local/bin/is-running web1", "/usr/local/bin/cbsd junregister"}, configured)
}
