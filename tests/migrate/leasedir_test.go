//go:build linux || freebsd

package migrate

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// onRootFS returns a new directory on the root filesystem, where a node
// keeps its local disk: a lease directory there is what an unmounted
// share leaves.
func onRootFS(t *testing.T) string {
	var root syscall.Stat_t
	require.NoError(t, syscall.Stat("/", &root))
	for _, parent := range []string{os.TempDir(), "/var/tmp", "/root", "/"} {
		var st syscall.Stat_t
		if syscall.Stat(parent, &st) != nil || st.Dev != root.Dev {
			continue
		}
		dir, err := os.MkdirTemp(parent, "envhooks-local-")
		if err != nil {
			continue
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	t.Fatal("no writable directory on the root filesystem")
	return ""
}

// The shared storage is not mounted on either node: each sees its own
// local directory where the share should be (a bind mount of a directory
// on its root filesystem, as an empty mount point is), with a copy of the
// environment's folders. Before, each node created LEASE_DIR there, took
// the lease and attached: two owners of one environment. Now both refuse
// with 69, name LEASE_DIR, and attach nothing; once the share is back (and
// marked by envctl lease init), a node takes it normally.
func TestMissingSharedStorageIsRefused(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", ""), c.node("b", "")
	c.create(a, "web1", jailDescriptor)
	raw, err := os.ReadFile(filepath.Join(a.workdir, "jails-rcconf", "rc.conf_web1"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(b.workdir, "jails-rcconf", "rc.conf_web1"), raw, 0o644))
	for i, n := range []*node{a, b} {
		local := onRootFS(t)
		for _, role := range []string{"data", "system", "fstab", "rcconf"} {
			require.NoError(t, os.MkdirAll(filepath.Join(local, role, "web1"), 0o755))
		}
		if i == 1 {
			// b's local disk even has an (empty) leases directory.
			require.NoError(t, os.MkdirAll(filepath.Join(local, "leases"), 0o755))
		}
		ok(t, n.in(nil, "mount", "--bind", local, c.dfs))
	}
	for _, n := range []*node{a, b} {
		r := n.envctl("jregister", "web1")
		assert.Equal(t, sysexits.Unavailable, r.Code, "%s: %s", n.name, r.Stderr)
		assert.Contains(t, r.Stderr, "LEASE_DIR "+c.dfs+"/leases")
		assert.Empty(t, n.mounts(), "%s attached nothing", n.name)
		// Nor is a lease taken for a new environment (before cbsd jcreate).
		r = n.envctl("lease", "acquire", "jname=web2")
		assert.Equal(t, sysexits.Unavailable, r.Code, "%s: %s", n.name, r.Stderr)
		assert.Contains(t, r.Stderr, "LEASE_DIR "+c.dfs+"/leases")
	}
	for _, j := range []string{"web1", "web2"} {
		_, err = os.Stat(filepath.Join(c.dfs, "leases", j+".lease"))
		assert.True(t, os.IsNotExist(err), "no lease of %s was taken on the share either", j)
	}

	// The share back on a: the lease is taken there, and b is refused by
	// it, not by its own local disk.
	ok(t, a.in(nil, "umount", c.dfs))
	ok(t, a.envctl("jregister", "web1"))
	r := b.envctl("jregister", "web1")
	assert.Equal(t, sysexits.Unavailable, r.Code, "b still does not see the share: %s", r.Stderr)
	ok(t, b.in(nil, "umount", c.dfs))
	r = b.envctl("jregister", "web1")
	assert.Equal(t, sysexits.NoPerm, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "owned by node a")
}

// envctl lease init marks an existing lease directory once; it creates
// none.
func TestLeaseInit(t *testing.T) {
	c := newCluster(t)
	leases := onRootFS(t)
	a := c.node("a", "LEASE_DIR="+leases+"\n")
	marker := filepath.Join(leases, ".envhooks-lease-dir")
	r := a.envctl("lease", "list")
	assert.Equal(t, sysexits.Unavailable, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "run envctl lease init once")
	ok(t, a.envctl("lease", "init"))
	assert.FileExists(t, marker)
	ok(t, a.envctl("lease", "list"))
	r = a.envctl("lease", "init")
	ok(t, r)
	assert.Contains(t, r.Stderr, "already")

	require.NoError(t, os.RemoveAll(leases))
	r = a.envctl("lease", "init")
	assert.Equal(t, sysexits.Unavailable, r.Code, r.Stderr)
	assert.NoDirExists(t, leases)
}
