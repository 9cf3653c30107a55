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

// The keys of the store's own (heartbeats, the index by owner, the layout
// marker) sort before every lease, and the lease range holds exactly the
// keys whose name may be a jname.
func TestKeyLayout(t *testing.T) {
	e := &Store{Prefix: "/envhooks"}
	from, end := e.leaseRange()
	in := func(k string) bool { return k >= from && k < end }
	for _, k := range []string{e.key("0"), e.key("web1"), e.key("zzz"), e.key("Z-9_x.y")} {
		assert.True(t, in(k), k)
	}
	for _, k := range []string{e.beatKey("a"), e.seenKey("a"), e.ownerKey("a", "web1"), e.layoutKey(), "/envhooks2/web1", "/envhooks"} {
		assert.False(t, in(k), k)
	}
	assert.Equal(t, "/envhooks/.owner/node-1/web1", e.ownerKey("node-1", "web1"))
}
