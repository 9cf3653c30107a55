package hook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/lib/crashpoint"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/sysexits"
	"github.com/envhooks/envhooks/tests/testenv"
)

// Installed without envhooks-attach beside it, mnt-start says so in one
// line when its quick check cannot answer.
func TestMntStartWithoutTheFullStart(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	dir := t.TempDir()
	raw, err := os.ReadFile(testenv.Bin(t, "mnt-start"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mnt-start"), raw, 0o755))
	r := n.startWith(filepath.Join(dir, "mnt-start"), nil, "web1")
	assert.Equal(t, sysexits.Unavailable, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "cannot run envhooks-attach")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %s", r.Stderr)
	assert.Empty(t, n.mounts())
}

func TestQuickCheckAnswersOnlyForTheSameInputsAndMounts(t *testing.T) {
	n := newNode(t, "MOUNT_RCCONF=0\n")
	n.create("web1")
	assert.False(t, answeredQuickly(t, n, nil, "web1"), "nothing mounted yet")
	assert.Empty(t, n.mounts(), "the killed start changed nothing")

	requireOK(t, n.start("web1"))
	mounts := n.mounts()
	assert.True(t, answeredQuickly(t, n, nil, "web1"), "everything in place, same inputs")
	assert.Equal(t, mounts, n.mounts())

	// Any input that could change the plan sends it to the full start.
	assert.False(t, answeredQuickly(t, n, nil, "web1", "-v"), "-v is the full start's to answer")
	assert.False(t, answeredQuickly(t, n, nil, "web1", "-n"), "so is a dry run")
	assert.False(t, answeredQuickly(t, n, []string{"MOUNT_FSTAB=0"}, "web1"), "a key set in the environment")
	assert.False(t, answeredQuickly(t, n, []string{"NULLFS_ROOT=" + n.dfs}, "web1"), "even to the same value")
	raw, err := os.ReadFile(n.cfg)
	require.NoError(t, err)
	testenv.WriteFile(t, n.cfg, string(raw)+"# edited\n", 0o644)
	assert.False(t, answeredQuickly(t, n, nil, "web1"), "the config file changed")
	testenv.WriteFile(t, n.cfg, string(raw), 0o644)
	assert.True(t, answeredQuickly(t, n, nil, "web1"), "and back")
	perEnv := filepath.Join(filepath.Dir(n.cfg), "envhooks.d", "web1.conf")
	testenv.WriteFile(t, perEnv, "\n", 0o644)
	assert.False(t, answeredQuickly(t, n, nil, "web1"), "a per-environment file appeared")
	require.NoError(t, os.Remove(perEnv))
	args := n.jailArgs("web1")
	args[1] = args[1] + "-other" // -d
	r := testenv.Run(t, []string{n.runDirEnv(), crashpoint.Env + "=hook:begin"}, testenv.Bin(t, "mnt-start"), append([]string{"-c", n.cfg}, args...)...)
	assert.Equal(t, -1, r.Code, "another -d: %s", r.Stderr)

	// A mount gone behind its back: the full start puts it back.
	data := filepath.Join(n.workdir, "jails-data", "web1-data")
	require.NoError(t, unix.Unmount(data, 0))
	assert.False(t, answeredQuickly(t, n, nil, "web1"), "data is no longer mounted")
	requireOK(t, n.start("web1"))
	assert.ElementsMatch(t, withoutMountIDs(mounts), withoutMountIDs(n.mounts()))
	assert.True(t, answeredQuickly(t, n, nil, "web1"))

	// Something else mounted on top: not in place.
	require.NoError(t, unix.Mount(filepath.Join(n.dfs, "system", "web1"), data, "", unix.MS_BIND, ""))
	assert.False(t, answeredQuickly(t, n, nil, "web1"), "data shows another directory")
	require.NoError(t, unix.Unmount(data, 0))

	// After mnt-stop it vouches for nothing, even for the same mounts made
	// by hand: mnt-stop would not know to undo them.
	requireOK(t, n.stop("web1"))
	assert.NoFileExists(t, filepath.Join(n.root, "run", "web1.quick"))
	for _, role := range []string{"data", "system", "fstab"} {
		target := map[string]string{"data": data, "system": filepath.Join(n.workdir, "jails-system", "web1"),
			"fstab": filepath.Join(n.workdir, "jails-fstab", "web1")}[role]
		require.NoError(t, unix.Mount(filepath.Join(n.dfs, role, "web1"), target, "", unix.MS_BIND, ""))
	}
	assert.False(t, answeredQuickly(t, n, nil, "web1"))
}

// The full start leaves no note when the next start would not be silent
// and lease-free: a configuration warning, an ownership lease.
func TestNoQuickNoteWhenTheFullStartHasMoreToSay(t *testing.T) {
	for name, extra := range map[string]string{
		"warning": "NULLFS_RO0T=/typo\n",
		"lease":   "LEASE_DIR=%s/leases\nNODE_NAME=a\n",
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t, "")
			if name == "lease" {
				raw, err := os.ReadFile(n.cfg)
				require.NoError(t, err)
				require.NoError(t, os.MkdirAll(filepath.Join(n.root, "leases"), 0o755))
				_, err = lease.InitDir(filepath.Join(n.root, "leases"), "a")
				require.NoError(t, err)
				testenv.WriteFile(t, n.cfg, string(raw)+strings.ReplaceAll(extra, "%s", n.root), 0o644)
				// What envctl jregister on this node leaves.
				_, err = (&lease.FileStore{Dir: filepath.Join(n.root, "leases")}).Acquire(context.Background(), "web1", "a")
				require.NoError(t, err)
			} else {
				raw, err := os.ReadFile(n.cfg)
				require.NoError(t, err)
				testenv.WriteFile(t, n.cfg, string(raw)+extra, 0o644)
			}
			n.create("web1")
			requireOK(t, n.start("web1"))
			requireOK(t, n.start("web1"))
			assert.NoFileExists(t, filepath.Join(n.root, "run", "web1.quick"))
			assert.False(t, answeredQuickly(t, n, nil, "web1"))
			requireOK(t, n.stop("web1"))
		})
	}
}

// withoutMountIDs drops the first mountinfo field: a mount made again gets a
// new ID.
func withoutMountIDs(lines []string) []string {
	var out []string
	for _, l := range lines {
		_, rest, _ := strings.Cut(l, " ")
		out = append(out, rest)
	}
	return out
}
