package envctl

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/fence"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// A fence step that fails stops the takeover: the lease stays the old
// owner's and nothing is attached; once the hook succeeds the takeover
// goes on, and --no-fence skips the hook.
func TestTakeoverStopsWhenTheFenceStepFails(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, _, _ := c.node(t, "a", "")
	b, recB, _ := c.node(t, "b", "FENCE_HOOK=/bin/true\n")
	descriptorAt(t, a, "web1")
	require.NoError(t, a.Register(ctx, "web1", Jail, RegisterOptions{}))
	held, err := a.Leases.Get(ctx, "web1")
	require.NoError(t, err)

	recB.Respond = func(cmd run.Cmd) (run.Result, error) {
		if cmd.Argv[0] == "/bin/true" {
			return run.Result{}, &run.Error{Cmd: cmd, ExitCode: 1, Stderr: "pdu: outlet busy"}
		}
		return run.Result{}, nil
	}
	descriptorAt(t, b, "web1")
	err = b.Register(ctx, "web1", Jail, RegisterOptions{Force: true, From: "a"})
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err), "%v", err)
	assert.ErrorContains(t, err, "FENCE_HOOK could not fence a off web1")
	assert.Equal(t, [][]string{{"/bin/true", "a", "web1", "1"}}, recB.Argvs(), "nothing is attached after a failed fence")
	assert.True(t, recB.Cmds[0].Configured)
	l, err := b.Leases.Get(ctx, "web1")
	require.NoError(t, err)
	assert.Equal(t, *held, *l, "the lease stays the old owner's")

	recB.Respond, recB.Cmds = nil, nil
	require.NoError(t, b.Register(ctx, "web1", Jail, RegisterOptions{Force: true, From: "a"}))
	assert.Equal(t, []string{"/bin/true", "a", "web1", "1"}, recB.Argvs()[0])
	l, _ = b.Leases.Get(ctx, "web1")
	assert.Equal(t, "b", l.Node)
	assert.Equal(t, uint64(2), l.Generation)

	recA := &run.Recorder{}
	a.Runner = recA
	a.Config = a.Config.Clone()
	require.NoError(t, a.Config.Set(fence.HookKey, "/bin/true"))
	require.NoError(t, a.Register(ctx, "web1", Jail, RegisterOptions{Force: true, From: "b", NoFence: true}))
	for _, argv := range recA.Argvs() {
		assert.NotEqual(t, "/bin/true", argv[0], "--no-fence runs no hook")
	}
}

// --takeover waits LEASE_TTL + FENCE_MARGIN after the holder's last
// heartbeat, not LEASE_TTL alone.
func TestTakeoverWaitsForTheMargin(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	a, _, _ := c.node(t, "a", "LEASE_TTL=1\n")
	b, _, _ := c.node(t, "b", "LEASE_TTL=1\n")
	descriptorAt(t, a, "web1")
	require.NoError(t, a.Register(ctx, "web1", Jail, RegisterOptions{}))
	descriptorAt(t, b, "web1")
	err := b.Register(ctx, "web1", Jail, RegisterOptions{Takeover: true})
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err), "no heartbeat ever: nothing says a is dead")
	require.NoError(t, a.Leases.(lease.Liveness).Beat(ctx, "a", time.Second))
	beat := time.Now()
	time.Sleep(time.Second + 100*time.Millisecond) // past LEASE_TTL, within the margin
	err = b.Register(ctx, "web1", Jail, RegisterOptions{Takeover: true})
	if time.Since(beat) < 1250*time.Millisecond {
		assert.Equal(t, sysexits.NoPerm, sysexits.Code(err), "%v", err)
		assert.ErrorContains(t, err, "LEASE_TTL + FENCE_MARGIN")
	}
	time.Sleep(time.Until(beat.Add(1300 * time.Millisecond)))
	require.NoError(t, b.Register(ctx, "web1", Jail, RegisterOptions{Takeover: true}))
	l, _ := b.Leases.Get(ctx, "web1")
	assert.Equal(t, "b", l.Node)
}

// switchable is a lease store that can stop answering, as one cut off
// from this node (or down for all) would.
type switchable struct {
	lease.Store
	down atomic.Bool
}

var errCutOff = errors.New("lease store unreachable")

func (s *switchable) Get(ctx context.Context, jname string) (*lease.Lease, error) {
	if s.down.Load() {
		return nil, errCutOff
	}
	return s.Store.Get(ctx, jname)
}

func (s *switchable) Release(ctx context.Context, jname, node string) error {
	if s.down.Load() {
		return errCutOff
	}
	return s.Store.Release(ctx, jname, node)
}

func (s *switchable) Beat(ctx context.Context, node string, ttl time.Duration) error {
	if s.down.Load() {
		return errCutOff
	}
	return s.Store.(lease.Liveness).Beat(ctx, node, ttl)
}

func (s *switchable) Alive(ctx context.Context, node string, ttl time.Duration) (bool, bool, time.Time, error) {
	return s.Store.(lease.Liveness).Alive(ctx, node, ttl)
}

// holder is node a holding web1 with its heartbeat's watcher running on
// a store it can cut off, and a witness directory shared with node b.
type holder struct {
	n       *Node
	rec     *run.Recorder
	log     *lockedBuffer
	store   *switchable
	witness *fence.Witness
	stop    func()
	c       fence.Contract
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startHolder(t *testing.T, c *cluster, extra string) *holder {
	t.Helper()
	ctx := context.Background()
	t.Setenv(quick.DirEnv, t.TempDir()) // the heartbeat's mark
	witness := c.root + "/witness"
	a, rec, _ := c.node(t, "a", "LEASE_TTL=3\nSTOP_COMMAND=/usr/local/sbin/stop-now %j\nFENCE_WITNESS_DIR="+witness+"\n"+extra)
	descriptorAt(t, a, "web1")
	require.NoError(t, a.Register(ctx, "web1", Jail, RegisterOptions{}))
	out := &lockedBuffer{}
	a.Log = logging.NewTo("envctl", out, true)
	h := &holder{n: a, rec: rec, log: out, store: &switchable{Store: a.Leases}, witness: &fence.Witness{Dir: witness}}
	a.Leases = h.store
	var err error
	h.c, err = fence.Load(a.Config)
	require.NoError(t, err)
	rec.Cmds = nil
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		assert.NoError(t, newWatcher(a, h.store, h.c).run(wctx))
	}()
	h.stop = func() { cancel(); <-done }
	t.Cleanup(h.stop)
	return h
}

// other writes node b's witness record every interval until ctx ends:
// reaching says whether b reaches the lease store.
func (h *holder) other(ctx context.Context, reaching bool) {
	since := time.Now().UTC()
	for {
		r := fence.Record{Node: "b", Written: time.Now().UTC(), Reached: since}
		if reaching {
			r.Reached = time.Now().UTC()
		}
		_ = h.witness.Write(ctx, r)
		select {
		case <-ctx.Done():
			return
		case <-time.After(h.c.Interval / 2):
		}
	}
}

func (h *holder) stopped() bool {
	for _, argv := range h.rec.Argvs() {
		if argv[0] == "/usr/local/sbin/stop-now" {
			return true
		}
	}
	return false
}

// Cut off from a lease store that another node still reaches, the holder
// fences itself within LEASE_TTL - FENCE_MARGIN + FENCE_TIMEOUT: it runs
// STOP_COMMAND, detaches, and its witness record says so.
func TestSelfFenceWhenCutOff(t *testing.T) {
	c := newCluster(t)
	h := startHolder(t, c, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.other(ctx, true)
	time.Sleep(h.c.Interval / 2)
	cut := time.Now()
	h.store.down.Store(true)
	require.Eventually(t, h.stopped, h.c.TakeoverAfter(), 50*time.Millisecond, h.log.String())
	stoppedAfter := time.Since(cut)
	assert.Less(t, stoppedAfter, h.c.TakeoverAfter()-h.c.Skew, "stopped before any other node may take over")
	require.Eventually(t, func() bool {
		r, _ := h.witness.Read(ctx, "a")
		return r != nil && r.Fenced["web1"] == 1
	}, 2*time.Second, 50*time.Millisecond, h.log.String())
	assert.Equal(t, []string{"/usr/local/sbin/stop-now", "web1"}, h.rec.Argvs()[0])
	assert.Contains(t, h.rec.Argvs(), []string{"detach", "data"})
	assert.Contains(t, h.log.String(), "node b reached the lease store")

	// The store comes back: the fenced lease, still a's, is given back.
	h.store.down.Store(false)
	require.Eventually(t, func() bool {
		l, err := h.store.Get(ctx, "web1")
		return err == nil && l == nil
	}, 3*h.c.Interval, 50*time.Millisecond, h.log.String())
}

// A renewal is published in the witness as soon as it is made, not at the
// next tick: a node cut off from the store waits for exactly this evidence
// before it fences, and a tick later would push its fence past the
// contract's LEASE_TTL - FENCE_MARGIN + FENCE_TIMEOUT.
func TestWitnessPublishesARenewalAtOnce(t *testing.T) {
	c := newCluster(t)
	h := startHolder(t, c, "")
	ctx := context.Background()
	// The first tick comes after an interval; the first renewal is made
	// at the start.
	require.Eventually(t, func() bool {
		r, _ := h.witness.Read(ctx, "a")
		return r != nil && !r.Reached.IsZero()
	}, h.c.Interval*3/4, 20*time.Millisecond, h.log.String())
}

// When no node reaches the lease store (it is down for everyone), the
// holder stops nothing: an outage alone must not stop the cluster.
func TestNoSelfFenceWhenTheStoreIsDownForAll(t *testing.T) {
	c := newCluster(t)
	h := startHolder(t, c, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.other(ctx, false)
	time.Sleep(h.c.Interval / 2) // a renews once
	h.store.down.Store(true)
	time.Sleep(h.c.TakeoverAfter() + h.c.Interval)
	assert.False(t, h.stopped(), h.log.String())
	assert.Contains(t, h.log.String(), "down for everyone")
	// The store answers again: nothing was stopped and nothing is.
	h.store.down.Store(false)
	time.Sleep(h.c.Interval + 200*time.Millisecond)
	assert.False(t, h.stopped())
	l, err := h.store.Get(ctx, "web1")
	require.NoError(t, err)
	require.NotNil(t, l)
	assert.Equal(t, "a", l.Node)
}

// With SELF_FENCE=0 the holder only renews: cut off, it keeps running.
func TestNoSelfFenceWhenDisabled(t *testing.T) {
	c := newCluster(t)
	h := startHolder(t, c, "SELF_FENCE=0\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.other(ctx, true)
	h.store.down.Store(true)
	time.Sleep(h.c.TakeoverAfter())
	assert.False(t, h.stopped(), h.log.String())
}

// A holder that sees another owner fences at once, and releases nothing:
// the lease is no longer its own.
func TestSelfFenceOnAnotherOwner(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t)
	h := startHolder(t, c, "")
	b, _, _ := c.node(t, "b", "")
	descriptorAt(t, b, "web1")
	require.NoError(t, b.Register(ctx, "web1", Jail, RegisterOptions{Force: true, From: "a", NoFence: true}))
	require.Eventually(t, h.stopped, 2*h.c.Interval, 50*time.Millisecond, h.log.String())
	// The file driver's takeover moves the old lease aside before it
	// makes the new one: a sweep in between sees no lease at all.
	assert.Regexp(t, "fencing web1 \\(generation 1\\): (node b owns it now|its lease was released)", h.log.String())
	time.Sleep(h.c.Interval)
	l, err := b.Leases.Get(ctx, "web1")
	require.NoError(t, err)
	assert.Equal(t, "b", l.Node, "a released nothing it no longer owns")
}

// A heartbeat restarted after a crash counts from its predecessor's last
// renewal with the same lease store, and only with it.
func TestHeartbeatMark(t *testing.T) {
	t.Setenv(quick.DirEnv, t.TempDir())
	c := newCluster(t)
	a, _, _ := c.node(t, "a", "LEASE_TTL=3\n")
	cf, err := fence.Load(a.Config)
	require.NoError(t, err)
	lv := a.Leases.(lease.Liveness)
	w := newWatcher(a, lv, cf)
	w.lastOK = time.Now().Add(-time.Minute).Round(time.Second)
	w.writeMark()
	assert.Equal(t, w.lastOK.Unix(), newWatcher(a, lv, cf).lastOK.Unix())

	otherDir := filepath.Join(c.root, "other-leases")
	require.NoError(t, os.Mkdir(otherDir, 0o755))
	_, err = lease.InitDir(otherDir, "test") // as envctl lease init: it is on the root filesystem
	require.NoError(t, err)
	other, _, _ := c.node(t, "a", "LEASE_TTL=3\nLEASE_DIR="+otherDir+"\n")
	assert.WithinDuration(t, time.Now(), newWatcher(other, lv, cf).lastOK, 5*time.Second, "a mark of another lease store does not count")
}
