//go:build linux

// Package doctor runs envctl doctor against real servers where a check
// talks to one: nfs-ganesha (the NFS preflight, NFS leases and the clock
// of the NFS server) and etcd (etcd leases), both started by the tests on
// the loopback of a private network namespace, an iSCSI portal (the
// in-process fake that answers discovery), and a silent listener for a
// server that never answers. Every check is also made to fail, and each
// failure must name what to fix and exit with its sysexits code.
package doctor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/dist/cbsd"
	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/iscsi/iscsitest"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

func TestMain(m *testing.M) {
	testnet.Isolate()
	testenv.MainTeardown(m, func() {
		etcd.Close()
		nfs.Close()
		scratch.Close()
	})
}

// The servers the checks talk to, made on first use and stopped when the
// test binary ends, with their data on a scratch tmpfs.
var (
	scratch = testenv.SharedTmpfs("envhooks-doctor-")
	nfs     = ganesha.Shared(scratch)
	etcd    = etcdcluster.Shared(scratch, 1)
)

func startNFS(t *testing.T) *ganesha.Server {
	testenv.Require(t, ganesha.Commands...)
	return nfs.Get(t)
}

func startEtcd(t *testing.T) *etcdcluster.Cluster {
	testenv.Require(t, etcdcluster.Commands...)
	return etcd.Get(t)
}

type node struct {
	t                  *testing.T
	root, cfg, workdir string
	bin                string // where the configured cbsd is: only root may write it
}

// newNode writes a configuration whose local parts are right (root-owned
// state and inventory directories, nullfs layout), with keys appended.
func newNode(t *testing.T, keys string) *node {
	root := t.TempDir()
	n := &node{t: t, root: root, cfg: filepath.Join(root, "envhooks.conf"), workdir: filepath.Join(root, "jails"), bin: testenv.SafeDir(t)}
	for _, d := range []string{"dfs/data", "dfs/system", "dfs/leases", "state", "inventory", "jails/jails-rcconf"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	testenv.SharedLeaseDir(t, filepath.Join(root, "dfs", "leases"))
	testenv.WriteFile(t, n.cfg, fmt.Sprintf("BACKEND=nullfs\nNULLFS_ROOT=%[1]s/dfs\nLEASE_DIR=%[1]s/dfs/leases\nNODE_NAME=a\nWORKDIR=%[1]s/jails\nSTATE_DIR=%[1]s/state\nINVENTORY_DIR=%[1]s/inventory\nSYSLOG=0\nCBSD_COMMAND=%[3]s/cbsd\n%[2]s", root, keys, n.bin), 0o644)
	return n
}

type report struct {
	Code     int              `json:"code"`
	Findings []doctor.Finding `json:"findings"`
}

// doctor runs envctl --json doctor and checks what every report must be:
// its exit code is the first failure's, every failure says what to fix.
func (n *node) doctor(env ...string) report {
	n.t.Helper()
	r := testenv.Run(n.t, append([]string{"ENVHOOKS_CONFIG=" + n.cfg, "ENVHOOKS_RUNDIR=" + filepath.Join(n.root, "run")}, env...), testenv.Bin(n.t, "envctl"), "--json", "doctor")
	var rep report
	require.NoError(n.t, json.Unmarshal([]byte(r.Stdout), &rep), "stdout: %s\nstderr: %s", r.Stdout, r.Stderr)
	assert.Equal(n.t, rep.Code, r.Code, "the exit code is the report's")
	assert.Equal(n.t, doctor.Code(rep.Findings), rep.Code)
	for _, f := range rep.Findings {
		if f.Status == doctor.Fail {
			assert.NotZero(n.t, f.Code, "%s: a failure has a sysexits code", f.Check)
			assert.NotContains(n.t, f.Detail, "\n", f.Check)
		}
	}
	return rep
}

// find returns the findings of a check.
func (rep report) find(check string) []doctor.Finding {
	var out []doctor.Finding
	for _, f := range rep.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

func (rep report) one(t *testing.T, check string) doctor.Finding {
	t.Helper()
	fs := rep.find(check)
	require.Len(t, fs, 1, "findings of %s in %+v", check, rep.Findings)
	return fs[0]
}

func TestHealthyLocalNode(t *testing.T) {
	n := newNode(t, "")
	rep := n.doctor()
	for _, check := range []string{"config", "backend", "nullfs: kernel", "nullfs: NULLFS_ROOT", "STATE_DIR", "INVENTORY_DIR", "leases: store", "leases: clock", "hooks"} {
		assert.Equal(t, doctor.OK, rep.one(t, check).Status, "%s: %+v", check, rep.one(t, check))
	}
	assert.Len(t, rep.find("programs"), 3)
	assert.Equal(t, doctor.Warn, rep.one(t, "LEASE_DIR").Status, "a local directory is no shared storage")
	assert.Contains(t, rep.one(t, "LEASE_DIR").Detail, "local")
	assert.Equal(t, doctor.Warn, rep.one(t, "leases: heartbeat").Status, "never beat")
	assert.Equal(t, 0, rep.Code)

	// A heartbeat fixes the warning.
	r := testenv.Run(t, []string{"ENVHOOKS_CONFIG=" + n.cfg}, "timeout", "-s", "TERM", "2", testenv.Bin(t, "envctl"), "heartbeat")
	require.Contains(t, r.Stderr, "heartbeat of a")
	assert.Equal(t, doctor.OK, n.doctor().one(t, "leases: heartbeat").Status)
}

func TestEachLocalCheckFails(t *testing.T) {
	t.Run("config value", func(t *testing.T) {
		n := newNode(t, "LEASE_TTL=soon\n")
		rep := n.doctor()
		assert.Equal(t, 78, rep.Code)
		f := rep.one(t, "config")
		assert.Contains(t, f.Detail, "envhooks.conf:")
		assert.Contains(t, f.Detail, "LEASE_TTL")
	})
	t.Run("config typo", func(t *testing.T) {
		rep := newNode(t, "LEASE_TTTL=3\n").doctor()
		assert.Contains(t, rep.find("config")[1].Detail, "unknown key LEASE_TTTL")
		assert.Equal(t, doctor.Warn, rep.find("config")[1].Status)
	})
	t.Run("backend", func(t *testing.T) {
		rep := newNode(t, "BACKEND=floppy\n").doctor()
		assert.Equal(t, 78, rep.Code)
		assert.Equal(t, doctor.Fail, rep.one(t, "backend").Status)
	})
	t.Run("storage", func(t *testing.T) {
		n := newNode(t, "")
		require.NoError(t, os.RemoveAll(filepath.Join(n.root, "dfs", "system")))
		rep := n.doctor()
		assert.Equal(t, 69, rep.Code)
		assert.Contains(t, rep.one(t, "nullfs: NULLFS_ROOT").Fix, "mount the shared storage")
	})
	t.Run("state directory", func(t *testing.T) {
		n := newNode(t, "")
		require.NoError(t, os.Chmod(filepath.Join(n.root, "state"), 0o777))
		assert.Equal(t, 77, n.doctor().Code, "others could forge state records")
		require.NoError(t, os.Chmod(filepath.Join(n.root, "state"), 0o755))
		require.NoError(t, os.Chown(filepath.Join(n.root, "inventory"), 1000, 1000))
		rep := n.doctor()
		assert.Equal(t, 77, rep.Code)
		assert.Contains(t, rep.one(t, "INVENTORY_DIR").Fix, "chown root")
		require.NoError(t, os.RemoveAll(filepath.Join(n.root, "inventory")))
		testenv.WriteFile(t, filepath.Join(n.root, "inventory"), "", 0o644)
		assert.Equal(t, 73, n.doctor().Code)
	})
	t.Run("programs", func(t *testing.T) {
		n := newNode(t, "")
		alone := filepath.Join(n.root, "bin", "envctl")
		raw, err := os.ReadFile(testenv.Bin(t, "envctl"))
		require.NoError(t, err)
		testenv.WriteFile(t, alone, string(raw), 0o755)
		r := testenv.Run(t, []string{"ENVHOOKS_CONFIG=" + n.cfg}, alone, "doctor")
		assert.Equal(t, 69, r.Code, r.Stdout)
		assert.Contains(t, r.Stdout, "mnt-start is missing")
		assert.Contains(t, r.Stdout, "fix: install all four programs together")
	})
	t.Run("lease store", func(t *testing.T) {
		n := newNode(t, "")
		require.NoError(t, os.RemoveAll(filepath.Join(n.root, "dfs", "leases")))
		rep := n.doctor()
		assert.Equal(t, 69, rep.Code)
		assert.Equal(t, doctor.Fail, rep.one(t, "LEASE_DIR").Status)
	})
	t.Run("unmarked lease directory", func(t *testing.T) {
		// On the root file system without envctl lease init's marker, it
		// may be the empty mount point of storage that is not mounted.
		n := newNode(t, "")
		require.NoError(t, os.Remove(filepath.Join(n.root, "dfs", "leases", lease.MarkerName)))
		rep := n.doctor()
		assert.Equal(t, 69, rep.Code)
		assert.Equal(t, doctor.Fail, rep.one(t, "LEASE_DIR").Status)
		assert.Contains(t, rep.one(t, "LEASE_DIR").Detail, "envctl lease init")
	})
}

// The hooks CBSD and LXC run for the environments registered here.
func TestHooksOfRegisteredEnvironments(t *testing.T) {
	n := newNode(t, "")
	for _, role := range []string{"data", "system", "fstab", "rcconf"} {
		require.NoError(t, os.MkdirAll(filepath.Join(n.root, "dfs", role, "web1"), 0o755))
	}
	testenv.WriteFile(t, filepath.Join(n.workdir, "jails-rcconf", "rc.conf_web1"), "jname=\"web1\";\nemulator=\"jail\";\n", 0o644)
	env := []string{"ENVHOOKS_CONFIG=" + n.cfg, "ENVHOOKS_RUNDIR=" + filepath.Join(n.root, "run")}
	r := testenv.Run(t, env, testenv.Bin(t, "envctl"), "jregister", "web1")
	require.Equal(t, 0, r.Code, r.Stderr)
	t.Cleanup(func() { testenv.Run(t, env, testenv.Bin(t, "mnt-stop"), "-j", "web1") })

	rep := n.doctor()
	assert.Equal(t, 78, rep.Code)
	assert.Equal(t, "envctl install-hook jname=web1", rep.one(t, "hooks: web1").Fix)

	require.Equal(t, 0, testenv.Run(t, env, testenv.Bin(t, "envctl"), "install-hook", "jname=web1").Code)
	assert.Equal(t, doctor.OK, n.doctor().one(t, "hooks: web1").Status)
	script := cbsd.Poststop().Path(environment.CBSDDirs(n.workdir, "web1")[environment.System])
	testenv.WriteFile(t, script, "#!/bin/sh\nexit 0\n", 0o755)
	assert.Equal(t, doctor.Warn, n.doctor().one(t, "hooks: web1").Status, "an edited script")
	require.NoError(t, os.Chmod(script, 0o644))
	assert.Equal(t, 78, n.doctor().Code, "not executable")
	require.Equal(t, 0, testenv.Run(t, env, testenv.Bin(t, "envctl"), "install-hook", "jname=web1").Code)

	// With cbsd installed, its mnt_start setting is asked for, exactly as
	// jget answers with mode=quiet.
	args := filepath.Join(n.root, "cbsd-args")
	fake := func(answer string) {
		testenv.WriteFile(t, filepath.Join(n.bin, "cbsd"), fmt.Sprintf("#!/bin/sh\necho \"$@\" > %s\necho %s\n", args, answer), 0o755)
	}
	fake("/usr/local/bin/other-hook")
	rep = n.doctor()
	assert.Equal(t, 78, rep.Code)
	hooks := rep.find("hooks: web1")
	require.Len(t, hooks, 2)
	assert.Contains(t, hooks[1].Detail, "other-hook")
	got, err := os.ReadFile(args)
	require.NoError(t, err)
	assert.Equal(t, "jget jname=web1 mode=quiet mnt_start\n", string(got))
	fake("/usr/local/bin/mnt-start")
	rep = n.doctor()
	assert.Equal(t, 0, rep.Code, "%+v", rep.Findings)

	// A container registered here whose config runs no hooks.
	lxc := filepath.Join(n.root, "lxc")
	testenv.WriteFile(t, filepath.Join(lxc, "ct1", "config"), "lxc.rootfs.path = dir:"+lxc+"/ct1/rootfs\nlxc.hook.post-stop = /usr/local/bin/mnt-stop\n", 0o640)
	testenv.WriteFile(t, filepath.Join(n.root, "inventory", "ct1.json"), `{"jname":"ct1","kind":"container","node":"a","registered":"2026-01-01T00:00:00Z","descriptor":""}`, 0o644)
	rep = n.doctor("LXC_PATH=" + lxc)
	assert.Equal(t, 78, rep.Code)
	assert.Contains(t, rep.one(t, "hooks: ct1").Detail, "lxc.hook.pre-start = mnt-start")
}

// The NFS backend and NFS leases against a real ganesha: the server
// answers, the store answers, its clock agrees; then a path it does not
// export and a server that never answers, each within its deadline.
func TestNFS(t *testing.T) {
	s := startNFS(t)
	require.NoError(t, os.MkdirAll(filepath.Join(s.Export, "data"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(s.Export, "system"), 0o755))
	keys := fmt.Sprintf("BACKEND=nfs\nNFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=%[1]s\nLEASE_BACKEND=nfs\nLEASE_DIR=%[1]s/leases\nPREFLIGHT_TIMEOUT=2\nLEASE_TIMEOUT=2\n", s.Export)
	n := newNode(t, keys)
	rep := n.doctor()
	assert.Equal(t, doctor.OK, rep.one(t, "nfs: server").Status, "%+v", rep.one(t, "nfs: server"))
	assert.Equal(t, doctor.OK, rep.one(t, "leases: store").Status, "%+v", rep.one(t, "leases: store"))
	clock := rep.one(t, "leases: clock")
	assert.Equal(t, doctor.OK, clock.Status, "ganesha runs on this machine's clock: %+v", clock)
	assert.Contains(t, clock.Detail, "the lease store's clock is")
	assert.Empty(t, rep.find("LEASE_DIR"), "an NFS lease store has no local directory")
	// This machine's kernel may or may not have an NFS client: whichever,
	// the finding says so, and what to do.
	kernel := rep.one(t, "nfs: kernel client")
	if kernel.Status == doctor.Fail {
		assert.Equal(t, 69, kernel.Code)
		assert.Contains(t, kernel.Fix, "nfs")
	}

	n = newNode(t, keys+"NFS_SERVER_ROOT_DIR=/not/exported\n")
	f := n.doctor().one(t, "nfs: server")
	assert.Equal(t, doctor.Fail, f.Status)
	assert.Equal(t, 69, f.Code)
	assert.Contains(t, f.Detail, "/not/exported")

	addr, stop, err := testnet.Silent()
	require.NoError(t, err)
	defer stop()
	n = newNode(t, keys+fmt.Sprintf("NFS_PORT=%d\n", addr.Port))
	start := time.Now()
	rep = n.doctor()
	f = rep.one(t, "nfs: server")
	assert.Equal(t, 69, f.Code)
	assert.Contains(t, f.Detail, "within 2s")
	assert.Less(t, time.Since(start), 30*time.Second, "bounded by PREFLIGHT_TIMEOUT and LEASE_TIMEOUT")
}

// etcd leases against a real etcd: the store answers, liveness is etcd's
// own; a heartbeat clears the warning; a silent endpoint fails within
// LEASE_TIMEOUT.
func TestEtcd(t *testing.T) {
	c := startEtcd(t)
	keys := fmt.Sprintf("LEASE_BACKEND=etcd\nLEASE_DIR=/envhooks-doctor/%s\nETCD_ENDPOINTS=%s\nLEASE_TIMEOUT=2\n", strings.ReplaceAll(t.Name(), "/", "-"), strings.Join(c.Endpoints(), ","))
	n := newNode(t, keys)
	rep := n.doctor()
	assert.Equal(t, doctor.OK, rep.one(t, "leases: store").Status, "%+v", rep.one(t, "leases: store"))
	assert.Contains(t, rep.one(t, "leases: clock").Detail, "own clock")
	assert.Equal(t, doctor.Warn, rep.one(t, "leases: heartbeat").Status)
	r := testenv.Run(t, []string{"ENVHOOKS_CONFIG=" + n.cfg}, "timeout", "-s", "TERM", "2", testenv.Bin(t, "envctl"), "heartbeat")
	require.Contains(t, r.Stderr, "heartbeat of a")
	assert.Equal(t, doctor.OK, n.doctor().one(t, "leases: heartbeat").Status)

	addr, stop, err := testnet.Silent()
	require.NoError(t, err)
	defer stop()
	n = newNode(t, keys+fmt.Sprintf("ETCD_ENDPOINTS=http://%s\n", addr))
	start := time.Now()
	rep = n.doctor()
	f := rep.one(t, "leases: store")
	assert.Equal(t, 69, f.Code)
	assert.Contains(t, f.Detail, "within LEASE_TIMEOUT (2s)")
	assert.Less(t, time.Since(start), 30*time.Second)
}

// The iSCSI portal check asks for discovery the way the preflight does.
func TestISCSIPortal(t *testing.T) {
	p := iscsitest.Start(t, &iscsitest.Portal{Targets: []string{"iqn.2026-01.org.example:web1"}})
	keys := fmt.Sprintf("BACKEND=iscsi\nISCSI_PORTAL=%s\nISCSI_TARGET=iqn.2026-01.org.example:%%j\nPREFLIGHT_TIMEOUT=2\n", p.Addr)
	rep := newNode(t, keys).doctor()
	f := rep.one(t, "iscsi: portal")
	assert.Equal(t, doctor.OK, f.Status, "%+v", f)
	assert.Contains(t, f.Detail, "iqn.2026-01.org.example:web1")
	assert.Len(t, rep.find("iscsi: iscsid"), 1)
	assert.Len(t, rep.find("iscsi: kernel initiator"), 1)

	addr, stop, err := testnet.Silent()
	require.NoError(t, err)
	defer stop()
	rep = newNode(t, keys+fmt.Sprintf("ISCSI_PORTAL=%s\n", addr)).doctor()
	f = rep.one(t, "iscsi: portal")
	assert.Equal(t, doctor.Fail, f.Status)
	assert.Equal(t, 69, f.Code)
}
