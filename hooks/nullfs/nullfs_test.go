package nullfs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// mount_nullfs(8): mount -t nullfs [-o options] target mount-point;
// Linux mount(8): mount --bind olddir newdir.
func TestArgvOfBothSystems(t *testing.T) {
	assert.Equal(t, []string{"mount", "-t", "nullfs", "/dfs/data/web1", "/usr/jails/jails-data/web1-data"},
		FreeBSDMountArgv("/dfs/data/web1", "/usr/jails/jails-data/web1-data"))
	assert.Equal(t, []string{"mount", "--bind", "/dfs/data/web1", "/usr/jails/jails-data/web1-data"},
		LinuxMountArgv("/dfs/data/web1", "/usr/jails/jails-data/web1-data"))
}

func TestStepsChecksFirstThenOneMountPerRole(t *testing.T) {
	cfg, err := config.Load(config.Sources{Environ: []string{"NULLFS_ROOT=/dfs/"}})
	require.NoError(t, err)
	b, err := New(cfg)
	require.NoError(t, err)
	env := &environment.Env{Name: "web1", Dirs: map[environment.Role]string{
		environment.Data: "/j/jails-data/web1-data", environment.System: "/j/jails-system/web1"}}
	steps, err := b.Steps(env, []environment.Role{environment.Data, environment.System})
	require.NoError(t, err)
	require.Len(t, steps, 3)
	_, isCheck := steps[0].(*plan.Check)
	assert.True(t, isCheck, "sources are checked before anything is mounted")
	m := steps[1].(*plan.Mount)
	assert.Equal(t, "/j/jails-data/web1-data", m.Target)
	assert.Equal(t, "/dfs/data/web1", m.Want.BindOf)
	assert.Equal(t, mountArgv("/dfs/data/web1", "/j/jails-data/web1-data"), m.Argv)
	assert.Equal(t, []string{"umount", "/j/jails-data/web1-data"}, m.UnmountArgv)
	assert.Equal(t, []string{"umount", "-f", "/j/jails-data/web1-data"}, m.ForceArgv)
	assert.Equal(t, "/j/jails-system/web1", steps[2].(*plan.Mount).Target)
}

func TestNeedsRoot(t *testing.T) {
	cfg, err := config.Load(config.Sources{})
	require.NoError(t, err)
	_, err = New(cfg)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Contains(t, err.Error(), "NULLFS_ROOT")
}
