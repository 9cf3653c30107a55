package lease

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestAcquireReleaseAndGenerations(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	l, err := s.Get(ctx, "web1")
	require.NoError(t, err)
	assert.Nil(t, l)

	a, err := s.Acquire(ctx, "web1", "a")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), a.Generation)
	again, err := s.Acquire(ctx, "web1", "a")
	require.NoError(t, err)
	assert.Equal(t, a.Generation, again.Generation, "holding it already is success")

	_, err = s.Acquire(ctx, "web1", "b")
	var held *HeldError
	require.True(t, errors.As(err, &held))
	assert.Equal(t, "a", held.Lease.Node)
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
	assert.Contains(t, err.Error(), "owned by node a")

	assert.Equal(t, sysexits.NoPerm, sysexits.Code(s.Release(ctx, "web1", "b")), "only the holder releases")
	require.NoError(t, s.Release(ctx, "web1", "a"))
	require.NoError(t, s.Release(ctx, "web1", "a"), "releasing nothing is success")

	b, err := s.Acquire(ctx, "web1", "b")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), b.Generation, "generations grow across owners")
	list, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "b", list[0].Node)
}

func TestTakeoverNeedsTheRightFormerOwner(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	_, err := s.Acquire(ctx, "web1", "a")
	require.NoError(t, err)
	_, err = s.Takeover(ctx, "web1", "b", "c")
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
	assert.Contains(t, err.Error(), "held by a, not by c")
	l, err := s.Takeover(ctx, "web1", "b", "a")
	require.NoError(t, err)
	assert.Equal(t, "b", l.Node)
	assert.Equal(t, uint64(2), l.Generation)
}

func TestConcurrentAcquireHasOneWinner(t *testing.T) {
	ctx := context.Background()
	for round := 0; round < 200; round++ {
		s := &FileStore{Dir: t.TempDir()}
		var wg sync.WaitGroup
		wins := make(chan string, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(node string) {
				defer wg.Done()
				if _, err := s.Acquire(ctx, "web1", node); err == nil {
					wins <- node
				}
			}(string(rune('a' + i)))
		}
		wg.Wait()
		close(wins)
		var winners []string
		for w := range wins {
			winners = append(winners, w)
		}
		require.Len(t, winners, 1, "round %d", round)
		l, _ := s.Get(ctx, "web1")
		assert.Equal(t, winners[0], l.Node)
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	_, err := Check(ctx, s, "web1", "a")
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
	assert.Contains(t, err.Error(), "not owned by any node")
	_, err = s.Acquire(ctx, "web1", "b")
	require.NoError(t, err)
	_, err = Check(ctx, s, "web1", "a")
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
	l, err := Check(ctx, s, "web1", "b")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), l.Generation)
}

// A file store never creates its directory: a missing one is 69, named.
func TestAcquireInAMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-mounted")
	_, err := (&FileStore{Dir: dir}).Acquire(context.Background(), "web1", "a")
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.ErrorContains(t, err, "LEASE_DIR "+dir+" does not exist")
	assert.NoDirExists(t, dir)
}
