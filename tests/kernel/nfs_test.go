//go:build linux

package kernel_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/kernel/lab"
	"github.com/envhooks/envhooks/tests/kernel/lab/proto"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testenv"
)

// TestNFS boots one guest and runs the NFS scenarios in it, one after the
// other: CBSD's sample config over NFSv4, an LXC host's NFSv3 config, a
// busy unmount, and a frozen server.
func TestNFS(t *testing.T) {
	t.Parallel()
	s := useServer(t)
	n := bootNode(t, lab.Config{Name: "nfs-node", Forward: nfsPorts, Modules: []string{"nfsv3", "nfsv4"}})
	t.Run("v4 with CBSD's sample config", func(t *testing.T) { testCBSDSample(t, n.in(t), s) })
	t.Run("v3 with the LXC example", func(t *testing.T) { testV3(t, n.in(t), s) })
	t.Run("busy unmount", func(t *testing.T) { testBusy(t, n.in(t), s) })
	t.Run("frozen server", func(t *testing.T) { testFrozen(t, n.in(t), s) })
}

// in returns the node for use by subtest t.
func (n *node) in(t *testing.T) *node {
	c := *n
	c.t = t
	return &c
}

// sampleConf is examples/nfs/env_start_nfs.conf, CBSD's sample config,
// with only the server and its root changed to this lab's.
func sampleConf(t *testing.T, root string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "nfs", "env_start_nfs.conf"))
	require.NoError(t, err)
	conf := string(raw)
	for old, repl := range map[string]string{`NFS_SERVER="172.16.0.1"`: `NFS_SERVER="` + lab.HostAddr + `"`, `NFS_SERVER_ROOT_DIR="/nfs"`: `NFS_SERVER_ROOT_DIR="` + root + `"`} {
		require.Contains(t, conf, old)
		conf = strings.Replace(conf, old, repl, 1)
	}
	return conf
}

// testCBSDSample replays a jail's life under CBSD with the sample config
// where CBSD keeps it (/root/etc/env_start_nfs.conf): envctl provision,
// jcreate (mnt_start), envctl install-hook, jstart (mnt_start again: no
// change), a write the server sees, jstop (master_poststop.d), jstart,
// jstop.
func testCBSDSample(t *testing.T, n *node, s *ganesha.Server) {
	root := filepath.Join(s.Export, "cbsd")
	require.NoError(t, os.MkdirAll(root, 0o755))
	n.configure("SYSLOG=0")
	n.WriteFile(t, "/root/etc/env_start_nfs.conf", []byte(sampleConf(t, root)), 0o644)
	defer n.Sh(t, "rm /root/etc/env_start_nfs.conf")

	r := n.envctl(nil, "provision", "jname=web1")
	require.Equal(t, 0, r.Code, "envctl provision: %s", r.Stderr)
	for _, role := range []string{"data", "system", "fstab", "rcconf"} {
		assert.DirExists(t, filepath.Join(root, role, "web1"))
	}

	want := []string{
		fmt.Sprintf("%s:%s/data/web1 %s", lab.HostAddr, root, dataDir("web1")),
		fmt.Sprintf("%s:%s/fstab/web1 %s/jails-fstab/web1", lab.HostAddr, root, workdir),
		fmt.Sprintf("%s:%s/system/web1 %s/jails-system/web1", lab.HostAddr, root, workdir),
	}
	r = n.mntStart("web1")
	require.Equal(t, 0, r.Code, "jcreate's mnt-start: %s", r.Stderr)
	require.Equal(t, want, n.mounts("nfs4", "web1"))

	r = n.envctl(nil, "install-hook", "jname=web1")
	require.Equal(t, 0, r.Code, "envctl install-hook: %s", r.Stderr)
	assert.FileExists(t, filepath.Join(root, "system", "web1", "master_poststop.d", "envhooks-mnt-stop"), "the hook lives on the shared system directory")

	r = n.mntStart("web1")
	require.Equal(t, 0, r.Code, "jstart's mnt-start: %s", r.Stderr)
	assert.Equal(t, want, n.mounts("nfs4", "web1"), "a second start changes nothing")

	n.Sh(t, "echo written-in-the-jail > "+dataDir("web1")+"/hello")
	got, err := os.ReadFile(filepath.Join(root, "data", "web1", "hello"))
	require.NoError(t, err, "the server has the file the jail wrote")
	assert.Equal(t, "written-in-the-jail\n", string(got))

	r = n.poststop("web1")
	require.Equal(t, 0, r.Code, "jstop's master_poststop.d: %s", r.Stderr)
	assert.Empty(t, n.mounts("nfs4", "web1"))

	r = n.mntStart("web1")
	require.Equal(t, 0, r.Code, "jstart's mnt-start: %s", r.Stderr)
	assert.Equal(t, want, n.mounts("nfs4", "web1"))
	assert.Equal(t, "written-in-the-jail\n", n.Sh(t, "cat "+dataDir("web1")+"/hello"))
	r = n.poststop("web1")
	require.Equal(t, 0, r.Code, "jstop's master_poststop.d: %s", r.Stderr)
	assert.Empty(t, n.mounts("nfs4", "web1"))
}

// testV3 runs examples/nfs/linux-nfsv3.conf (data on its own export,
// provisioning on) with the server changed to the lab's and two words
// added that the guest needs: no rpc.statd runs in it (nolockd), and qemu
// forwards TCP only (mountproto=tcp). A start makes three NFSv3 mounts
// from one guest, the case that hung behind a forwarder that pours every
// connection into one.
func testV3(t *testing.T, n *node, s *ganesha.Server) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "nfs", "linux-nfsv3.conf"))
	require.NoError(t, err)
	envs, fast := filepath.Join(s.Export, "srv", "envs"), filepath.Join(s.Export, "fast", "envs-data")
	require.NoError(t, os.MkdirAll(envs, 0o755))
	require.NoError(t, os.MkdirAll(fast, 0o755))
	conf := string(raw)
	for old, repl := range map[string]string{
		`NFS_SERVER="nfs1.example.org"`:                            `NFS_SERVER="` + lab.HostAddr + `"`,
		`NFS_SERVER_ROOT_DIR="/srv/envs"`:                          `NFS_SERVER_ROOT_DIR="` + envs + `"`,
		`NFS_SERVER_DATA_DIR="/fast/envs-data"`:                    `NFS_SERVER_DATA_DIR="` + fast + `"`,
		`MOUNT_NFS_OPT="-orw -overs=3 -ohard -otcp -otimeout=600"`: `MOUNT_NFS_OPT="-orw -overs=3 -ohard -otcp -otimeout=600 -onolockd -omountproto=tcp"`,
	} {
		require.Contains(t, conf, old)
		conf = strings.Replace(conf, old, repl, 1)
	}
	n.configure(conf, "SYSLOG=0")

	want := []string{
		fmt.Sprintf("%s:%s/web2 %s", lab.HostAddr, fast, dataDir("web2")),
		fmt.Sprintf("%s:%s/fstab/web2 %s/jails-fstab/web2", lab.HostAddr, envs, workdir),
		fmt.Sprintf("%s:%s/system/web2 %s/jails-system/web2", lab.HostAddr, envs, workdir),
	}
	for round := 1; round <= 2; round++ {
		r := n.mntStart("web2")
		require.Equal(t, 0, r.Code, "round %d: mnt-start: %s", round, r.Stderr)
		require.Equal(t, want, n.mounts("nfs", "web2"), "round %d", round)
		r = n.mntStart("web2")
		require.Equal(t, 0, r.Code, "round %d: second mnt-start: %s", round, r.Stderr)
		assert.Equal(t, want, n.mounts("nfs", "web2"), "round %d: a second start changes nothing", round)
		if round == 1 {
			n.Sh(t, "echo v3 > "+dataDir("web2")+"/hello")
			got, err := os.ReadFile(filepath.Join(fast, "web2", "hello"))
			require.NoError(t, err, "the server has the file")
			assert.Equal(t, "v3\n", string(got))
		} else {
			assert.Equal(t, "v3\n", n.Sh(t, "cat "+dataDir("web2")+"/hello"))
		}
		r = n.mntStop("web2")
		require.Equal(t, 0, r.Code, "round %d: mnt-stop: %s", round, r.Stderr)
		assert.Empty(t, n.mounts("nfs", "web2"), "round %d", round)
	}
}

// testBusy: a process whose working directory is inside the jail's data
// mount keeps mnt-stop from unmounting it: 75, one line naming the
// process, the mount and its record kept. FORCE_UNMOUNT=1 then detaches it.
func testBusy(t *testing.T, n *node, s *ganesha.Server) {
	root := filepath.Join(s.Export, "busy")
	require.NoError(t, os.MkdirAll(root, 0o755))
	n.configure(fmt.Sprintf("NFS_SERVER=%s\nNFS_SERVER_ROOT_DIR=%s\nMOUNT_NFS_OPT=\"-orw -overs=4 -ohard\"\nNFS_AUTO_CREATE=1\nSYSLOG=0", lab.HostAddr, root))
	r := n.mntStart("busy1")
	require.Equal(t, 0, r.Code, "mnt-start: %s", r.Stderr)
	require.Len(t, n.mounts("nfs4", "busy1"), 3)

	holder := n.Start(t, proto.Command{Argv: []string{"sh", "-c", "cd " + dataDir("busy1") + " && exec sleep 600"}})
	defer holder.Signal(t, syscall.SIGKILL)
	time.Sleep(300 * time.Millisecond) // let it reach its cwd

	r = n.mntStop("busy1", "UNMOUNT_TIMEOUT=2")
	assert.Equal(t, 75, r.Code, "mnt-stop of a busy mount: %s", r.Stderr)
	line := oneLine(t, r)
	assert.Contains(t, line, fmt.Sprintf("pid %d (sleep)", holder.PID), "the holder is named")
	assert.Contains(t, line, dataDir("busy1"))
	assert.Equal(t, []string{fmt.Sprintf("%s:%s/data/busy1 %s", lab.HostAddr, root, dataDir("busy1"))}, n.mounts("nfs4", "busy1"), "the busy mount stays, the others are gone")
	if _, ok := holder.Wait(t, 0); ok {
		t.Fatal("the holder was killed; mnt-stop must never kill")
	}

	r = n.mntStop("busy1", "UNMOUNT_TIMEOUT=1", "FORCE_UNMOUNT=1")
	assert.Equal(t, 0, r.Code, "mnt-stop with FORCE_UNMOUNT=1: %s", r.Stderr)
	assert.Empty(t, n.mounts("nfs4", "busy1"), "FORCE_UNMOUNT=1 detaches the busy mount")
	r = n.mntStop("busy1")
	assert.Equal(t, 0, r.Code, "nothing left to undo: %s", r.Stderr)
}

// testFrozen stops ganesha with SIGSTOP under hard mounts: an attached
// environment's server no longer answers, and every file access to its
// mounts would hang. Each program must still answer within its deadline,
// say so on one line when it fails, leave no process in D state, and never
// report success while a mount remains. Then the server resumes and the
// environment works again.
func testFrozen(t *testing.T, n *node, s *ganesha.Server) {
	root := filepath.Join(s.Export, "frozen")
	require.NoError(t, os.MkdirAll(root, 0o755))
	n.configure(
		"NFS_SERVER="+lab.HostAddr,
		"NFS_SERVER_ROOT_DIR="+root,
		`MOUNT_NFS_OPT="-orw -overs=4 -ohard -oproto=tcp -otimeout=300"`,
		"NFS_AUTO_CREATE=1",
		"LEASE_BACKEND=file",
		"LEASE_DIR=/var/lib/envhooks/leases",
		"WORKDIR="+workdir,
		"COMMAND_TIMEOUT=10",
		"UNMOUNT_TIMEOUT=5",
		"SYSLOG=0",
	)
	n.Sh(t, "mkdir -p /var/lib/envhooks/leases")
	// The one-node lease directory is on the guest's root file system:
	// marked once, as an operator does.
	if r := n.envctl(nil, "lease", "init"); r.Code != 0 {
		t.Fatalf("envctl lease init: %s", r.Stderr)
	}
	n.WriteFile(t, workdir+"/jails-rcconf/rc.conf_frozen1", []byte(fmt.Sprintf(descriptor, "frozen1")), 0o644)
	r := n.envctl(nil, "jregister", "frozen1")
	require.Equal(t, 0, r.Code, "jregister: %s", r.Stderr)
	attached := n.mounts("nfs4", "frozen1")
	require.Len(t, attached, 3)

	// A process works in the jail's data directory, as a jail's would.
	// It must be sleeping in there before the server freezes: a holder
	// still on its way in would itself hang in the kernel.
	holder := n.Start(t, proto.Command{Argv: []string{"sh", "-c", "cd " + dataDir("frozen1") + " && echo $$ > /run/holder.pid && exec sleep 600"}})
	defer holder.Signal(t, syscall.SIGKILL)
	n.Sh(t, `for i in $(seq 300); do p=$(cat /run/holder.pid 2>/dev/null) && [ "$(cat /proc/$p/comm 2>/dev/null)" = sleep ] && exit 0; sleep 0.1; done; echo "the holder never settled" >&2; exit 1`)

	ganeshaPid := s.Pids()[1]
	require.NoError(t, syscall.Kill(ganeshaPid, syscall.SIGSTOP))
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			require.NoError(t, syscall.Kill(ganeshaPid, syscall.SIGCONT))
		}
	}
	defer resume()
	// Let the attribute caches (acdirmax=3 in the sample) run out, so
	// any stat of the mounts reaches the frozen server.
	time.Sleep(4 * time.Second)

	timed := func(what string, limit time.Duration, r lab.Result) lab.Result {
		t.Helper()
		t.Logf("%s: exit %d in %s: %s%s", what, r.Code, r.Took.Round(time.Millisecond), r.Stdout, r.Stderr)
		assert.False(t, r.TimedOut, "%s did not return", what)
		assert.Less(t, r.Took, limit, "%s took too long", what)
		assert.Empty(t, n.dState(), "after %s, no process may stay in D state", what)
		return r
	}

	// A start of the attached environment: the mount table says it is
	// attached, which it is; nothing touches the server.
	r = timed("mnt-start (attached)", 5*time.Second, n.mntStart("frozen1"))
	assert.Equal(t, 0, r.Code)
	// A start of another environment: the preflight gives up at its
	// deadline and says so.
	r = timed("mnt-start (not attached)", 10*time.Second, n.mntStart("frozen2", "LEASE_DIR=", "NFS_AUTO_CREATE=0"))
	assert.Equal(t, 69, r.Code)
	assert.Contains(t, oneLine(t, r), lab.HostAddr)
	assert.Empty(t, n.mounts("nfs4", "frozen2"), "nothing of frozen2 mounted")

	r = timed("envctl status", 15*time.Second, n.Run(t, []string{"ENVHOOKS_CONFIG=" + n.conf}, 30*time.Second, "envctl", "-c", n.conf, "status", "frozen1"))
	assert.Equal(t, 0, r.Code)
	assert.Contains(t, string(r.Stdout), "registered-here")
	r = timed("envctl list", 15*time.Second, n.Run(t, []string{"ENVHOOKS_CONFIG=" + n.conf}, 30*time.Second, "envctl", "-c", n.conf, "list"))
	assert.Equal(t, 0, r.Code)
	assert.Contains(t, string(r.Stdout), "frozen1")

	// umount hangs on the frozen server, and the data mount is busy too:
	// mnt-stop kills each umount at COMMAND_TIMEOUT (the kernel may have
	// detached the mount by then, or not) and stops at the first mount it
	// cannot remove, keeping it recorded.
	r = timed("mnt-stop", 60*time.Second, n.Run(t, []string{"ENVHOOKS_CONFIG=" + n.conf}, 90*time.Second, "mnt-stop", "-c", n.conf, "-j", "frozen1"))
	assert.Contains(t, []int{69, 75}, r.Code)
	assert.NotEmpty(t, n.mounts("nfs4", "frozen1"), "mnt-stop failed, yet nothing remains")
	assert.Contains(t, oneLine(t, r), "FORCE_UNMOUNT=1")
	// FORCE_UNMOUNT=1 detaches what a dead server holds, busy or not.
	// (Each hung umount still costs up to COMMAND_TIMEOUT, twice when forced.)
	r = timed("mnt-stop with FORCE_UNMOUNT=1", 100*time.Second, n.Run(t, []string{"ENVHOOKS_CONFIG=" + n.conf, "FORCE_UNMOUNT=1"}, 150*time.Second, "mnt-stop", "-c", n.conf, "-j", "frozen1"))
	assert.Equal(t, 0, r.Code)
	assert.Empty(t, n.mounts("nfs4", "frozen1"), "nothing left mounted")
	holder.Signal(t, syscall.SIGKILL)

	resume()
	r = n.mntStart("frozen1")
	require.Equal(t, 0, r.Code, "mnt-start after the server resumed: %s", r.Stderr)
	assert.Equal(t, attached, n.mounts("nfs4", "frozen1"))
	n.Sh(t, "echo thawed > "+dataDir("frozen1")+"/hello")
	got, err := os.ReadFile(filepath.Join(root, "data", "frozen1", "hello"))
	require.NoError(t, err)
	assert.Equal(t, "thawed\n", string(got))
	r = n.envctl(nil, "junregister", "frozen1")
	require.Equal(t, 0, r.Code, "junregister: %s", r.Stderr)
	assert.Empty(t, n.mounts("nfs4", "frozen1"))
}
