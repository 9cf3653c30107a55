//go:build linux

package lease_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/envhooks/envhooks/hooks" // the NFS backend's keys
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/lease/etcdlease"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/tests/testenv"
)

// TestExamplesLoad: the example configurations load without warnings and
// open the lease store they describe.
func TestExamplesLoad(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "examples", "etcd")
	cfg, err := config.LoadFile(filepath.Join(dir, "envhooks.conf"))
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings)
	s, err := lease.Open(cfg, run.New(false, nil))
	require.NoError(t, err)
	e, ok := s.(*etcdlease.Store)
	require.True(t, ok, "%T", s)
	assert.Equal(t, "/envhooks/leases", e.Prefix)
	lease.Close(s)

	cfg, err = config.LoadFile(filepath.Join(dir, "envhooks-nfs-leases.conf"))
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings)
	s, err = lease.Open(cfg, run.New(false, nil))
	require.NoError(t, err)
	n, ok := s.(*lease.NFSStore)
	require.True(t, ok, "%T", s)
	assert.Equal(t, "10.0.0.10", n.Server)
	assert.Equal(t, "/nfs", n.Export, "the lease directory is reached through NFS_SERVER_ROOT_DIR's export")
}
