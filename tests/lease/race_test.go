//go:build linux

package lease_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/lease/etcdlease"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// TestRaces races acquirers, each with a connection of its own, for one
// environment round after round: exactly one wins each round, the store
// names that winner, and every new owner's generation is larger than the
// last one's.
func TestRaces(t *testing.T) {
	for _, tc := range []struct {
		driver    string
		acquirers int
		rounds    int
	}{
		{"file", 8, 5000},
		{"nfs", 5, 1500},
		{"etcd", 5, 3000},
	} {
		t.Run(tc.driver, func(t *testing.T) {
			ss := stores(t, tc.driver, tc.acquirers)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var lastGen uint64
			start := time.Now()
			for r := 0; r < tc.rounds; r++ {
				winners, _, err := round(ctx, ss, "web1", false)
				require.NoError(t, err, "round %d", r)
				require.Len(t, winners, 1, "round %d: exactly one owner", r)
				l, err := ss[0].Get(ctx, "web1")
				require.NoError(t, err)
				require.NotNil(t, l)
				require.Equal(t, winners[0], l.Node, "round %d: the store names the winner", r)
				require.Greater(t, l.Generation, lastGen, "round %d: generations grow", r)
				lastGen = l.Generation
				if r%250 == 0 {
					held, err := lease.HeldBy(ctx, ss[r%len(ss)], winners[0])
					require.NoError(t, err)
					require.Equal(t, []lease.Lease{*l}, held, "round %d: the winner's leases", r)
				}
				w := index(winners[0])
				require.NoError(t, ss[w].Release(ctx, "web1", winners[0]))
			}
			t.Logf("%s: %d rounds of %d acquirers in %s, one owner each, last generation %d", tc.driver, tc.rounds, tc.acquirers, time.Since(start).Round(time.Millisecond), lastGen)
			ls, err := ss[1].List(ctx)
			require.NoError(t, err)
			require.Empty(t, ls, "every lease released")
			for i := range ss {
				held, err := lease.HeldBy(ctx, ss[0], node(i))
				require.NoError(t, err)
				require.Empty(t, held, "%s holds nothing", node(i))
			}
		})
	}
}

// TestListAndTakeover checks List and the explicit takeover on the real
// servers: only the named former owner can be taken from.
func TestListAndTakeover(t *testing.T) {
	for _, driver := range []string{"nfs", "etcd"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			ss := stores(t, driver, 2)
			a, err := ss[0].Acquire(ctx, "web1", "a")
			require.NoError(t, err)
			_, err = ss[0].Acquire(ctx, "db.2", "a")
			require.NoError(t, err)
			ls, err := ss[1].List(ctx)
			require.NoError(t, err)
			require.Len(t, ls, 2)
			require.Equal(t, "db.2", ls[0].JName)
			require.Equal(t, "web1", ls[1].JName)
			require.Equal(t, "a", ls[1].Node)

			_, err = ss[1].Takeover(ctx, "web1", "b", "c")
			require.Error(t, err, "c does not hold it")
			b, err := ss[1].Takeover(ctx, "web1", "b", "a")
			require.NoError(t, err)
			require.Equal(t, "b", b.Node)
			require.Greater(t, b.Generation, a.Generation)
			require.Error(t, ss[0].Release(ctx, "web1", "a"), "a lost it")
			l, err := ss[0].Get(ctx, "web1")
			require.NoError(t, err)
			require.Equal(t, "b", l.Node)
			require.NoError(t, ss[1].Release(ctx, "web1", "b"))
			require.NoError(t, ss[0].Release(ctx, "db.2", "a"))
			ls, err = ss[1].List(ctx)
			require.NoError(t, err)
			require.Empty(t, ls)
		})
	}
}

func index(node string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(node, "node"))
	return i
}

// A damaged etcd lease value (what another tool, or a torn migration, left
// under the key) is a damaged record named by its key, with 65: never read
// as free, never quoted back. An older value without a format still reads.
func TestDamagedEtcdLeaseIsNamed(t *testing.T) {
	ctx := context.Background()
	prefix := fmt.Sprintf("/%s-%d", t.Name(), time.Now().UnixNano())
	s, err := etcdlease.New(etcdCluster(t).Endpoints(), prefix, timeout)
	require.NoError(t, err)
	t.Cleanup(func() { lease.Close(s) })
	c, err := etcdCluster(t).Client()
	require.NoError(t, err)
	defer c.Close()
	const secret = "SECRET-0xdeadbeef"
	for value, damaged := range map[string]bool{
		"node=" + secret:                              true,
		`{"since": "` + secret + `"}`:                 true,
		`{"format": "envhooks-state 2"}`:              true,
		`{"node":"a","since":"2026-01-02T03:04:05Z"}`: false,
	} {
		_, err := c.Put(ctx, prefix+"/web1", value)
		require.NoError(t, err)
		l, err := s.Get(ctx, "web1")
		if !damaged {
			require.NoError(t, err, value)
			assert.Equal(t, "a", l.Node)
			continue
		}
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), "%s: %v", value, err)
		assert.ErrorContains(t, err, "lease record etcd key "+prefix+"/web1", value)
		assert.NotContains(t, err.Error(), secret, value)
		_, err = s.Acquire(ctx, "web1", "b")
		assert.Error(t, err, "%s: a damaged lease is not free", value)
	}
}
