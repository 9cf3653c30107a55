//go:build linux

package nfs_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/nfsclient"
)

// The user-space client works on the real server: the calls a later lease
// backend builds on (atomic mkdir, stat, write, read, remove).
func TestClientAgainstGanesha(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	c, err := nfsclient.Dial(ctx, "127.0.0.1", s.Export, nfsclient.Options{Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer c.Close()

	created, err := c.MkdirAll(ctx, "client/a/b", 0o750, nfsclient.Owner{UID: 1234, GID: 4321})
	require.NoError(t, err)
	assert.Equal(t, []string{"client", "client/a", "client/a/b"}, created)
	fi, err := os.Stat(filepath.Join(s.Export, "client/a/b"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
	assert.Equal(t, fs.FileMode(0o750), fi.Mode().Perm())
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, uint32(1234), st.Uid)
	assert.Equal(t, uint32(4321), st.Gid)

	info, err := c.Stat(ctx, "client/a/b")
	require.NoError(t, err)
	assert.True(t, info.IsDir)
	assert.Equal(t, fs.FileMode(0o750), info.Mode)
	assert.Equal(t, uint32(1234), info.UID)

	again, err := c.MkdirAll(ctx, "client/a/b", 0o750, nfsclient.NoOwner)
	require.NoError(t, err)
	assert.Empty(t, again)

	err = c.Mkdir(ctx, "client/a/b", 0o755, nfsclient.NoOwner)
	assert.True(t, errors.Is(err, fs.ErrExist), "mkdir of an existing dir: %v", err)

	_, err = c.Stat(ctx, "client/missing")
	assert.True(t, errors.Is(err, fs.ErrNotExist), "stat of a missing path: %v", err)

	require.NoError(t, c.WriteFile(ctx, "client/f", []byte("a longer first version\n"), 0o644))
	require.NoError(t, c.WriteFile(ctx, "client/f", []byte("short\n"), 0o644))
	data, err := c.ReadFile(ctx, "client/f")
	require.NoError(t, err)
	assert.Equal(t, "short\n", string(data))
	disk, err := os.ReadFile(filepath.Join(s.Export, "client/f"))
	require.NoError(t, err)
	assert.Equal(t, "short\n", string(disk))

	require.NoError(t, c.Remove(ctx, "client/f"))
	require.NoError(t, c.Remove(ctx, "client/a/b"))
	_, err = os.Stat(filepath.Join(s.Export, "client/a/b"))
	assert.True(t, os.IsNotExist(err))
	assert.True(t, errors.Is(c.Remove(ctx, "client/a/b"), fs.ErrNotExist))
}

// Of many clients racing to create the same directory exactly one wins:
// the property ownership leases rely on.
func TestClientMkdirIsExclusive(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	const racers = 8
	var wg sync.WaitGroup
	results := make(chan error, racers)
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := nfsclient.Dial(ctx, "127.0.0.1", s.Export, nfsclient.Options{Timeout: 5 * time.Second})
			if err != nil {
				results <- err
				return
			}
			defer c.Close()
			results <- c.Mkdir(ctx, "race", 0o755, nfsclient.NoOwner)
		}()
	}
	wg.Wait()
	close(results)
	won, lost := 0, 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case errors.Is(err, fs.ErrExist):
			lost++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	assert.Equal(t, 1, won)
	assert.Equal(t, racers-1, lost)
}

// MOUNT answers for the export and for a directory inside it, and refuses
// a path that does not exist; NULL calls answer for v3 and v4.
func TestProbeExports(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub := mkExport(t, s, "probe/sub")
	require.NoError(t, nfsclient.ProbeExports(ctx, "127.0.0.1", []string{s.Export, sub}, nfsclient.Credentials{}))
	err := nfsclient.ProbeExports(ctx, "127.0.0.1", []string{filepath.Join(s.Export, "nope")}, nfsclient.Credentials{})
	var ee *nfsclient.ExportError
	require.True(t, errors.As(err, &ee), "%v", err)
	// ganesha answers ACCES, not NOENT, for a path no export holds.
	assert.Equal(t, filepath.Join(s.Export, "nope"), ee.Path)
	require.NoError(t, nfsclient.ProbeNull(ctx, "127.0.0.1", nfsclient.NFSPort, 4))
	require.NoError(t, nfsclient.ProbeNull(ctx, "127.0.0.1", nfsclient.NFSPort, 3))
}
