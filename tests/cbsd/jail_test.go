//go:build linux

package cbsd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/cbsd/replay"
)

// createJail is how a jail comes to be under leases: the lease first
// (envctl lease acquire), because CBSD's jcreate runs mnt_start before the
// jail exists (sudoexec/jcreate), then jcreate, then the poststop script.
func createJail(t *testing.T, n *node, jname string, o replay.JailOptions) {
	t.Helper()
	n.c.provision(jname)
	ok(t, n.envctl("lease", "acquire", "jname="+jname))
	o.MntStart = n.mntStart
	require.NoError(t, n.cbsd.JCreate(jname, o))
	ok(t, n.envctl("install-hook", "jname="+jname))
	require.FileExists(t, n.c.shared("system", jname, "master_poststop.d", "envhooks-mnt-stop"), "the script lives on the shared storage")
	require.FileExists(t, n.c.shared("data", jname, "etc", "rc.conf"), "jcreate wrote into the shared storage")
	r := n.envctl("--json", "status", jname)
	ok(t, r)
	require.Contains(t, r.Stdout, "envctl lease acquire", "status names the create flow too")
}

// TestJailLifecycle replays jcreate -> jstart -> jstop -> jstart -> jstop
// with CBSD's defaults (baserw=0: nullfs mounts of ${data}/etc ... on the
// jail root) and with baserw=1 (the jail root is the data directory, and
// /usr/ports is mounted inside it): every jstop leaves nothing mounted,
// and the shared system directory keeps no lock naming this node.
func TestJailLifecycle(t *testing.T) {
	for _, baserw := range []bool{false, true} {
		t.Run(map[bool]string{false: "baserw0", true: "baserw1"}[baserw], func(t *testing.T) {
			c := newCluster(t, "file")
			a := c.node("a", "usr/jails")
			createJail(t, a, "web1", replay.JailOptions{BaseRW: baserw, MountPorts: true})
			for round := 1; round <= 2; round++ {
				require.NoError(t, a.cbsd.JStart("web1"), "jstart, round %d", round)
				require.True(t, a.cbsd.Running("web1"))
				assert.Equal(t, "a\n", read(t, c.shared("system", "web1", "locked")), "jstart's shared lock")
				if baserw {
					assert.Contains(t, a.mounts(), "jails-data/web1-data/usr/ports", "mount_ports inside the data directory")
				} else {
					assert.Contains(t, a.mounts(), "jails/web1/etc", "the fstab's nullfs mount of ${data}/etc")
				}
				require.NoError(t, a.cbsd.JStop("web1"), "jstop, round %d", round)
				run := a.poststop(t)
				assert.Equal(t, 0, run.Code, "mnt-stop from the poststop script: %s", run.Output)
				assert.Empty(t, a.mounts(), "round %d: jstop left mounts", round)
				assert.NoFileExists(t, c.shared("system", "web1", "locked"), "the lock naming a left with the system directory")
			}
			assert.FileExists(t, c.shared("data", "web1", "etc", "rc.conf"), "the data stayed on the shared storage")
		})
	}
}

// TestJCreateNeedsTheLease: with leases on, jcreate's mnt_start attaches
// only what this node owns, so jcreate without envctl lease acquire fails
// and leaves nothing mounted.
func TestJCreateNeedsTheLease(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails")
	err := a.cbsd.JCreate("web1", replay.JailOptions{MntStart: a.mntStart})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "mnt_start script failed")
	assert.Empty(t, a.mounts())
	b := c.node("b", "jails")
	ok(t, b.envctl("lease", "acquire", "jname=web1"))
	r := a.envctl("lease", "acquire", "jname=web1")
	assert.Equal(t, 77, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "owned by node b")
}

// TestInstallHookNeedsTheSystemDirectory: a script written while the
// system directory is not attached would land in the node-local mount
// point, and the next mnt-start would refuse to mount over it (73).
func TestInstallHookNeedsTheSystemDirectory(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails")
	ok(t, a.envctl("lease", "acquire", "jname=web1"))
	r := a.envctl("install-hook", "jname=web1")
	assert.Equal(t, 69, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "is not attached")
	assert.NoDirExists(t, a.dir("jails-system", "web1", "master_poststop.d"), "nothing written on the node's own disk")
	c.provision("web1")
	require.NoError(t, a.cbsd.JCreate("web1", replay.JailOptions{MntStart: a.mntStart}))
	ok(t, a.envctl("install-hook", "jname=web1"))
	assert.FileExists(t, c.shared("system", "web1", "master_poststop.d", "envhooks-mnt-stop"))
}

// TestJailStopWithTheDataBusy injects a process that keeps the data
// directory busy across jstop: the poststop script fails with 75 naming it
// (CBSD goes on, as it ignores the script's exit), the storage stays
// attached, and once the process is gone jstart works again.
func TestJailStopWithTheDataBusy(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails")
	createJail(t, a, "web1", replay.JailOptions{})
	require.NoError(t, a.cbsd.JStart("web1"))
	holder := holdDir(t, a.dir("jails-data", "web1-data", "tmp"))
	require.NoError(t, a.cbsd.JStop("web1"))
	run := a.poststop(t)
	assert.Equal(t, 75, run.Code, run.Output)
	assert.Contains(t, run.Output, "busy")
	assert.Contains(t, a.mounts(), "jails-data/web1-data", "a busy data directory stays attached")
	holder()
	require.NoError(t, a.cbsd.JStart("web1"))
	require.NoError(t, a.cbsd.JStop("web1"))
	assert.Equal(t, 0, a.poststop(t).Code)
	assert.Empty(t, a.mounts())
}

// TestJStartOnTheWrongNode: a jstart on a node that does not own the jail
// fails in mnt_start (77) before anything is mounted there.
func TestJStartOnTheWrongNode(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails")
	b := c.node("b", "jails", "CBSD_DELEGATE=1")
	createJail(t, a, "web1", replay.JailOptions{})
	require.NoError(t, a.cbsd.JStart("web1"))
	// An operator copies CBSD's registration to b by hand.
	raw, err := os.ReadFile(filepath.Join(a.workdir, "var", "db", "jails", "web1"))
	require.NoError(t, err)
	local := strings.ReplaceAll(string(raw), a.workdir, b.workdir)
	require.NoError(t, os.WriteFile(filepath.Join(b.workdir, "var", "db", "jails", "web1"), []byte(local), 0o644))
	err = b.cbsd.JStart("web1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "mnt_start script failed")
	assert.Contains(t, err.Error(), "owned by node a")
	assert.Empty(t, b.mounts())
	assert.True(t, a.cbsd.Running("web1"))
}

// holdDir starts a process whose working directory is dir and returns
// what ends it.
func holdDir(t *testing.T, dir string) func() {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{Dir: dir})
	require.NoError(t, err)
	done := false
	stop := func() {
		if !done {
			done = true
			p.Kill()
			p.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}
