package lease

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A store with neither an index, a census nor a watch (the file driver)
// gets the same answers through the fallbacks.
func TestClusterFallbacks(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	for _, j := range []string{"web2", "web1", "db1"} {
		node := "a"
		if j == "db1" {
			node = "b"
		}
		_, err := s.Acquire(ctx, j, node)
		require.NoError(t, err)
	}
	held, err := HeldBy(ctx, s, "a")
	require.NoError(t, err)
	require.Len(t, held, 2)
	assert.Equal(t, "web1", held[0].JName)
	assert.Equal(t, "web2", held[1].JName)

	got, err := GetMany(ctx, s, []string{"web1", "nothing", "db1"})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, "b", got["db1"].Node)
	assert.Nil(t, got["nothing"])

	const ttl = 300 * time.Millisecond
	require.NoError(t, s.Beat(ctx, "a", ttl))
	states, err := Nodes(ctx, s, []string{"a", "b", "a", OrphanNode}, ttl)
	require.NoError(t, err)
	assert.Equal(t, map[string]NodeState{"a": {Alive: true, Known: true}, "b": {}}, states)

	start := time.Now()
	require.NoError(t, AwaitExpiry(ctx, s, "a", ttl))
	assert.GreaterOrEqual(t, time.Since(start), ttl-50*time.Millisecond, "not before the TTL")
	states, err = Nodes(ctx, s, []string{"a"}, ttl)
	require.NoError(t, err)
	assert.Equal(t, NodeState{Known: true}, states["a"])

	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	require.NoError(t, s.Beat(ctx, "a", time.Minute))
	assert.ErrorIs(t, AwaitExpiry(wctx, s, "a", time.Minute), context.DeadlineExceeded, "alive: waits until ctx ends")
}
