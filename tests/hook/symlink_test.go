package hook

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/tests/testenv"
)

// symlinkCase builds a node where some path the hooks use goes through a
// symbolic link, as /home -> /usr/home does on FreeBSD.
type symlinkCase struct {
	name  string
	setup func(t *testing.T, n *node) (args []string) // returns the directory flags
}

var symlinkCases = []symlinkCase{
	{"NULLFS_ROOT is a link", func(t *testing.T, n *node) []string {
		link := filepath.Join(n.root, "dfs-link")
		require.NoError(t, os.Symlink(n.dfs, link))
		n.setConfig("NULLFS_ROOT", link)
		return n.jailArgs("web1")
	}},
	{"NULLFS_ROOT is a relative link", func(t *testing.T, n *node) []string {
		link := filepath.Join(n.root, "dfs-link")
		require.NoError(t, os.Symlink("dfs", link))
		n.setConfig("NULLFS_ROOT", link)
		return n.jailArgs("web1")
	}},
	{"a source is a link", func(t *testing.T, n *node) []string {
		real := filepath.Join(n.root, "elsewhere", "web1")
		require.NoError(t, os.MkdirAll(filepath.Dir(real), 0o755))
		require.NoError(t, os.Rename(filepath.Join(n.dfs, "data", "web1"), real))
		require.NoError(t, os.Symlink(real, filepath.Join(n.dfs, "data", "web1")))
		return n.jailArgs("web1")
	}},
	{"the workdir is reached through a link", func(t *testing.T, n *node) []string {
		link := filepath.Join(n.root, "jails")
		require.NoError(t, os.MkdirAll(n.workdir, 0o755))
		require.NoError(t, os.Symlink(n.workdir, link))
		return cbsdArgs(link, "web1")
	}},
	{"a parent of the workdir is a link (/home -> /usr/home)", func(t *testing.T, n *node) []string {
		require.NoError(t, os.MkdirAll(n.workdir, 0o755))
		require.NoError(t, os.Symlink(filepath.Join(n.root, "usr"), filepath.Join(n.root, "home")))
		return cbsdArgs(filepath.Join(n.root, "home", "jails"), "web1")
	}},
	{"a mount point is a link", func(t *testing.T, n *node) []string {
		d := environment.CBSDDirs(n.workdir, "web1")
		real := filepath.Join(n.root, "real-data")
		require.NoError(t, os.MkdirAll(real, 0o755))
		require.NoError(t, os.MkdirAll(filepath.Dir(d["data"]), 0o755))
		require.NoError(t, os.Symlink(real, d["data"]))
		return n.jailArgs("web1")
	}},
	{"a chain of links with ..", func(t *testing.T, n *node) []string {
		require.NoError(t, os.MkdirAll(filepath.Join(n.root, "a", "b"), 0o755))
		require.NoError(t, os.Symlink("../../dfs", filepath.Join(n.root, "a", "b", "up")))
		require.NoError(t, os.Symlink(filepath.Join(n.root, "a", "b", "up"), filepath.Join(n.root, "top")))
		n.setConfig("NULLFS_ROOT", filepath.Join(n.root, "top"))
		return n.jailArgs("web1")
	}},
}

func cbsdArgs(workdir, jname string) []string {
	d := environment.CBSDDirs(workdir, jname)
	return []string{"-d", d["data"], "-f", d["fstab"], "-j", jname, "-r", d["rcconf"], "-s", d["system"]}
}

// setConfig appends a key to the node's configuration (a later line wins).
func (n *node) setConfig(key, value string) {
	raw, err := os.ReadFile(n.cfg)
	require.NoError(n.t, err)
	testenv.WriteFile(n.t, n.cfg, fmt.Sprintf("%s%s=%s\n", raw, key, value), 0o644)
}

// Through a symbolic link anywhere (root, source, workdir, mount point),
// three starts make the three mounts once, the quick check answers the
// second, and the stop leaves nothing. Before, every start stacked another
// mount and mnt-stop exited 0 with mounts left.
func TestSymlinkedPaths(t *testing.T) {
	for _, tc := range symlinkCases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, "")
			n.create("web1")
			args := append([]string{"-c", n.cfg}, tc.setup(t, n)...)
			start := func(env ...string) testenv.Result {
				return testenv.Run(t, append([]string{n.runDirEnv()}, env...), testenv.Bin(t, "mnt-start"), args...)
			}
			for i := 0; i < 3; i++ {
				requireOK(t, start())
				assert.Len(t, n.mountsAll(), 3, "start %d: one mount per directory", i+1)
			}
			assert.Equal(t, 0, start("ENVHOOKS_CRASH_AFTER=hook:begin").Code, "the quick check answers")
			got, err := os.ReadFile(filepath.Join(n.root, "usr", "jails", "jails-data", "web1-data", "hello.txt"))
			if tc.name != "a mount point is a link" {
				require.NoError(t, err)
				assert.Equal(t, "hello from web1\n", string(got))
			}
			r := testenv.Run(t, []string{n.runDirEnv()}, testenv.Bin(t, "mnt-stop"), args...)
			requireOK(t, r)
			assert.Empty(t, n.mountsAll(), "nothing left")
			assert.NoFileExists(t, n.recordPath("web1"))
		})
	}
}

// mountsAll lists every mount under the node's root.
func (n *node) mountsAll() []string { return testenv.MountsUnder(n.t, n.root) }
