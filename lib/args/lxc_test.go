package args

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// lxcEnv is what LXC 5 sets for a hook of container web1 (as seen from a
// hook of a busybox container created with lxc-create -t busybox).
func lxcEnv(extra map[string]string) func(string) (string, bool) {
	env := map[string]string{
		"LXC_NAME": "web1", "LXC_CONFIG_FILE": "/var/lib/lxc/web1/config", "LXC_ROOTFS_PATH": "/var/lib/lxc/web1/rootfs",
		"LXC_ROOTFS_MOUNT": "/usr/lib/x86_64-linux-gnu/lxc/rootfs", "LXC_HOOK_VERSION": "0", "LXC_CGNS_AWARE": "1", "LXC_LOG_LEVEL": "ERROR",
	}
	for k, v := range extra {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestLXCHookVersion0(t *testing.T) {
	o, err := parse([]string{"/usr/local/bin/mnt-start", "web1", "lxc", "pre-start"}, Start, lxcEnv(nil))
	require.NoError(t, err)
	assert.Equal(t, "web1", o.JName)
	assert.Equal(t, map[environment.Role]string{environment.Data: "/var/lib/lxc/web1/rootfs", environment.System: "/var/lib/lxc/web1/system"}, o.Env().Dirs)

	// The hook line's own flags come before LXC's operands; given
	// directories win.
	o, err = parse([]string{"mnt-start", "-c", "/etc/lxc.conf", "-n", "-s", "/srv/web1-sys", "web1", "lxc", "pre-start"}, Start, lxcEnv(map[string]string{"LXC_ROOTFS_PATH": "dir:/srv/web1/rootfs/"}))
	require.NoError(t, err)
	assert.Equal(t, "/etc/lxc.conf", o.ConfigFile)
	assert.True(t, o.DryRun)
	assert.Equal(t, "/srv/web1/rootfs", o.Data, "dir: is stripped, the path cleaned")
	assert.Equal(t, "/srv/web1-sys", o.System)

	o, err = parse([]string{"mnt-stop", "web1", "lxc", "post-stop"}, Stop, lxcEnv(nil))
	require.NoError(t, err)
	assert.Equal(t, "web1", o.JName)
}

func TestLXCHookVersion1(t *testing.T) {
	o, err := parse([]string{"mnt-start"}, Start, lxcEnv(map[string]string{"LXC_HOOK_VERSION": "1", "LXC_HOOK_TYPE": "pre-start", "LXC_HOOK_SECTION": "lxc"}))
	require.NoError(t, err)
	assert.Equal(t, "web1", o.JName)
	assert.Equal(t, "/var/lib/lxc/web1/rootfs", o.Data)
	o, err = parse([]string{"mnt-stop"}, Stop, lxcEnv(map[string]string{"LXC_HOOK_VERSION": "1", "LXC_HOOK_TYPE": "post-stop", "LXC_HOOK_SECTION": "lxc"}))
	require.NoError(t, err)
	assert.Equal(t, "web1", o.JName)
}

func TestLXCHookMistakes(t *testing.T) {
	cases := []struct {
		name string
		argv []string
		req  Required
		env  map[string]string
		code int
	}{
		{"start as post-stop", []string{"mnt-start", "web1", "lxc", "post-stop"}, Start, nil, sysexits.Usage},
		{"stop as pre-start", []string{"mnt-stop", "web1", "lxc", "pre-start"}, Stop, nil, sysexits.Usage},
		{"stop hook with namespaces", []string{"mnt-stop", "web1", "lxc", "stop", "mnt:/proc/1/fd/3"}, Stop, nil, sysexits.Usage},
		{"another name", []string{"mnt-start", "web2", "lxc", "pre-start"}, Start, nil, sysexits.Usage},
		{"net section", []string{"mnt-start", "web1", "net", "pre-start"}, Start, nil, sysexits.Usage},
		{"version 1 without a type", []string{"mnt-start"}, Start, map[string]string{"LXC_HOOK_VERSION": "1"}, sysexits.Usage},
		{"no rootfs", []string{"mnt-start", "web1", "lxc", "pre-start"}, Start, map[string]string{"LXC_ROOTFS_PATH": ""}, sysexits.Config},
		{"zfs rootfs", []string{"mnt-start", "web1", "lxc", "pre-start"}, Start, map[string]string{"LXC_ROOTFS_PATH": "zfs:tank/lxc/web1"}, sysexits.Config},
		{"overlay rootfs", []string{"mnt-start", "web1", "lxc", "pre-start"}, Start, map[string]string{"LXC_ROOTFS_PATH": "overlay:/base:/var/lib/lxc/web1/delta0"}, sysexits.Config},
		{"relative rootfs", []string{"mnt-start", "web1", "lxc", "pre-start"}, Start, map[string]string{"LXC_ROOTFS_PATH": "rootfs"}, sysexits.Usage},
		{"no config file", []string{"mnt-start", "web1", "lxc", "pre-start"}, Start, map[string]string{"LXC_CONFIG_FILE": ""}, sysexits.Config},
		{"a name LXC allows and envhooks does not", []string{"mnt-start", "we b", "lxc", "pre-start"}, Start, map[string]string{"LXC_NAME": "we b"}, sysexits.DataErr},
	}
	for _, c := range cases {
		_, err := parse(c.argv, c.req, lxcEnv(c.env))
		if assert.Error(t, err, c.name) {
			assert.Equal(t, c.code, sysexits.Code(err), "%s: %v", c.name, err)
			assert.NotContains(t, err.Error(), "\n", c.name)
		}
	}
}

// With -j given the hook protocol is CBSD's, even inside an LXC hook's
// environment (a wrapper script that passes its own flags).
func TestFlagsWinOverLXC(t *testing.T) {
	o, err := parse([]string{"mnt-start", "-j", "other", "-d", "/d", "-s", "/s"}, Start, lxcEnv(nil))
	require.NoError(t, err)
	assert.Equal(t, "other", o.JName)
	_, err = parse([]string{"mnt-start", "-j", "other", "-d", "/d", "-s", "/s", "web1", "lxc", "pre-start"}, Start, lxcEnv(nil))
	assert.Equal(t, sysexits.Usage, sysexits.Code(err))
	// Without LXC's environment, LXC's operands are just stray operands.
	_, err = parse([]string{"mnt-start", "web1", "lxc", "pre-start"}, Start, func(string) (string, bool) { return "", false })
	assert.Equal(t, sysexits.Usage, sysexits.Code(err))
}
