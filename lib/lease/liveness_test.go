package lease

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestTakeoverExpiredFollowsTheHeartbeat(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	const ttl = time.Hour
	_, err := s.Acquire(ctx, "web1", "a")
	require.NoError(t, err)

	_, err = TakeoverExpired(ctx, s, "web1", "b", ttl)
	var ne *NotExpiredError
	require.True(t, errors.As(err, &ne), "a node that never beat is not dead: %v", err)
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
	assert.Contains(t, err.Error(), "never sent a heartbeat")

	require.NoError(t, s.Beat(ctx, "a", ttl))
	_, err = TakeoverExpired(ctx, s, "web1", "b", ttl)
	require.True(t, errors.As(err, &ne))
	assert.Contains(t, err.Error(), "is alive")

	// a's last beat two hours ago: expired.
	require.NoError(t, os.WriteFile(s.heartbeatPath("a"), BeatRecord(time.Now().Add(-2*ttl)), 0o644))
	l, err := TakeoverExpired(ctx, s, "web1", "b", ttl)
	require.NoError(t, err)
	assert.Equal(t, "b", l.Node)
	assert.Equal(t, uint64(2), l.Generation)

	// A half-written beat never causes a takeover.
	require.NoError(t, os.WriteFile(s.heartbeatPath("b"), nil, 0o644))
	_, err = TakeoverExpired(ctx, s, "web1", "c", ttl)
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
}

func TestFileHeartbeatLeavesListAlone(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	require.NoError(t, s.Beat(ctx, "a", time.Minute))
	alive, known, last, err := s.Alive(ctx, "a", time.Minute)
	require.NoError(t, err)
	assert.True(t, alive)
	assert.True(t, known)
	assert.WithinDuration(t, time.Now(), last, time.Minute)
	_, known, _, err = s.Alive(ctx, "zz", time.Minute)
	require.NoError(t, err)
	assert.False(t, known)
	ls, err := s.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, ls)
	_, err = os.Stat(filepath.Join(s.Dir, ".heartbeat", "a"))
	assert.NoError(t, err)
}

func TestOpenPicksTheDriver(t *testing.T) {
	load := func(t *testing.T, text string) *config.Config {
		p := filepath.Join(t.TempDir(), "c.conf")
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		cfg, err := config.LoadFile(p)
		require.NoError(t, err)
		return cfg
	}
	dir := t.TempDir()
	_, err := InitDir(dir, "a")
	require.NoError(t, err)
	s, err := Open(load(t, "LEASE_DIR="+dir+"\n"), run.New(false, nil))
	require.NoError(t, err)
	assert.IsType(t, &FileStore{}, s)
	_, err = Open(load(t, "LEASE_DIR=/shared/leases\n"), run.New(false, nil))
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err), "a missing lease directory")

	s, err = Open(load(t, "LEASE_BACKEND=nfs\nLEASE_DIR=/export/leases\nLEASE_NFS_SERVER=127.0.0.1\nLEASE_NFS_EXPORT=/export\n"), run.New(false, nil))
	require.NoError(t, err)
	n := s.(*NFSStore)
	assert.Equal(t, "leases/web1.lease", n.leaseDir("web1"))
	assert.Equal(t, "leases/web1.lease/owner", n.ownerPath("web1"))

	_, err = Open(load(t, "LEASE_BACKEND=nfs\nLEASE_DIR=/elsewhere\nLEASE_NFS_SERVER=127.0.0.1\nLEASE_NFS_EXPORT=/export\n"), run.New(false, nil))
	assert.Equal(t, sysexits.Config, sysexits.Code(err))

	_, err = Open(load(t, "LEASE_BACKEND=etcd\nLEASE_DIR=/envhooks\n"), run.New(false, nil))
	assert.Equal(t, sysexits.Config, sysexits.Code(err), "etcd needs endpoints")

	s, err = Open(load(t, "LEASE_BACKEND=etcd\nLEASE_DIR=/envhooks\nETCD_ENDPOINTS=http://127.0.0.1:1,http://127.0.0.1:2\n"), run.New(false, nil))
	require.NoError(t, err)
	_, viaEnvctl := s.(*viaEnvctl)
	assert.True(t, viaEnvctl, "without the etcd driver linked, the lease is read through envctl")
	_, err = s.Acquire(context.Background(), "web1", "a")
	assert.Error(t, err, "read only")

	p := filepath.Join(t.TempDir(), "c.conf")
	require.NoError(t, os.WriteFile(p, []byte("ETCD_ENDPOINTS=127.0.0.1:2379\n"), 0o644))
	_, err = config.LoadFile(p)
	assert.Error(t, err, "an endpoint without a scheme is refused")
	require.NoError(t, os.WriteFile(p, []byte("LEASE_BACKEND=zookeeper\n"), 0o644))
	_, err = config.LoadFile(p)
	assert.Error(t, err)
}
