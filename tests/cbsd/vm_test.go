//go:build linux

package cbsd_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// createVM: the lease, then bcreate (its mnt_start runs before the VM
// exists, without -f: sudoexec/bcreate), then the poststop script for a VM.
func createVM(t *testing.T, n *node, jname string) {
	t.Helper()
	n.c.provision(jname)
	ok(t, n.envctl("lease", "acquire", "jname="+jname))
	require.NoError(t, n.cbsd.BCreate(jname, n.mntStart))
	ok(t, n.envctl("install-hook", "jname="+jname, "kind=vm"))
	assert.Contains(t, read(t, n.c.shared("system", jname, "master_poststop.d", "envhooks-mnt-stop")), "\nkind=vm\n")
}

// TestVMLifecycle replays bcreate -> bstart -> bstop -> bstart -> bstop:
// bstart reads jails-system/<vm>/local.sqlite (rcconf.subr,
// init_bhyve_rcconf) before it runs mnt_start, and bstop writes and reads
// it around its poststop scripts (sudoexec/bstop), so a VM's storage stays
// attached across bstop; envctl bunregister detaches it when the VM moves.
func TestVMLifecycle(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails", "CBSD_DELEGATE=1")
	b := c.node("b", "cbsd", "CBSD_DELEGATE=1")
	createVM(t, a, "vm1")
	for round := 1; round <= 2; round++ {
		require.NoError(t, a.cbsd.BStart("vm1"), "bstart, round %d", round)
		require.NoError(t, a.cbsd.BStop("vm1"), "bstop, round %d", round)
		run := a.poststop(t)
		assert.Equal(t, 0, run.Code, run.Output)
		assert.Contains(t, run.Output, "stays attached")
		assert.FileExists(t, a.dir("jails-system", "vm1", "local.sqlite"), "round %d: the system directory stays attached", round)
	}
	ok(t, a.envctl("bunregister", "vm1"))
	assert.Empty(t, a.mounts())
	assert.Contains(t, read(t, c.shared("system", "vm1", "rc.conf_vm1")), `emulator="bhyve"`)
	ok(t, b.envctl("bregister", "vm1"))
	require.NoError(t, b.cbsd.BStart("vm1"))
	require.NoError(t, b.cbsd.BStop("vm1"))
	assert.Equal(t, 0, b.poststop(t).Code)
	require.NoError(t, b.cbsd.BStart("vm1"), "bstart again on the new node")
}

// TestVMWithAJailScript shows what the VM's own script prevents: a
// jail's script detaches the system directory at bstop, and the next
// bstart cannot read the VM's settings.
func TestVMWithAJailScript(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails")
	createVM(t, a, "vm1")
	ok(t, a.envctl("install-hook", "jname=vm1", "kind=jail"))
	require.NoError(t, a.cbsd.BStart("vm1"))
	err := a.cbsd.BStop("vm1")
	require.Error(t, err, "bstop reads local.sqlite after its poststop scripts")
	assert.Equal(t, 0, a.poststop(t).Code)
	err = a.cbsd.BStart("vm1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Unable to fetch vm data from: "+filepath.Join(a.workdir, "jails-system", "vm1", "local.sqlite"))
}

// TestInstallHookTellsAVMFromItsRecord: for a VM registered with envctl,
// install-hook needs no kind=.
func TestInstallHookTellsAVMFromItsRecord(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails", "CBSD_DELEGATE=1")
	b := c.node("b", "jails", "CBSD_DELEGATE=1")
	createVM(t, a, "vm1")
	ok(t, a.envctl("bunregister", "vm1"))
	ok(t, b.envctl("bregister", "vm1"))
	ok(t, b.envctl("install-hook", "jname=vm1"))
	assert.Contains(t, read(t, c.shared("system", "vm1", "master_poststop.d", "envhooks-mnt-stop")), "\nkind=vm\n")
	before := b.mounts()
	r := b.envctl("jregister", "vm1")
	assert.Equal(t, 65, r.Code, "a VM is not registered as a jail: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "use bregister")
	assert.Equal(t, before, b.mounts(), "nothing attached for the refused command")
}
