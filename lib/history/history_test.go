package history

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/lease"
)

func TestAppendKeepsOrderAndBound(t *testing.T) {
	ctx := context.Background()
	s := &lease.FileStore{Dir: t.TempDir()}
	base := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	for i := range 7 {
		require.NoError(t, Append(ctx, s, Event{Time: base.Add(time.Duration(i) * time.Second), JName: "web1", Event: "move", Node: fmt.Sprintf("n%d", i), By: "a"}, 5))
	}
	evs, err := List(ctx, s, "web1")
	require.NoError(t, err)
	require.Len(t, evs, 5)
	for i, ev := range evs {
		assert.Equal(t, fmt.Sprintf("n%d", i+2), ev.Node, "oldest dropped, order kept")
	}
	other, err := List(ctx, s, "web2")
	require.NoError(t, err)
	assert.Empty(t, other)
}

// Nodes append at once without losing an event: each is its own record.
func TestConcurrentAppendsLoseNothing(t *testing.T) {
	ctx := context.Background()
	s := &lease.FileStore{Dir: t.TempDir()}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, Append(ctx, s, Event{JName: "web1", Event: "register", By: fmt.Sprintf("n%d", i)}, 100))
		}()
	}
	wg.Wait()
	evs, err := List(ctx, s, "web1")
	require.NoError(t, err)
	assert.Len(t, evs, 20)
}
