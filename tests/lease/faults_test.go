//go:build linux

package lease_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/lease/etcdlease"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

// TestEtcdLeaderKilledMidAcquire kills the etcd leader (SIGKILL) just as
// five nodes race for a lease, several times: the two members left elect a
// new leader, the acquirers retry through it, and every round still ends
// with exactly one owner, the one the store names.
func TestEtcdLeaderKilledMidAcquire(t *testing.T) {
	c := etcdCluster(t)
	ss := stores(t, "etcd", 5)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lastGen uint64
	totalRetries := 0
	for kill := 0; kill < 3; kill++ {
		leader, err := c.Leader(ctx)
		require.NoError(t, err)
		killed := make(chan struct{})
		go func() {
			time.Sleep(time.Duration(kill) * time.Millisecond)
			leader.Kill()
			close(killed)
		}()
		// Rounds keep going while the leader dies and a new one is
		// elected.
		for r := 0; r < 30; r++ {
			winners, retries, err := round(ctx, ss, "web1", true)
			require.NoError(t, err)
			totalRetries += retries
			require.Len(t, winners, 1, "kill %d round %d: exactly one owner", kill, r)
			var l *lease.Lease
			require.NoError(t, retrying(ctx, func() (err error) { l, err = ss[0].Get(ctx, "web1"); return err }))
			require.NotNil(t, l)
			require.Equal(t, winners[0], l.Node)
			require.Greater(t, l.Generation, lastGen)
			lastGen = l.Generation
			w := index(winners[0])
			require.NoError(t, retrying(ctx, func() error { return ss[w].Release(ctx, "web1", winners[0]) }))
		}
		<-killed
		require.NoError(t, leader.Start())
		require.NoError(t, c.WaitHealthy(30*time.Second))
	}
	t.Logf("3 leaders killed during 90 rounds; acquirers retried %d times", totalRetries)
}

// TestNFSServerRestartedMidAcquire stops and restarts ganesha while four
// nodes keep racing for a lease. No round may ever have two owners. An
// acquire whose MKDIR reached the server but whose answer was lost leaves a
// lease directory with no record: it stays held (by OrphanNode) until an
// explicit takeover, which the test then makes.
func TestNFSServerRestartedMidAcquire(t *testing.T) {
	srv := nfsServer(t)
	ss := stores(t, "nfs", 4)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	restarted := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		srv.Stop()
		time.Sleep(500 * time.Millisecond)
		restarted <- srv.Restart()
	}()
	errorsBefore := storeErrors.Load()
	var (
		lastGen              uint64
		rounds, orphans      int
		retries, afterRounds int
		done                 bool
	)
	for !done || afterRounds < 30 {
		winners, n, err := round(ctx, ss, "web1", true)
		require.NoError(t, err)
		rounds++
		retries += n
		require.LessOrEqual(t, len(winners), 1, "round %d: never two owners", rounds)
		var l *lease.Lease
		require.NoError(t, retrying(ctx, func() (err error) { l, err = ss[0].Get(ctx, "web1"); return err }))
		require.NotNil(t, l)
		if len(winners) == 0 {
			require.Equal(t, lease.OrphanNode, l.Node, "round %d: nobody won, so only an orphan may hold it", rounds)
			orphans++
			require.NoError(t, retrying(ctx, func() error {
				var err error
				l, err = ss[0].Takeover(ctx, "web1", node(0), lease.OrphanNode)
				return err
			}))
			winners = []string{node(0)}
		}
		require.Equal(t, winners[0], l.Node)
		require.Greater(t, l.Generation, lastGen, "round %d: generations grow across the restart", rounds)
		lastGen = l.Generation
		w := index(winners[0])
		require.NoError(t, retrying(ctx, func() error { return ss[w].Release(ctx, "web1", winners[0]) }))
		if !done {
			select {
			case err := <-restarted:
				require.NoError(t, err)
				done = true
			default:
			}
		} else {
			afterRounds++
		}
	}
	failed := storeErrors.Load() - errorsBefore
	require.Greater(t, int64(retries)+failed, int64(0), "the restart happened while the nodes were working")
	t.Logf("%d rounds across a ganesha restart, %d acquires and %d other calls retried, %d orphaned lease directories taken over", rounds, retries, failed, orphans)
}

// beats wraps a store's heartbeat to remember when the last successful
// beat started.
type beats struct {
	lease.Liveness
	mu   sync.Mutex
	last time.Time
}

func (b *beats) Beat(ctx context.Context, node string, ttl time.Duration) error {
	start := time.Now()
	err := b.Liveness.Beat(ctx, node, ttl)
	if err == nil {
		b.mu.Lock()
		b.last = start
		b.mu.Unlock()
	}
	return err
}

// TestHeartbeatStopsTakeoverOnlyAfterTTL: while node a beats, b's takeover
// is refused; once a stops, b's takeover keeps being refused until a's last
// beat is older than the TTL, and then succeeds.
func TestHeartbeatStopsTakeoverOnlyAfterTTL(t *testing.T) {
	const ttl = 2 * time.Second
	for _, driver := range []string{"file", "nfs", "etcd"} {
		t.Run(driver, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ss := stores(t, driver, 2)
			_, err := ss[0].Acquire(ctx, "web1", "a")
			require.NoError(t, err)
			_, err = lease.TakeoverExpired(ctx, ss[1], "web1", "b", ttl)
			var ne *lease.NotExpiredError
			require.True(t, errors.As(err, &ne), "no heartbeat yet: refused, got %v", err)

			b := &beats{Liveness: ss[0].(lease.Liveness)}
			bctx, stop := context.WithCancel(ctx)
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				lease.Heartbeat(bctx, b, "a", ttl, ttl/4, func(err error) { t.Logf("beat: %v", err) })
			}()
			alive := time.Now().Add(2 * ttl)
			refusals := 0
			for time.Now().Before(alive) {
				_, err := lease.TakeoverExpired(ctx, ss[1], "web1", "b", ttl)
				require.True(t, errors.As(err, &ne), "a beats: takeover refused, got %v", err)
				refusals++
				time.Sleep(100 * time.Millisecond)
			}
			stop()
			<-stopped
			b.mu.Lock()
			last := b.last
			b.mu.Unlock()
			require.False(t, last.IsZero())
			for {
				l, err := lease.TakeoverExpired(ctx, ss[1], "web1", "b", ttl)
				now := time.Now()
				if err == nil {
					require.Equal(t, "b", l.Node)
					require.GreaterOrEqual(t, now.Sub(last), ttl, "taken over only after the TTL")
					t.Logf("%s: %d refusals while alive; taken over %s after the last beat (TTL %s)", driver, refusals, now.Sub(last).Round(time.Millisecond), ttl)
					break
				}
				require.True(t, errors.As(err, &ne), "got %v", err)
				require.Less(t, now.Sub(last), ttl+15*time.Second, "the takeover never became possible")
				time.Sleep(50 * time.Millisecond)
			}
			cur, err := ss[0].Get(ctx, "web1")
			require.NoError(t, err)
			assert.Equal(t, "b", cur.Node)
		})
	}
}

const deadMarker = "ENVHOOKS_LEASE_DEAD_SERVER_NS"

// deadListener accepts connections on addr and never answers.
func deadListener(t *testing.T, addr string) {
	t.Helper()
	_, stop, err := testnet.SilentOn(addr)
	require.NoError(t, err)
	t.Cleanup(stop)
}

// TestDeadServersFailWithinDeadline: a lease server that accepts
// connections and never answers makes every call fail within its timeout
// (plus one second), never hang.
func TestDeadServersFailWithinDeadline(t *testing.T) {
	if os.Getenv(deadMarker) == "" {
		// go-nfs-client always asks the portmapper on port 111, which
		// the test's ganesha holds here: run in a network namespace of
		// its own (the test binary again, under unshare --net).
		testenv.Require(t, "unshare")
		exe, err := os.Executable()
		require.NoError(t, err)
		cmd := exec.Command("unshare", "--net", "--", exe, "-test.run", "^TestDeadServersFailWithinDeadline$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), deadMarker+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "--- PASS: TestDeadServersFailWithinDeadline")
		return
	}
	const to = time.Second
	ctx := context.Background()
	deadListener(t, "127.0.0.21:2379")
	deadListener(t, "127.0.0.22:111")
	etcdStore, err := etcdlease.New([]string{"http://127.0.0.21:2379"}, "/envhooks", to)
	require.NoError(t, err)
	defer etcdStore.Close()
	nfsStore := lease.NewNFSStore("127.0.0.22", "/export", "/export/leases", to)
	defer nfsStore.Close()
	for name, s := range map[string]lease.Store{"etcd": etcdStore, "nfs": nfsStore} {
		for op, call := range map[string]func() error{
			"get":     func() error { _, err := s.Get(ctx, "web1"); return err },
			"acquire": func() error { _, err := s.Acquire(ctx, "web1", "a"); return err },
			"beat":    func() error { return s.(lease.Liveness).Beat(ctx, "a", 10*time.Second) },
		} {
			start := time.Now()
			err := call()
			took := time.Since(start)
			assert.Error(t, err, "%s %s", name, op)
			assert.Less(t, took, to+time.Second, "%s %s took %s", name, op, took)
		}
	}
}
