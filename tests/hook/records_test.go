package hook

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
	"github.com/envhooks/envhooks/tests/testenv"
)

func (n *node) recordPath(jname string) string { return state.Store{Dir: n.state}.Path(jname) }

// The state record lost while everything is attached: the quick check does
// not vouch for it (the note covers the record), the full start records
// what it finds again, and a stop without any record still detaches what
// the plan attaches. Before, mnt-start answered 0 from its note and
// mnt-stop then answered 0 with three mounts left.
func TestLostStateRecord(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	requireOK(t, n.start("web1"))
	assert.True(t, answeredQuickly(t, n, nil, "web1"))
	require.NoError(t, os.Remove(n.recordPath("web1")))
	assert.False(t, answeredQuickly(t, n, nil, "web1"), "the quick check must not answer for a lost record")
	requireOK(t, n.start("web1"))
	assert.FileExists(t, n.recordPath("web1"), "the full start records what it found")
	assert.Len(t, n.mounts(), 3)

	require.NoError(t, os.Remove(n.recordPath("web1")))
	r := n.stop("web1")
	requireOK(t, r)
	assert.Empty(t, n.mounts(), "the stop found the plan's mounts without a record")
	assert.Contains(t, r.Stderr, "no record named it")

	// mnt-stop -j alone (no directory flags): the directories are CBSD's
	// under WORKDIR.
	requireOK(t, n.start("web1"))
	require.NoError(t, os.Remove(n.recordPath("web1")))
	requireOK(t, testenv.Run(t, []string{n.runDirEnv()}, testenv.Bin(t, "mnt-stop"), "-c", n.cfg, "-j", "web1"))
	assert.Empty(t, n.mounts())
}

// A damaged state record: the full start and the stop name it with 65; the
// stop still detaches what the plan attaches. Before, the quick path
// answered 0 and the full start 73.
func TestDamagedStateRecord(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	requireOK(t, n.start("web1"))
	raw, err := os.ReadFile(n.recordPath("web1"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(n.recordPath("web1"), raw[:len(raw)/2], 0o600))

	r := n.start("web1")
	assert.Equal(t, sysexits.DataErr, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "state record "+n.recordPath("web1")+" is damaged")
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %s", r.Stderr)

	r = n.stop("web1")
	assert.Equal(t, sysexits.DataErr, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, n.recordPath("web1"))
	assert.Empty(t, n.mounts(), "what the plan attaches is detached all the same")
	require.NoError(t, os.Remove(n.recordPath("web1")))
	requireOK(t, n.stop("web1"))
}

// Something the plan does not attach, mounted in the environment's
// directories with no record: the stop fails and names it.
func TestStopNamesWhatItCannotUndo(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	other := filepath.Join(n.root, "other")
	require.NoError(t, os.MkdirAll(other, 0o755))
	data := environment.CBSDDirs(n.workdir, "web1")["data"]
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, exec.Command("mount", "--bind", other, data).Run())
	r := n.stop("web1")
	assert.Equal(t, sysexits.CantCreat, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "on "+data)
	assert.Contains(t, r.Stderr, "unmount it by hand")
	assert.Len(t, n.mounts(), 1, "not ours: left alone")
}

// A record written by envhooks 0.1 (its line format, captured from its
// mnt-start) with its mounts attached: after the upgrade, the quick check
// does not trust 0.1's note, the full start reads the record, and the stop
// undoes it. Nothing attached before the upgrade is lost.
func TestUpgradeWithEnvironmentsAttached(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	d := environment.CBSDDirs(n.workdir, "web1")
	for _, role := range []string{"data", "system", "fstab"} {
		require.NoError(t, os.MkdirAll(d[environment.Role(role)], 0o755))
		require.NoError(t, exec.Command("mount", "--bind", filepath.Join(n.dfs, role, "web1"), d[environment.Role(role)]).Run())
	}
	for from, to := range map[string]string{
		"testdata/written-by-0.1.state": n.recordPath("web1"),
		"testdata/written-by-0.1.quick": filepath.Join(n.root, "run", "web1.quick"),
	} {
		raw, err := os.ReadFile(from)
		require.NoError(t, err)
		old := strings.NewReplacer("@DFS@", n.dfs, "@WORKDIR@", n.workdir).Replace(string(raw))
		testenv.WriteFile(t, to, old, 0o600)
	}
	assert.False(t, answeredQuickly(t, n, nil, "web1"), "0.1's note vouches for nothing")
	r := n.start("web1")
	requireOK(t, r)
	assert.Len(t, n.mounts(), 3, "the same three mounts, nothing stacked")
	assert.Empty(t, r.Stderr)
	requireOK(t, n.stop("web1"))
	assert.Empty(t, n.mounts())

	// And straight to a stop, without a start in between.
	for _, role := range []string{"data", "system", "fstab"} {
		require.NoError(t, exec.Command("mount", "--bind", filepath.Join(n.dfs, role, "web1"), d[environment.Role(role)]).Run())
	}
	raw, err := os.ReadFile("testdata/written-by-0.1.state")
	require.NoError(t, err)
	testenv.WriteFile(t, n.recordPath("web1"), strings.NewReplacer("@DFS@", n.dfs, "@WORKDIR@", n.workdir).Replace(string(raw)), 0o600)
	r = n.stop("web1")
	requireOK(t, r)
	assert.Empty(t, n.mounts())
	assert.NotContains(t, r.Stderr, "no record named it", "the 0.1 record named everything")
}
