package journal

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/lease"
)

func TestJournalLifecycle(t *testing.T) {
	ctx := context.Background()
	s := &lease.FileStore{Dir: t.TempDir()}
	j, err := Load(ctx, s, "web1")
	require.NoError(t, err)
	assert.Nil(t, j)
	require.NoError(t, Save(ctx, s, &Journal{JName: "web1", From: "a", To: "b", Step: Begun, Direction: Forward}))
	require.NoError(t, Save(ctx, s, &Journal{JName: "web1", From: "a", To: "b", Step: Released, Direction: Forward}))
	j, err = Load(ctx, s, "web1")
	require.NoError(t, err)
	require.NotNil(t, j)
	assert.Equal(t, Released, j.Step)
	assert.False(t, j.Updated.IsZero())
	open, err := Open(ctx, s)
	require.NoError(t, err)
	assert.Equal(t, []string{"web1"}, open)
	require.NoError(t, Close(ctx, s, "web1"))
	require.NoError(t, Close(ctx, s, "web1"), "closing twice is success")
	j, err = Load(ctx, s, "web1")
	require.NoError(t, err)
	assert.Nil(t, j)
	// The leases beside the records are untouched by them.
	ls, err := s.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, ls)
}

func TestRecordPathsStayInside(t *testing.T) {
	s := &lease.FileStore{Dir: t.TempDir()}
	for _, bad := range []string{"..", ".x", "a/b", ""} {
		assert.Error(t, s.PutRecord(context.Background(), "journal", bad, []byte("x")), bad)
	}
}
