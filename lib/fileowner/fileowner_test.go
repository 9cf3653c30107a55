package fileowner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, nil, 0o600))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	uid, ok := UID(fi)
	assert.True(t, ok)
	assert.Equal(t, uint32(os.Geteuid()), uid)
}
