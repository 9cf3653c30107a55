package envctl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
)

// TestDelegateAuto: CBSD_DELEGATE=auto (the default) delegates to cbsd
// exactly when CBSD_COMMAND is an executable file; 0 and 1 say it outright.
func TestDelegateAuto(t *testing.T) {
	dir := t.TempDir()
	cbsd := filepath.Join(dir, "cbsd")
	node := func(delegate string) *Node {
		cfg, err := config.Load(config.Sources{})
		require.NoError(t, err)
		require.NoError(t, cfg.Set(config.CBSDCommand, cbsd))
		if delegate != "" {
			require.NoError(t, cfg.Set(config.CBSDDelegate, delegate))
		}
		return &Node{Config: cfg}
	}
	assert.Equal(t, "auto", node("").Config.Get(config.CBSDDelegate), "the default")
	assert.False(t, node("").delegate(), "no cbsd installed")
	require.NoError(t, os.WriteFile(cbsd, []byte("#!/bin/sh\n"), 0o644))
	assert.False(t, node("auto").delegate(), "not executable")
	require.NoError(t, os.Chmod(cbsd, 0o755))
	assert.True(t, node("auto").delegate())
	assert.False(t, node("0").delegate())
	require.NoError(t, os.Remove(cbsd))
	assert.True(t, node("1").delegate(), "1 runs cbsd and fails loudly if it is missing")
	assert.Error(t, node("").Config.Set(config.CBSDDelegate, "maybe"))
}
