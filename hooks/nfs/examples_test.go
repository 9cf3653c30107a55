package nfs

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
)

func examplePath(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "nfs", name)
}

// The CBSD sample config loads unchanged, with no unknown-key warnings,
// and gives the mounts the sample script makes.
func TestCBSDSampleExampleIsADropIn(t *testing.T) {
	cfg, err := config.LoadFile(examplePath("env_start_nfs.conf"))
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings)
	b, err := newBackend(cfg)
	require.NoError(t, err)
	assert.Equal(t, 4, b.version)
	src := func(role environment.Role) string {
		r, err := b.Remote("jail1", role)
		require.NoError(t, err)
		return Source(b.server, r)
	}
	assert.Equal(t, "172.16.0.1:/nfs/data/jail1", src(environment.Data))
	assert.Equal(t, "172.16.0.1:/nfs/fstab/jail1", src(environment.Fstab))
	argv := FreeBSDMountArgv(b.words, src(environment.Data), "/usr/jails/jails-data/jail1-data")
	assert.Equal(t, "mount_nfs -orw -overs=4 -ointr -orsize=32768 -owsize=32768 -oacregmax=3 -oacdirmin=3 -oacdirmax=3 -ohard -oproto=tcp -otimeout=300 172.16.0.1:/nfs/data/jail1 /usr/jails/jails-data/jail1-data", strings.Join(argv, " "))
}

func TestLinuxNFSv3Example(t *testing.T) {
	cfg, err := config.LoadFile(examplePath("linux-nfsv3.conf"))
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings)
	b, err := newBackend(cfg)
	require.NoError(t, err)
	d, err := b.Remote("web1", environment.Data)
	require.NoError(t, err)
	assert.Equal(t, "/fast/envs-data/web1", d)
	argv, err := LinuxMountArgv(b.words, Source(b.server, d), "/var/lib/lxc/web1/rootfs")
	require.NoError(t, err)
	assert.Equal(t, []string{"mount", "-t", "nfs", "-o", "rw,vers=3,hard,proto=tcp,timeo=600", "nfs1.example.org:/fast/envs-data/web1", "/var/lib/lxc/web1/rootfs"}, argv)
	assert.Equal(t, "2s", b.preflight.String())
}
