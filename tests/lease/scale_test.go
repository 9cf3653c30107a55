//go:build linux

package lease_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/lease/etcdlease"
)

// What the cluster-wide operations rest on: a node's leases found without
// reading everyone's, every heartbeat read at once, a node's death waited
// for, a listing in pages, and heartbeats that write nothing. Every driver
// must give the same answers; only etcd gives them cheaply.

func names(ls []lease.Lease) []string {
	out := []string{}
	for _, l := range ls {
		out = append(out, l.JName)
	}
	return out
}

// etcdClient is a raw client on the test cluster, for looking at keys as
// they are stored.
func etcdClient(t *testing.T) *clientv3.Client {
	t.Helper()
	c, err := etcdCluster(t).Client()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// meanwhile runs step(0), step(1), ... in the background until the
// returned stop is called, which waits for the step under way.
func meanwhile(step func(i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			step(i)
		}
	}()
	return func() { close(done); wg.Wait() }
}

// revision is the cluster's revision now.
func revision(t *testing.T, c *clientv3.Client) int64 {
	t.Helper()
	resp, err := c.Get(context.Background(), "/envhooks-test/health")
	require.NoError(t, err)
	return resp.Header.Revision
}

// TestHeldByFollowsOwnership: acquire, release and takeover keep each
// node's leases exact, for every driver, and List shows leases only (not
// the index or the heartbeats).
func TestHeldByFollowsOwnership(t *testing.T) {
	for _, driver := range []string{"file", "nfs", "etcd"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			ss := stores(t, driver, 2)
			if u, ok := ss[0].(lease.Upgrader); ok {
				require.NoError(t, u.Upgrade(ctx), "a fresh store: the index is complete")
			}
			for _, j := range []string{"web5", "web1", "web3", "web2", "web4"} {
				_, err := ss[0].Acquire(ctx, j, "a")
				require.NoError(t, err)
			}
			for _, j := range []string{"db1", "db2"} {
				_, err := ss[1].Acquire(ctx, j, "b")
				require.NoError(t, err)
			}
			require.NoError(t, ss[0].(lease.Liveness).Beat(ctx, "a", 10*time.Second))
			held := func(s lease.Store, node string) []string {
				ls, err := lease.HeldBy(ctx, s, node)
				require.NoError(t, err)
				for _, l := range ls {
					cur, err := s.Get(ctx, l.JName)
					require.NoError(t, err)
					assert.Equal(t, *cur, l, "HeldBy gives the lease Get gives")
				}
				return names(ls)
			}
			assert.Equal(t, []string{"web1", "web2", "web3", "web4", "web5"}, held(ss[1], "a"))
			assert.Equal(t, []string{"db1", "db2"}, held(ss[0], "b"))
			assert.Equal(t, []string{}, held(ss[0], "c"))

			require.NoError(t, ss[0].Release(ctx, "web1", "a"))
			_, err := ss[1].Takeover(ctx, "web2", "b", "a")
			require.NoError(t, err)
			assert.Equal(t, []string{"web3", "web4", "web5"}, held(ss[1], "a"))
			assert.Equal(t, []string{"db1", "db2", "web2"}, held(ss[0], "b"))

			all, err := ss[1].List(ctx)
			require.NoError(t, err)
			assert.Equal(t, []string{"db1", "db2", "web2", "web3", "web4", "web5"}, names(all))
		})
	}
}

// TestEtcdIndexAfterAnOlderEnvctl: leases written by the envctl before
// the index (a bare key per lease) are read, listed and found by owner;
// Upgrade waits while a live node runs that envctl, then indexes them
// once, concurrent changes of ownership included, and an index entry an
// older envctl's release left behind is never taken for a lease.
func TestEtcdIndexAfterAnOlderEnvctl(t *testing.T) {
	ctx := context.Background()
	c := etcdClient(t)
	prefix := fmt.Sprintf("/older-%d", time.Now().UnixNano())
	open := func() *etcdlease.Store {
		s, err := etcdlease.New(etcdCluster(t).Endpoints(), prefix, timeout)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	// What the older envctl wrote: the lease key alone, its record as JSON.
	old := func(jname, node string) {
		v, _ := json.Marshal(map[string]any{"node": node, "since": time.Now().UTC().Truncate(time.Second)})
		_, err := c.Put(ctx, prefix+"/"+jname, string(v))
		require.NoError(t, err)
	}
	for i := 0; i < 250; i++ {
		old(fmt.Sprintf("old%03d", i), fmt.Sprintf("n%d", i%5))
	}
	// An entry an older envctl's release did not remove: the lease now
	// belongs to n1.
	_, err := c.Put(ctx, prefix+"/.owner/n0/old001", "")
	require.NoError(t, err)

	s := open()
	l, err := s.Get(ctx, "old007")
	require.NoError(t, err)
	require.Equal(t, "n2", l.Node)
	all, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, all, 250)
	byNode := func() map[string][]string {
		out := map[string][]string{}
		for _, l := range all {
			out[l.Node] = append(out[l.Node], l.JName)
		}
		return out
	}
	want := byNode()
	for n := 0; n < 5; n++ {
		ls, err := s.HeldBy(ctx, fmt.Sprintf("n%d", n))
		require.NoError(t, err)
		require.Equal(t, want[fmt.Sprintf("n%d", n)], names(ls), "before the upgrade: every lease read")
	}

	// A node still beating with the older envctl (whose heartbeat value
	// was the time) could write leases without entries: no upgrade yet.
	older, err := c.Grant(ctx, 30)
	require.NoError(t, err)
	_, err = c.Put(ctx, prefix+"/.nodes/n3", time.Now().UTC().Format(time.RFC3339Nano), clientv3.WithLease(older.ID))
	require.NoError(t, err)
	require.NoError(t, s.Beat(ctx, "n4", 30*time.Second), "a node with this envctl beats beside it")
	var waiting *etcdlease.OlderNodesError
	require.ErrorAs(t, s.Upgrade(ctx), &waiting)
	assert.Equal(t, []string{"n3"}, waiting.Nodes)
	resp, err := c.Get(ctx, prefix+"/.layout")
	require.NoError(t, err)
	require.Empty(t, resp.Kvs, "not while n3 runs the older envctl")
	_, err = c.Revoke(ctx, older.ID) // n3 upgraded (or died)
	require.NoError(t, err)

	// Another node claims the upgrade: this one leaves it alone.
	g, err := c.Grant(ctx, 30)
	require.NoError(t, err)
	_, err = c.Put(ctx, prefix+"/.upgrading", "", clientv3.WithLease(g.ID))
	require.NoError(t, err)
	require.NoError(t, s.Upgrade(ctx))
	resp, err = c.Get(ctx, prefix+"/.layout")
	require.NoError(t, err)
	require.Empty(t, resp.Kvs, "another node upgrades")
	_, err = c.Revoke(ctx, g.ID)
	require.NoError(t, err)

	// Upgrade while two new-version nodes move leases between them.
	moving := open()
	stop := meanwhile(func(i int) {
		j := fmt.Sprintf("old%03d", 200+i%50)
		if cur, err := moving.Get(ctx, j); err == nil && cur != nil {
			moving.Takeover(ctx, j, fmt.Sprintf("m%d", i%2), cur.Node)
		}
	})
	require.NoError(t, open().Upgrade(ctx))
	stop()
	resp, err = c.Get(ctx, prefix+"/.layout")
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "the index is complete")

	all, err = s.List(ctx)
	require.NoError(t, err)
	require.Len(t, all, 250)
	want = byNode()
	fresh := open()
	for _, n := range []string{"n0", "n1", "n2", "n3", "n4", "m0", "m1"} {
		ls, err := fresh.HeldBy(ctx, n)
		require.NoError(t, err)
		require.Equal(t, append([]string{}, want[n]...), names(ls), "through the index: %s", n)
	}
	for _, l := range all {
		resp, err := c.Get(ctx, prefix+"/.owner/"+l.Node+"/"+l.JName)
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1, "%s of %s has its index entry", l.JName, l.Node)
	}
	ls, err := fresh.HeldBy(ctx, "n0")
	require.NoError(t, err)
	assert.NotContains(t, names(ls), "old001", "the stale entry is not a lease")

	// Releasing an old lease removes its index entry with it.
	require.NoError(t, fresh.Release(ctx, "old002", "n2"))
	resp, err = c.Get(ctx, prefix+"/.owner/n2/old002")
	require.NoError(t, err)
	assert.Empty(t, resp.Kvs)
}

// TestEtcdHeartbeatsWriteNothing: after the first beat, beats renew the
// etcd lease only: no key under the store's prefix changes (a watch on it
// sees nothing), so heartbeats neither grow the history nor wait for a
// disk. The node stays alive past its TTL on renewals alone, and its last
// beat is recent.
func TestEtcdHeartbeatsWriteNothing(t *testing.T) {
	ctx := context.Background()
	c := etcdClient(t)
	ss := stores(t, "etcd", 2)
	lv := ss[0].(lease.Liveness)
	const ttl = 2 * time.Second
	require.NoError(t, lv.Beat(ctx, "a", ttl))
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	events := c.Watch(wctx, ss[0].(*etcdlease.Store).Prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(revision(t, c)+1))
	// 21 beats over 3 s, longer than the TTL: only the renewals keep
	// the node alive.
	for i := 0; i < 20; i++ {
		require.NoError(t, lv.Beat(ctx, "a", ttl))
		time.Sleep(150 * time.Millisecond)
	}
	require.NoError(t, lv.Beat(ctx, "a", ttl))
	alive, known, last, err := ss[1].(lease.Liveness).Alive(ctx, "a", ttl)
	require.NoError(t, err)
	assert.True(t, alive)
	assert.True(t, known)
	assert.WithinDuration(t, time.Now(), last, 1500*time.Millisecond, "the last renewal, from the lease's remaining time")
	// A write after the beats ends the watch's wait: every event before
	// it would be a beat's.
	_, err = ss[0].Acquire(ctx, "marker", "a")
	require.NoError(t, err)
	var seen []string
	for wr := range events {
		require.NoError(t, wr.Err())
		for _, ev := range wr.Events {
			seen = append(seen, string(ev.Kv.Key))
		}
		if len(seen) > 0 && strings.HasSuffix(seen[len(seen)-1], "/.owner/a/marker") {
			break
		}
	}
	assert.Equal(t, []string{"/marker", "/.owner/a/marker"}, trimAll(seen, ss[0].(*etcdlease.Store).Prefix), "21 beats wrote nothing")
}

func trimAll(keys []string, prefix string) []string {
	out := []string{}
	for _, k := range keys {
		out = append(out, strings.TrimPrefix(k, prefix))
	}
	return out
}

// TestNodesInOneRead: lease.Nodes gives, for every driver, what Alive gives
// node by node: alive, expired, never.
func TestNodesInOneRead(t *testing.T) {
	const ttl = 2 * time.Second
	for _, driver := range []string{"file", "nfs", "etcd"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			ss := stores(t, driver, 3)
			require.NoError(t, ss[1].(lease.Liveness).Beat(ctx, "expired", ttl))
			time.Sleep(ttl + 1500*time.Millisecond) // etcd expires leases every 500 ms
			require.NoError(t, ss[0].(lease.Liveness).Beat(ctx, "alive", ttl))
			got, err := lease.Nodes(ctx, ss[2], []string{"alive", "expired", "never", "alive"}, ttl)
			require.NoError(t, err)
			for node, want := range map[string]lease.NodeState{
				"alive":   {Alive: true, Known: true},
				"expired": {Known: true},
				"never":   {},
			} {
				assert.Equal(t, want, got[node], node)
				alive, known, _, err := ss[2].(lease.Liveness).Alive(ctx, node, ttl)
				require.NoError(t, err)
				assert.Equal(t, want, lease.NodeState{Alive: alive, Known: known}, "Alive agrees on %s", node)
			}
		})
	}
}

// TestAwaitExpiry: waiting for a node's death returns no earlier than its
// TTL after the last beat and soon after it, for every driver (etcd
// watches; the others ask every TTL/20); while the node beats it does not
// return.
func TestAwaitExpiry(t *testing.T) {
	const ttl, interval = 2 * time.Second, 2 * time.Second / 3
	for _, driver := range []string{"file", "nfs", "etcd"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			ss := stores(t, driver, 2)
			b := &beats{Liveness: ss[0].(lease.Liveness)}
			bctx, stop := context.WithCancel(ctx)
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				lease.Heartbeat(bctx, b, "a", ttl, interval, func(err error) { t.Logf("beat: %v", err) })
			}()
			require.Eventually(t, func() bool {
				b.mu.Lock()
				defer b.mu.Unlock()
				return !b.last.IsZero()
			}, 5*time.Second, 10*time.Millisecond)
			wctx, cancel := context.WithTimeout(ctx, 2*ttl)
			err := lease.AwaitExpiry(wctx, ss[1].(lease.Liveness), "a", ttl)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded, "a beats: no expiry in 2 TTLs")

			stop()
			<-stopped
			b.mu.Lock()
			last := b.last
			b.mu.Unlock()
			require.NoError(t, lease.AwaitExpiry(ctx, ss[1].(lease.Liveness), "a", ttl))
			took := time.Since(last)
			// etcd counts the TTL from the renewal's arrival and
			// expires leases every 500 ms.
			assert.GreaterOrEqual(t, took, ttl-100*time.Millisecond, "not before the TTL")
			assert.Less(t, took, ttl+1500*time.Millisecond, "soon after the TTL")
			t.Logf("%s: expiry seen %s after the last beat (TTL %s)", driver, took.Round(time.Millisecond), ttl)
		})
	}
}

// TestEtcdListInPages: a listing longer than a page reads page after page
// at one revision: every lease once, in order, while other leases come and
// go; the pages show the leases of one moment.
func TestEtcdListInPages(t *testing.T) {
	ctx := context.Background()
	ss := stores(t, "etcd", 2)
	s := ss[0].(*etcdlease.Store)
	s.PageSize = 7
	var stable []string
	for i := 0; i < 60; i++ {
		j := fmt.Sprintf("s%03d", i)
		_, err := s.Acquire(ctx, j, "a")
		require.NoError(t, err)
		stable = append(stable, j)
	}
	// Leases made one after the other while the pages are read, their
	// names spread over the key space: pages read at different moments
	// would show a later lease on a later page but miss an earlier one
	// on an earlier page.
	stop := meanwhile(func(i int) { ss[1].Acquire(ctx, fmt.Sprintf("t%02d-%05d", i%40, i), "b") })
	most := 0
	for r := 0; r < 30; r++ {
		ls, err := s.List(ctx)
		require.NoError(t, err)
		got := names(ls)
		require.True(t, sort.StringsAreSorted(got))
		var own []string
		var made []int
		for _, j := range got {
			if strings.HasPrefix(j, "s") {
				own = append(own, j)
				continue
			}
			var bucket, i int
			_, err := fmt.Sscanf(j, "t%02d-%05d", &bucket, &i)
			require.NoError(t, err)
			made = append(made, i)
		}
		require.Equal(t, stable, own, "every lease once")
		sort.Ints(made)
		for k, i := range made {
			require.Equal(t, k, i, "listing %d: the leases of one moment, none missing", r)
		}
		most = max(most, len(made))
	}
	stop()
	require.Greater(t, most, 40, "leases were made during the listings")
}

// TestEnvctlHeartbeatUpgradesTheStore: envctl heartbeat, started on a
// cluster whose leases an older envctl wrote, indexes them after its first
// beat; the search by owner then goes through the index.
func TestEnvctlHeartbeatUpgradesTheStore(t *testing.T) {
	ctx := context.Background()
	a, _, _ := envNodes(t, "etcd")
	var prefix string
	cfg, err := os.ReadFile(a.cfg)
	require.NoError(t, err)
	for _, line := range strings.Split(string(cfg), "\n") {
		if v, ok := strings.CutPrefix(line, "LEASE_DIR="); ok {
			prefix = v
		}
	}
	require.NotEmpty(t, prefix)
	c := etcdClient(t)
	v, _ := json.Marshal(map[string]any{"node": "gone", "since": time.Now().UTC().Truncate(time.Second)})
	for i := 0; i < 30; i++ {
		_, err := c.Put(ctx, fmt.Sprintf("%s/env%02d", prefix, i), string(v))
		require.NoError(t, err)
	}
	a.heartbeat()
	require.Eventually(t, func() bool {
		resp, err := c.Get(ctx, prefix+"/.layout")
		return err == nil && len(resp.Kvs) == 1
	}, 15*time.Second, 100*time.Millisecond, "envctl heartbeat completed the index")
	resp, err := c.Get(ctx, prefix+"/.owner/gone/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	assert.Equal(t, int64(30), resp.Count)
	s, err := etcdlease.New(etcdCluster(t).Endpoints(), prefix, timeout)
	require.NoError(t, err)
	defer s.Close()
	held, err := s.HeldBy(ctx, "gone")
	require.NoError(t, err)
	assert.Len(t, held, 30)
}
