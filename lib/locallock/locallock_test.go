package locallock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestSecondHolderWaitsThenGivesUpWith75(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(context.Background(), dir, "web1", time.Second)
	require.NoError(t, err)
	_, err = Acquire(context.Background(), dir, "web1", 100*time.Millisecond)
	require.Error(t, err)
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err))
	other, err := Acquire(context.Background(), dir, "web2", 100*time.Millisecond)
	require.NoError(t, err, "other environments are not held up")
	require.NoError(t, other.Release())
	require.NoError(t, l.Release())
	again, err := Acquire(context.Background(), dir, "web1", 100*time.Millisecond)
	require.NoError(t, err)
	require.NoError(t, again.Release())
}
