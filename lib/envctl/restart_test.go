package envctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/history"
	"github.com/envhooks/envhooks/lib/journal"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// haNode is a node whose environments "run" while a file says so:
// RUNNING_CHECK looks for it, START_COMMAND and STOP_COMMAND (played by
// the recorder) make and remove it; failing makes START_COMMAND exit 1.
type haNode struct {
	*Node
	rec     *run.Recorder
	home    string
	failing bool
	starts  int
}

func (c *cluster) haNode(t *testing.T, name, envConf string) *haNode {
	home := filepath.Join(c.root, name)
	n, rec, _ := c.node(t, name, fmt.Sprintf("RUNNING_CHECK=exists:%s/running-%%j\nSTART_COMMAND=\"start %%j\"\nSTOP_COMMAND=\"stop %%j\"\nLEASE_TTL=3\n", home))
	h := &haNode{Node: n, rec: rec, home: home}
	rec.Respond = func(cmd run.Cmd) (run.Result, error) {
		switch cmd.Argv[0] {
		case "start":
			h.starts++
			if h.failing {
				return run.Result{}, &run.Error{Cmd: cmd, ExitCode: 1, Stderr: "cannot start"}
			}
			h.crash(t, cmd.Argv[1], false)
		case "stop":
			h.crash(t, cmd.Argv[1], true)
		}
		return run.Result{}, nil
	}
	require.NoError(t, os.MkdirAll(filepath.Join(home, "envhooks.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(home, "envhooks.d", "web1.conf"), []byte(envConf), 0o644))
	return h
}

// crash stops jname (or starts it, with stopped false) behind envctl's
// back.
func (h *haNode) crash(t *testing.T, jname string, stopped bool) {
	p := filepath.Join(h.home, "running-"+jname)
	if stopped {
		require.NoError(t, os.RemoveAll(p))
		return
	}
	require.NoError(t, os.WriteFile(p, nil, 0o644))
}

// registerAndStart registers jname here and starts it through envctl, so
// it is expected to run here.
func (h *haNode) registerAndStart(t *testing.T, jname string) {
	t.Helper()
	ctx := context.Background()
	descriptorAt(t, h.Node, jname)
	require.NoError(t, h.Register(ctx, jname, Jail, RegisterOptions{}))
	require.NoError(t, h.Start(ctx, jname, Jail))
}

func (h *haNode) running(jname string) bool {
	_, err := os.Stat(filepath.Join(h.home, "running-"+jname))
	return err == nil
}

func (h *haNode) envConfig(jname string) (*config.Config, error) {
	return config.Load(config.DefaultSources(filepath.Join(h.home, "envhooks.conf"), jname))
}

func (h *haNode) failover(t *testing.T) error {
	require.NoError(t, h.Leases.(lease.Liveness).Beat(context.Background(), h.Name, 3e9))
	return h.Failover(context.Background(), h.envConfig)
}

func events(t *testing.T, n *Node, jname string) []string {
	recs, err := n.records()
	require.NoError(t, err)
	evs, err := history.List(context.Background(), recs, jname)
	require.NoError(t, err)
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Event+":"+ev.Node+"<"+ev.From)
	}
	return out
}

func relocationOpen(t *testing.T, n *Node, jname string) bool {
	recs, err := n.records()
	require.NoError(t, err)
	raw, err := recs.GetRecord(context.Background(), relocationKind, jname)
	require.NoError(t, err)
	return raw != nil
}

// An HA=1 environment that stops behind envctl's back on its live owner
// is restarted there HA_MAX_RESTART times; the next time the owner gives
// it up (stopped, unregistered, released, a relocation record) and a
// survivor, never the owner, takes it and starts it.
func TestRestartInPlaceThenRelocate(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.haNode(t, "a", "HA=1\nHA_MAX_RESTART=1\n")
	b := c.haNode(t, "b", "HA=1\nHA_MAX_RESTART=1\n")
	a.registerAndStart(t, "web1")
	inv, err := a.Inv.Load("web1")
	require.NoError(t, err)
	assert.False(t, inv.Started.IsZero(), "envctl start records that it is expected to run")

	require.NoError(t, a.failover(t))
	require.NoError(t, b.failover(t))
	assert.Equal(t, 1, a.starts, "nothing is restarted while it runs")

	a.crash(t, "web1", true)
	require.NoError(t, b.failover(t))
	assert.False(t, b.running("web1"), "a survivor does not touch what a live owner holds")
	require.NoError(t, a.failover(t))
	assert.True(t, a.running("web1"), "restarted in place")
	assert.Equal(t, 2, a.starts)
	assert.Equal(t, []string{"register:a<", "restart:a<a"}, events(t, a.Node, "web1"))

	a.crash(t, "web1", true)
	require.NoError(t, a.failover(t))
	assert.Equal(t, 2, a.starts, "HA_MAX_RESTART=1: no second restart")
	owner, err := a.owner(ctx, "web1")
	require.NoError(t, err)
	assert.Equal(t, "", owner, "given up: released")
	assert.False(t, a.running("web1"))
	gone, _ := a.Inv.Load("web1")
	assert.Nil(t, gone, "unregistered on a")
	assert.True(t, relocationOpen(t, a.Node, "web1"))
	require.NoError(t, a.failover(t))
	owner, _ = a.owner(ctx, "web1")
	assert.Equal(t, "", owner, "the node that gave it up does not take it back")

	descriptorAt(t, b.Node, "web1") // the probe backend shares no storage
	require.NoError(t, b.failover(t))
	owner, _ = b.owner(ctx, "web1")
	assert.Equal(t, "b", owner)
	assert.True(t, b.running("web1"))
	assert.False(t, a.running("web1"))
	assert.False(t, relocationOpen(t, b.Node, "web1"))
	assert.Equal(t, []string{"register:a<", "restart:a<a", "unregister:<a", "relocate:<a", "register:b<", "failover:b<a"}, events(t, b.Node, "web1"))

	// On b the budget is fresh: it came there anew.
	b.crash(t, "web1", true)
	require.NoError(t, b.failover(t))
	assert.True(t, b.running("web1"))
	owner, _ = b.owner(ctx, "web1")
	assert.Equal(t, "b", owner)
}

// A START_COMMAND that keeps failing is tried HA_MAX_RESTART times, then
// the environment is given up: no restart loop.
func TestFailingRestartIsNotALoop(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.haNode(t, "a", "HA=1\nHA_MAX_RESTART=2\n")
	a.registerAndStart(t, "web1")
	a.failing = true
	a.crash(t, "web1", true)
	for i := range 2 {
		err := a.failover(t)
		assert.Equal(t, sysexits.Unavailable, sysexits.Code(err), "pass %d: %v", i, err)
	}
	assert.Equal(t, 3, a.starts, "one start, two restarts")
	require.NoError(t, a.failover(t))
	require.NoError(t, a.failover(t))
	assert.Equal(t, 3, a.starts, "then it is given up, not started again")
	owner, _ := a.owner(ctx, "web1")
	assert.Equal(t, "", owner)
	assert.True(t, relocationOpen(t, a.Node, "web1"))
}

// envctl stop clears the expectation: what it stopped stays stopped. Without
// HA=1 nothing is restarted either.
func TestStoppedOrNotHAIsLeftAlone(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.haNode(t, "a", "HA=1\n")
	a.registerAndStart(t, "web1")
	require.NoError(t, a.Stop(ctx, "web1", Jail))
	inv, _ := a.Inv.Load("web1")
	assert.True(t, inv.Started.IsZero())
	require.NoError(t, a.failover(t))
	assert.False(t, a.running("web1"))
	assert.Equal(t, 1, a.starts)

	require.NoError(t, a.Start(ctx, "web1", Jail))
	require.NoError(t, os.WriteFile(filepath.Join(a.home, "envhooks.d", "web1.conf"), []byte("HA=0\n"), 0o644))
	a.crash(t, "web1", true)
	require.NoError(t, a.failover(t))
	assert.False(t, a.running("web1"))
	owner, _ := a.owner(ctx, "web1")
	assert.Equal(t, "a", owner)
}

// A bad HA_MAX_RESTART is a configuration error (78) naming the key; the
// environment is left as it is.
func TestBadMaxRestart(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	for _, bad := range []string{"-1", "two"} {
		a := c.haNode(t, "a"+strings.TrimPrefix(bad, "-"), "HA=1\nHA_MAX_RESTART="+bad+"\n")
		a.registerAndStart(t, "web1")
		a.crash(t, "web1", true)
		err := a.failover(t)
		assert.Equal(t, sysexits.Config, sysexits.Code(err), "%v", err)
		assert.ErrorContains(t, err, "HA_MAX_RESTART")
		assert.False(t, a.running("web1"))
		require.NoError(t, a.Unregister(ctx, "web1", Jail))
	}
}

// A dry run says what it would do and changes nothing: no restart, no
// history, no relocation.
func TestDryRunRestartChangesNothing(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.haNode(t, "a", "HA=1\nHA_MAX_RESTART=0\n")
	a.registerAndStart(t, "web1")
	a.crash(t, "web1", true)
	a.DryRun = true
	require.NoError(t, a.failover(t))
	assert.Equal(t, 1, a.starts)
	owner, _ := a.owner(ctx, "web1")
	assert.Equal(t, "a", owner)
	assert.False(t, relocationOpen(t, a.Node, "web1"))
	assert.Equal(t, []string{"register:a<"}, events(t, a.Node, "web1"))
	a.DryRun = false
	require.NoError(t, a.failover(t))
	owner, _ = a.owner(ctx, "web1")
	assert.Equal(t, "", owner, "HA_MAX_RESTART=0: given up at once")
	assert.Equal(t, 1, a.starts)
}

// Registered again on the node that gave it up (an operator's jregister),
// it is that node's again: the request to relocate it is over.
func TestRegisteringAgainEndsTheRelocation(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.haNode(t, "a", "HA=1\nHA_MAX_RESTART=0\n")
	a.registerAndStart(t, "web1")
	a.crash(t, "web1", true)
	require.NoError(t, a.failover(t))
	require.True(t, relocationOpen(t, a.Node, "web1"))

	require.NoError(t, a.Register(ctx, "web1", Jail, RegisterOptions{}))
	assert.False(t, relocationOpen(t, a.Node, "web1"))
	require.NoError(t, a.Start(ctx, "web1", Jail))
	require.NoError(t, a.failover(t))
	owner, _ := a.owner(ctx, "web1")
	assert.Equal(t, "a", owner)
	assert.True(t, a.running("web1"))
}

// A survivor that takes it over but cannot start it retries it there
// within HA_MAX_RESTART; beyond HA_MAX_RELOCATE it is left stopped there
// for an operator, said once: nothing bounces.
func TestFailedStartAfterRelocation(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.haNode(t, "a", "HA=1\nHA_MAX_RESTART=0\n")
	b := c.haNode(t, "b", "HA=1\nHA_MAX_RESTART=1\nHA_MAX_RELOCATE=1\n")
	a.registerAndStart(t, "web1")
	a.crash(t, "web1", true)
	require.NoError(t, a.failover(t))

	b.failing = true
	descriptorAt(t, b.Node, "web1")
	err := b.failover(t)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err), "%v", err)
	owner, _ := b.owner(ctx, "web1")
	assert.Equal(t, "b", owner)
	inv, _ := b.Inv.Load("web1")
	require.NotNil(t, inv)
	assert.False(t, inv.Started.IsZero(), "expected to run although its start failed")
	err = b.failover(t)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err), "the restart fails too: %v", err)
	assert.Equal(t, 2, b.starts)
	err = b.failover(t)
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err), "%v", err)
	assert.ErrorContains(t, err, "HA_MAX_RELOCATE")
	require.NoError(t, b.failover(t), "said once")
	require.NoError(t, a.failover(t))
	assert.Equal(t, 2, b.starts)
	owner, _ = b.owner(ctx, "web1")
	assert.Equal(t, "b", owner, "left where it is")
	assert.False(t, relocationOpen(t, b.Node, "web1"))
	assert.Equal(t, []string{"register:a<", "unregister:<a", "relocate:<a", "register:b<", "failover:b<a", "restart:b<b"}, events(t, b.Node, "web1"))
}

// An environment a move has stopped on purpose (its journal open) is the
// move's, or recover's: failover neither restarts nor gives it up.
func TestNoRestartDuringAMove(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a := c.haNode(t, "a", "HA=1\nHA_MAX_RESTART=0\n")
	a.registerAndStart(t, "web1")
	recs, err := a.records()
	require.NoError(t, err)
	require.NoError(t, journal.Save(ctx, recs, &journal.Journal{JName: "web1", Kind: Jail, Op: "move", From: "a", To: "b", Step: journal.Stopped, Direction: journal.Forward, By: "a"}))
	a.crash(t, "web1", true)
	require.NoError(t, a.failover(t))
	owner, _ := a.owner(ctx, "web1")
	assert.Equal(t, "a", owner)
	assert.False(t, relocationOpen(t, a.Node, "web1"))
	require.NoError(t, journal.Close(ctx, recs, "web1"))
	require.NoError(t, a.failover(t))
	owner, _ = a.owner(ctx, "web1")
	assert.Equal(t, "", owner, "given up once no move holds it")
}
