package nullfs

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	_ "github.com/envhooks/envhooks/lib/lease" // LEASE_* keys
)

// The shipped example loads without warnings and builds a backend.
func TestExampleConfigLoads(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "examples", "nullfs", "envhooks.conf")
	cfg, err := config.LoadFile(p)
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings)
	b, err := New(cfg)
	require.NoError(t, err)
	assert.Equal(t, "/dfs/envs/data/web1", b.(*Backend).Source("web1", "data"))
}
