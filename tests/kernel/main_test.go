//go:build linux

// Package kernel_test runs the project's programs on real Linux kernels:
// qemu guests (tests/kernel/lab) with an NFS client and an iSCSI
// initiator, against nfs-ganesha, tgtd and etcd started by the tests on
// the loopback of a private network namespace. Each scenario group boots its
// guests once and runs its steps in them in the order the real tools run
// them.
package kernel_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envhooks/envhooks/tests/kernel/lab"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

func TestMain(m *testing.M) {
	testnet.Isolate()
	testenv.MainTeardown(m, func() {
		server.Close()
		scratch.Close()
	})
}

// The one ganesha the package's tests share; it is stopped when the test
// binary ends.
var (
	scratch = testenv.SharedTmpfs("envhooks-kernel-")
	server  = ganesha.Shared(scratch)
)

// serverUse lets one test at a time use the shared ganesha: the NFS
// scenarios freeze it. The iSCSI scenarios, which do not use it, run
// beside them.
var serverUse sync.Mutex

// useServer starts the shared ganesha if needed and holds it for t.
func useServer(t *testing.T) *ganesha.Server {
	t.Helper()
	testenv.Require(t, ganesha.Commands...)
	s := server.Get(t)
	serverUse.Lock()
	t.Cleanup(serverUse.Unlock)
	return s
}

// nfsPorts are the server's ports a guest reaches: portmapper, NFS, MOUNT.
var nfsPorts = []int{111, 2049, 20048}

// workdir is CBSD's workdir in every guest.
const workdir = "/usr/jails"

// node is a guest playing one CBSD node, with the project's programs
// installed as the README says and a configuration file.
type node struct {
	*lab.Guest
	t    *testing.T
	conf string
}

// bootNodes boots guests side by side and installs the freshly built
// programs in their /usr/local/bin as the README does (they are built
// before the guests boot, so their view of the host's root has them).
func bootNodes(t *testing.T, cfgs ...lab.Config) []*node {
	t.Helper()
	bin := filepath.Dir(testenv.Bin(t, "mnt-start"))
	var ns []*node
	for _, g := range lab.BootAll(t, cfgs...) {
		n := &node{Guest: g, t: t, conf: "/etc/envhooks.conf"}
		// The workdir is the guest's own tmpfs: through the overlay it
		// would otherwise show whatever the host keeps at that path.
		n.Sh(t, fmt.Sprintf("install -m 755 %s/mnt-start %s/envhooks-attach %s/mnt-stop %s/envctl /usr/local/bin/ && mkdir -p %[5]s && mount -t tmpfs tmpfs %[5]s && mkdir -p %[5]s/jails-rcconf", bin, bin, bin, bin, workdir))
		ns = append(ns, n)
	}
	return ns
}

func bootNode(t *testing.T, cfg lab.Config) *node {
	t.Helper()
	return bootNodes(t, cfg)[0]
}

// configure writes the node's configuration file.
func (n *node) configure(lines ...string) {
	n.t.Helper()
	n.WriteFile(n.t, n.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// cbsdFlags are the flags CBSD's jcreate and jstart pass to the mnt_start
// hook (sudoexec/jcreate: "${mnt_start} -d ${data} -f
// ${jailfstabdir}/${jname} -j ${jname} -r ${jailrcconfdir} -s
// ${jailsysdir}/${jname}").
func cbsdFlags(jname string) []string {
	return []string{"-d", dataDir(jname), "-f", workdir + "/jails-fstab/" + jname, "-j", jname,
		"-r", workdir + "/jails-rcconf", "-s", workdir + "/jails-system/" + jname}
}

func dataDir(jname string) string { return workdir + "/jails-data/" + jname + "-data" }

// run runs one of the project's programs in the guest with extra
// environment, under a deadline the test expects it to keep.
func (n *node) run(env []string, limit time.Duration, prog string, args ...string) lab.Result {
	n.t.Helper()
	return n.Run(n.t, append([]string{"ENVHOOKS_CONFIG=" + n.conf}, env...), limit, append([]string{prog}, args...)...)
}

func (n *node) mntStart(jname string, env ...string) lab.Result {
	n.t.Helper()
	return n.run(env, 2*time.Minute, "mnt-start", append([]string{"-c", n.conf}, cbsdFlags(jname)...)...)
}

// poststop runs what CBSD's jstop runs after the jail stopped: every
// executable in jails-system/<jname>/master_poststop.d, with no arguments
// (sudoexec/jstop: external_exec_master_script "master_poststop.d"); here
// the one envctl install-hook put there, which execs mnt-stop.
func (n *node) poststop(jname string, env ...string) lab.Result {
	n.t.Helper()
	return n.run(env, 2*time.Minute, workdir+"/jails-system/"+jname+"/master_poststop.d/envhooks-mnt-stop")
}

func (n *node) mntStop(jname string, env ...string) lab.Result {
	n.t.Helper()
	return n.run(env, 2*time.Minute, "mnt-stop", "-c", n.conf, "-j", jname)
}

func (n *node) envctl(env []string, args ...string) lab.Result {
	n.t.Helper()
	return n.run(env, 2*time.Minute, "envctl", append([]string{"-c", n.conf}, args...)...)
}

// mounts lists the guest's mounts of type fstype on jname's CBSD
// directories, as "source target" lines, from /proc/self/mountinfo
// (reading it never waits on a server).
func (n *node) mounts(fstype, jname string) []string {
	n.t.Helper()
	dirs := []string{dataDir(jname), workdir + "/jails-fstab/" + jname, workdir + "/jails-system/" + jname, workdir + "/jails-rcconf"}
	var out []string
	for _, line := range strings.Split(string(n.ReadFile(n.t, "/proc/self/mountinfo")), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 || g[0] != fstype || !slices.Contains(dirs, f[4]) {
			continue
		}
		out = append(out, g[1]+" "+f[4])
	}
	slices.Sort(out)
	return out
}

// dState lists the guest's processes stuck in uninterruptible sleep.
func (n *node) dState() []string {
	n.t.Helper()
	var out []string
	for _, p := range n.Procs(n.t) {
		if p.State == "D" {
			out = append(out, fmt.Sprintf("pid %d %s (%s, waiting in %s)", p.PID, p.Comm, p.Cmdline, p.WChan))
		}
	}
	return out
}

// oneLine checks that a failing program said what failed on exactly one
// error line of stderr (beside the lines that log what it did), and
// returns it.
func oneLine(t *testing.T, r lab.Result) string {
	t.Helper()
	var errs []string
	for _, line := range strings.Split(strings.TrimSpace(string(r.Stderr)), "\n") {
		if strings.Contains(line, ": error: ") {
			errs = append(errs, line)
		}
	}
	if len(errs) != 1 {
		t.Errorf("want one error line on stderr, got %d:\n%s", len(errs), r.Stderr)
		return ""
	}
	return errs[0]
}
