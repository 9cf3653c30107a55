package cbsdlock

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNodeNames(t *testing.T) {
	wd := t.TempDir()
	assert.Equal(t, []string{"a"}, NodeNames(wd, "a", ""))
	// cbsd.conf takes the first word of ${workdir}/nodename.
	require.NoError(t, os.WriteFile(filepath.Join(wd, "nodename"), []byte("cbsd-a.example.org extra\n"), 0o644))
	assert.Equal(t, []string{"cbsd-a.example.org", "a"}, NodeNames(wd, "a"))
}

func TestClearIfMine(t *testing.T) {
	sys := t.TempDir()
	lock := filepath.Join(sys, FileName)
	holder, removed, err := ClearIfMine(sys, []string{"a"})
	require.NoError(t, err)
	assert.False(t, removed)
	assert.Empty(t, holder)

	// jstart writes `echo "${nodename}" > locked`.
	require.NoError(t, os.WriteFile(lock, []byte("b\n"), 0o644))
	holder, removed, err = ClearIfMine(sys, []string{"a"})
	require.NoError(t, err)
	assert.False(t, removed, "another node's lock is not ours to remove")
	assert.Equal(t, "b", holder)
	assert.FileExists(t, lock)

	holder, removed, err = ClearIfMine(sys, []string{"x", "b"})
	require.NoError(t, err)
	assert.True(t, removed)
	assert.Equal(t, "b", holder)
	assert.NoFileExists(t, lock)

	require.NoError(t, os.WriteFile(lock, nil, 0o644))
	_, removed, err = ClearIfMine(sys, []string{"a", ""})
	require.NoError(t, err)
	assert.False(t, removed, "an empty lock (cbsdd's touch) is jstart's to judge")
	require.NoError(t, os.Remove(lock))
	require.NoError(t, os.Mkdir(lock, 0o755))
	_, _, err = ClearIfMine(sys, []string{"a"})
	assert.Error(t, err, "a directory named locked is not CBSD's file")
}
