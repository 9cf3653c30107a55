//go:build linux

package kernel_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/kernel/lab"
	"github.com/envhooks/envhooks/tests/kernel/lab/proto"
)

// A descriptor as CBSD's jexport writes it, the workdir as CBSDROOT.
const descriptor = `jname="%[1]s";
path="CBSDROOT/jails/%[1]s";
data="CBSDROOT/jails-data/%[1]s-data";
host_hostname="%[1]s.example.org";
emulator="jail";
`

// TestTwoNodes: two guests are two nodes sharing one ganesha, with NFS
// leases. A migration A -> B moves no data; A is then refused; A takes the
// environment back and is powered off (its qemu killed) while it holds the
// lease, and B takes over only once A's heartbeat is LEASE_TTL old.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	s := useServer(t)
	root := filepath.Join(s.Export, "nodes")
	for _, d := range []string{"leases", "data/web1", "system/web1", "fstab/web1", "rcconf/web1"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	const ttl = 6 * time.Second
	conf := []string{
		"NFS_SERVER=" + lab.HostAddr,
		"NFS_SERVER_ROOT_DIR=" + root,
		`MOUNT_NFS_OPT="-orw -overs=4 -ohard -oproto=tcp -otimeout=300"`,
		"LEASE_BACKEND=nfs",
		"LEASE_DIR=" + filepath.Join(root, "leases"),
		fmt.Sprintf("LEASE_TTL=%d", int(ttl.Seconds())),
		"WORKDIR=" + workdir,
		"SYSLOG=0",
	}
	ns := bootNodes(t, lab.Config{Name: "node-a", Forward: nfsPorts, Modules: []string{"nfsv4"}},
		lab.Config{Name: "node-b", Forward: nfsPorts, Modules: []string{"nfsv4"}})
	a, b := ns[0], ns[1]
	a.configure(conf...)
	b.configure(conf...)
	// jcreate left the descriptor where cbsd junregister leaves it.
	a.WriteFile(t, workdir+"/jails-rcconf/rc.conf_web1", []byte(fmt.Sprintf(descriptor, "web1")), 0o644)

	r := a.envctl(nil, "jregister", "web1")
	require.Equal(t, 0, r.Code, "A: jregister: %s", r.Stderr)
	require.Len(t, a.mounts("nfs4", "web1"), 3)
	a.Sh(t, "echo from-node-a > "+dataDir("web1")+"/hello")

	r = a.envctl(nil, "junregister", "web1")
	require.Equal(t, 0, r.Code, "A: junregister: %s", r.Stderr)
	assert.Empty(t, a.mounts("nfs4", "web1"))

	r = b.envctl(nil, "jregister", "web1")
	require.Equal(t, 0, r.Code, "B: jregister: %s", r.Stderr)
	assert.Equal(t, "from-node-a\n", b.Sh(t, "cat "+dataDir("web1")+"/hello"), "B sees A's data over its own mount")

	r = a.envctl(nil, "jregister", "web1")
	assert.Equal(t, 77, r.Code, "A while B owns it: %s", r.Stderr)
	assert.Contains(t, oneLine(t, r), "node-b")
	assert.Empty(t, a.mounts("nfs4", "web1"), "the refused node mounted nothing")

	r = b.envctl(nil, "junregister", "web1")
	require.Equal(t, 0, r.Code, "B: junregister: %s", r.Stderr)
	r = a.envctl(nil, "jregister", "web1")
	require.Equal(t, 0, r.Code, "A: jregister again: %s", r.Stderr)
	hb := a.Start(t, proto.Command{Argv: []string{"envctl", "-c", a.conf, "heartbeat"}})
	require.Eventually(t, func() bool {
		r := b.envctl(nil, "lease", "list")
		return r.Code == 0 && strings.Contains(string(r.Stdout), "alive")
	}, 30*time.Second, 500*time.Millisecond, "A's heartbeat never showed")
	if _, ended := hb.Wait(t, 0); ended {
		t.Fatal("envctl heartbeat ended")
	}

	a.Kill(t) // the power goes: A still holds the lease and its mounts
	killed := time.Now()
	r = b.envctl(nil, "jregister", "web1", "--takeover")
	assert.Equal(t, 77, r.Code, "B at once: %s", r.Stderr)
	for {
		r = b.envctl(nil, "jregister", "web1", "--takeover")
		if r.Code == 0 {
			break
		}
		require.Equal(t, 77, r.Code, "B: jregister --takeover: %s", r.Stderr)
		require.Less(t, time.Since(killed), ttl+time.Minute, "the takeover never became possible")
		time.Sleep(time.Second)
	}
	took := time.Since(killed)
	// The last beat came at most LEASE_TTL/3 before the kill.
	assert.Greater(t, took, ttl-ttl/3, "taken over before the TTL")
	t.Logf("B took over %s after A died (LEASE_TTL %s)", took.Round(time.Millisecond), ttl)
	assert.Len(t, b.mounts("nfs4", "web1"), 3)
	assert.Equal(t, "from-node-a\n", b.Sh(t, "cat "+dataDir("web1")+"/hello"))
	r = b.envctl(nil, "junregister", "web1")
	require.Equal(t, 0, r.Code, "B: junregister: %s", r.Stderr)
}
