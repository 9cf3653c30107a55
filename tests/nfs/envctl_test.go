//go:build linux

package nfs_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/testenv"
)

// envctl provision prepares a new environment on the server over NFS RPC,
// with nothing mounted on this node; a dry run only says what it would do.
func TestEnvctlProvision(t *testing.T) {
	s := startServer(t)
	root := mkExport(t, s, "envctl")
	n := newNode(t, serverConf(root, v4opts))
	envctl := testenv.Bin(t, "envctl")

	r := testenv.Run(t, nil, envctl, "-c", n.conf, "-n", "provision", "jname=web7")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "would create")
	_, err := os.Stat(filepath.Join(root, "data", "web7"))
	assert.True(t, os.IsNotExist(err), "the dry run created nothing")

	for i := 0; i < 2; i++ {
		r = testenv.Run(t, nil, envctl, "-c", n.conf, "provision", "web7")
		require.Equal(t, 0, r.Code, r.Stderr)
	}
	for _, role := range []string{"data", "system", "fstab", "rcconf"} {
		fi, err := os.Stat(filepath.Join(root, role, "web7"))
		require.NoError(t, err, role)
		assert.True(t, fi.IsDir())
	}
	assert.Empty(t, testenv.MountsUnder(t, n.root), "nothing was mounted")

	bad := filepath.Join(n.root, "nullfs.conf")
	testenv.WriteFile(t, bad, "BACKEND=nullfs\nNULLFS_ROOT=/srv\n", 0o644)
	r = testenv.Run(t, nil, envctl, "-c", bad, "provision", "web7")
	assert.Equal(t, 78, r.Code, r.Stderr)
	r = testenv.Run(t, nil, envctl, "-c", n.conf, "provision", "jname=../x")
	assert.Equal(t, 65, r.Code, r.Stderr)
}
