//go:build linux

package cbsd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/descriptor"
	"github.com/envhooks/envhooks/tests/cbsd/replay"
)

// TestJailMigration replays a migration A -> B -> A between nodes with
// different workdirs, in the order an operator runs it: cbsd jstop on A,
// envctl junregister on A, envctl jregister on B, cbsd jstart on B; for
// every lease driver, with and without CBSD_DELEGATE.
//
// With CBSD_DELEGATE=1, envctl runs cbsd junregister on A (CBSD dumps the
// jail from its database and forgets it) and cbsd jregister on B (CBSD
// reads it into its database and moves its localised copy into the system
// directory), so cbsd jstart works on B at once. With CBSD_DELEGATE=0 CBSD
// on B does not know the jail ("No such jail") until the operator runs
// cbsd jregister there; that is why the default is auto (1 wherever cbsd
// is installed).
func TestJailMigration(t *testing.T) {
	for _, driver := range []string{"file", "nfs", "etcd"} {
		for _, delegate := range []string{"0", "1"} {
			t.Run(driver+"-delegate"+delegate, func(t *testing.T) {
				c := newCluster(t, driver)
				a := c.node("a", "usr/jails", "CBSD_DELEGATE="+delegate)
				b := c.node("b", "cbsd/root", "CBSD_DELEGATE="+delegate)
				createJail(t, a, "web1", replay.JailOptions{})
				require.NoError(t, a.cbsd.JStart("web1"))
				writeIn(t, a.dir("jails-data", "web1-data", "root", "hello"), "written on a\n")
				require.NoError(t, a.cbsd.JStop("web1"))
				require.Equal(t, 0, a.poststop(t).Code)
				require.NoFileExists(t, c.shared("system", "web1", "locked"))

				migrate(t, a, b, "web1", delegate)
				assert.Equal(t, "written on a\n", read(t, b.dir("jails-data", "web1-data", "root", "hello")), "zero copy: b sees a's data")
				writeIn(t, b.dir("jails-data", "web1-data", "root", "hello"), "written on b\n")
				require.NoError(t, b.cbsd.JStop("web1"))
				require.Equal(t, 0, b.poststop(t).Code)

				migrate(t, b, a, "web1", delegate)
				assert.Equal(t, "written on b\n", read(t, a.dir("jails-data", "web1-data", "root", "hello")))
				require.NoError(t, a.cbsd.JStop("web1"))
				assert.Empty(t, a.mounts())
				assert.Empty(t, b.mounts())
			})
		}
	}
}

// migrate moves jname from one node to the other and starts it there.
func migrate(t *testing.T, from, to *node, jname, delegate string) {
	t.Helper()
	if delegate == "0" {
		// Without CBSD_DELEGATE the operator's own cbsd junregister
		// takes the jail out of CBSD's database (and leaves its dump in
		// jails-rcconf, which envctl uses when it has no record).
		require.NoError(t, from.cbsd.JUnregister(jname))
	}
	ok(t, from.envctl("junregister", jname))
	assert.Empty(t, from.mounts(), "junregister detached everything")
	portable := read(t, from.c.shared("system", jname, descriptor.FileName(jname)))
	assert.Contains(t, portable, `path="CBSDROOT/jails/`+jname+`"`, "the descriptor on the shared storage is portable")
	assert.NotContains(t, portable, from.workdir)
	fstab := read(t, from.c.shared("fstab", jname, "fstab"))
	assert.Contains(t, fstab, "CBSDROOT/jails-data/"+jname+"-data/etc /etc nullfs", "the jail's fstab travels portable, as cbsd junregister leaves it")
	assert.NotContains(t, fstab, from.workdir)

	ok(t, to.envctl("jregister", jname))
	after := read(t, to.c.shared("system", jname, descriptor.FileName(jname)))
	assert.Contains(t, after, "CBSDROOT", "the portable copy survives cbsd jregister's rewrite")
	assert.NotContains(t, after, to.workdir)
	err := to.cbsd.JStart(jname)
	if delegate == "0" {
		require.Error(t, err)
		assert.Contains(t, err.Error(), "No such jail", "CBSD on the new node does not know the jail")
		require.NoError(t, to.cbsd.JRegister(jname, to.dir("jails-system", jname, descriptor.FileName(jname))), "the operator's cbsd jregister")
		err = to.cbsd.JStart(jname)
	}
	require.NoError(t, err, "jstart on the new node")
	assert.Equal(t, to.name+"\n", read(t, to.c.shared("system", jname, "locked")))
	assert.Contains(t, to.mounts(), "jails/"+jname+"/etc")
	// mountfstab put the new node's workdir into the fstab: the jail's
	// etc is the new node's view of the data, not the old node's path.
	assert.Contains(t, read(t, to.c.shared("fstab", jname, "fstab")), to.workdir+"/jails-data/"+jname+"-data/etc /etc")
}

func writeIn(t *testing.T, p, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

// TestStaleLockFromTheOldNode is issue 12's second failure, replayed:
// jstop removes jails-system/<j>/locked only after its poststop scripts ran
// (sudoexec/jstop), so unless the script clears it the shared copy keeps
// the old node's name and the new node's jstart refuses for 30 minutes
// (sudoexec/jstart, "Check for shared lock"). A lock of a node that is not
// this one is left alone; CBSD's own check then refuses.
func TestStaleLockFromTheOldNode(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails", "CBSD_DELEGATE=0")
	b := c.node("b", "jails", "CBSD_DELEGATE=0")
	createJail(t, a, "web1", replay.JailOptions{})
	require.NoError(t, a.cbsd.JStart("web1"))
	require.NoError(t, a.cbsd.JStop("web1"))
	require.Equal(t, 0, a.poststop(t).Code)
	assert.NoFileExists(t, c.shared("system", "web1", "locked"), "mnt-stop removed a's lock before detaching")

	// Another node's lock (a split brain an operator must look at) is
	// not envhooks' to remove.
	require.NoError(t, a.cbsd.JStart("web1"))
	writeIn(t, a.dir("jails-system", "web1", "locked"), "c\n")
	require.NoError(t, a.cbsd.JStop("web1"))
	run := a.poststop(t)
	require.Equal(t, 0, run.Code)
	assert.Contains(t, run.Output, "names c, not this node")
	assert.Equal(t, "c\n", read(t, c.shared("system", "web1", "locked")))
	require.NoError(t, a.cbsd.JUnregister("web1"))
	ok(t, a.envctl("junregister", "web1"))
	assert.Equal(t, "c\n", read(t, c.shared("system", "web1", "locked")), "junregister leaves it too")
	ok(t, b.envctl("jregister", "web1"))
	require.NoError(t, b.cbsd.JRegister("web1", b.dir("jails-system", "web1", descriptor.FileName("web1"))))
	err := b.cbsd.JStart("web1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "locked by c node", "CBSD's own guard")
}

// TestMigrationCrashBetweenSteps kills envctl junregister after each of
// its steps (ENVHOOKS_CRASH_AFTER) and checks that running it again
// finishes the job and the new node starts the jail.
func TestMigrationCrashBetweenSteps(t *testing.T) {
	for _, step := range []string{"unregister:descriptor", "unregister:detach", "unregister:record"} {
		t.Run(strings.ReplaceAll(step, ":", "-"), func(t *testing.T) {
			c := newCluster(t, "file")
			a := c.node("a", "usr/jails", "CBSD_DELEGATE=1")
			b := c.node("b", "jails", "CBSD_DELEGATE=1")
			createJail(t, a, "web1", replay.JailOptions{})
			require.NoError(t, a.cbsd.JStart("web1"))
			require.NoError(t, a.cbsd.JStop("web1"))
			r := a.envctlEnv([]string{"ENVHOOKS_CRASH_AFTER=" + step}, "junregister", "web1")
			require.NotEqual(t, 0, r.Code, "killed after %s", step)
			r = b.envctl("jregister", "web1")
			assert.Equal(t, 77, r.Code, "a still owns it: %s", r.Stderr)
			ok(t, a.envctl("junregister", "web1"))
			ok(t, b.envctl("jregister", "web1"))
			require.NoError(t, b.cbsd.JStart("web1"))
			require.NoError(t, b.cbsd.JStop("web1"))
		})
	}
}

// TestRegisterCrashAfterCBSD kills envctl jregister right after cbsd
// jregister moved its copy, rewritten for this node, over the portable one
// in the system directory: the next run finds only that copy, makes it
// portable again, and the shared storage ends up with CBSDROOT in it.
func TestRegisterCrashAfterCBSD(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails", "CBSD_DELEGATE=1")
	b := c.node("b", "jails", "CBSD_DELEGATE=1")
	createJail(t, a, "web1", replay.JailOptions{})
	ok(t, a.envctl("junregister", "web1"))
	r := b.envctlEnv([]string{"ENVHOOKS_CRASH_AFTER=register:cbsd"}, "jregister", "web1")
	require.NotEqual(t, 0, r.Code)
	assert.NotContains(t, read(t, c.shared("system", "web1", descriptor.FileName("web1"))), "CBSDROOT", "cbsd jregister left its own copy")
	ok(t, b.envctl("jregister", "web1"))
	shared := read(t, c.shared("system", "web1", descriptor.FileName("web1")))
	assert.Contains(t, shared, `path="CBSDROOT/jails/web1"`)
	assert.NotContains(t, shared, b.workdir)
	require.NoError(t, b.cbsd.JStart("web1"))
	require.NoError(t, b.cbsd.JStop("web1"))
}

// TestPrefersThePortableCopy: of the descriptor in the system directory
// and the one in jails-rcconf, jregister takes the one with CBSDROOT in it
// (the other may be a copy CBSD's jregister rewrote for some node's
// workdir), and warns when neither has it.
func TestPrefersThePortableCopy(t *testing.T) {
	c := newCluster(t, "file")
	a := c.node("a", "usr/jails", "CBSD_DELEGATE=0")
	b := c.node("b", "jails", "CBSD_DELEGATE=0")
	createJail(t, a, "web1", replay.JailOptions{})
	require.NoError(t, a.cbsd.JUnregister("web1"))
	ok(t, a.envctl("junregister", "web1"))
	portable := read(t, c.shared("system", "web1", descriptor.FileName("web1")))
	elsewhere := strings.ReplaceAll(portable, "CBSDROOT", "/srv/node-c")
	writeIn(t, c.shared("system", "web1", descriptor.FileName("web1")), elsewhere)
	writeIn(t, b.dir("jails-rcconf", descriptor.FileName("web1")), portable)
	r := b.envctl("jregister", "web1")
	ok(t, r)
	assert.NotContains(t, r.Stderr, "warning")
	assert.Equal(t, portable, read(t, c.shared("system", "web1", descriptor.FileName("web1"))), "the portable copy is the one kept")
	raw, err := os.ReadFile(filepath.Join(b.home, "inventory", "web1.json"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), b.workdir+"/jails/web1")

	ok(t, b.envctl("junregister", "web1"))
	writeIn(t, c.shared("system", "web1", descriptor.FileName("web1")), elsewhere)
	require.NoError(t, os.Remove(a.dir("jails-rcconf", descriptor.FileName("web1"))), "the portable dump a's cbsd junregister left")
	r = a.envctl("jregister", "web1")
	ok(t, r)
	assert.Contains(t, r.Stderr, "has no CBSDROOT in it")
}
