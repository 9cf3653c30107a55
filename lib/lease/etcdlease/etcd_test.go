package etcdlease

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/run"
)

// Importing this package makes lease.Open use the etcd client itself.
func TestRegisteredWithLeaseOpen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.conf")
	require.NoError(t, os.WriteFile(p, []byte("LEASE_BACKEND=etcd\nLEASE_DIR=/envhooks\nETCD_ENDPOINTS=http://127.0.0.1:1,http://127.0.0.1:2\n"), 0o644))
	cfg, err := config.LoadFile(p)
	require.NoError(t, err)
	s, err := lease.Open(cfg, run.New(false, nil))
	require.NoError(t, err)
	e, ok := s.(*Store)
	require.True(t, ok)
	assert.Equal(t, "/envhooks/web1", e.key("web1"))
	lease.Close(s)
}
