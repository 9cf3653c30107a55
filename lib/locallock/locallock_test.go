package locallock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/deadline"
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

// A wait cut short by the run's own deadline says so, and how long it
// really waited: not LOCK_TIMEOUT's 30 s.
func TestWaitCutByTheRunsDeadlineSaysWhich(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(context.Background(), dir, "web1", time.Second)
	require.NoError(t, err)
	defer l.Release()
	ctx, cancel := deadline.WithTimeout(context.Background(), 300*time.Millisecond, "HOOK_TIMEOUT")
	defer cancel()
	_, err = Acquire(ctx, dir, "web1", 30*time.Second)
	require.Error(t, err)
	assert.Regexp(t, `gave up after [0-9.]+m?s, when HOOK_TIMEOUT=300ms passed`, err.Error())
	assert.NotContains(t, err.Error(), "30s")
	_, err = Acquire(context.Background(), dir, "web1", 200*time.Millisecond)
	assert.Regexp(t, `gave up after [0-9.]+m?s, when LOCK_TIMEOUT=200ms passed`, err.Error())
}
