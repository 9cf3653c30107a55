//go:build linux

// Command kernelmove benchmarks envctl move of one environment over real
// NFS between two real kernels: two qemu guests of the kernel lab (TCG,
// restrict=on) are the nodes alpha and beta; the environment's data,
// system and fstab directories are NFSv4 mounts from nfs-ganesha, started
// here in this program's own network namespace; the leases, journals and
// history are NFS records on the same server (LEASE_BACKEND=nfs); each
// guest runs its own sshd (the host's OpenSSH, seen through the guest's
// root) with host keys, an authorized key and known_hosts made for the run.
// The guests cannot reach each other: each exposes its sshd on the host's
// loopback and forwards the other's, so alpha reaches beta at
// HostAddr:betaSSH and beta reaches alpha at HostAddr:alphaSSH.
//
// Per round the running environment moves alpha -> beta (envctl move run
// on alpha) and back (run on beta); beside it, in the same round, the
// migration by hand that move replaces, both ways: junregister on the
// source, then jregister on the target over ssh. A move or a check after
// it that fails ends the benchmark with one line and exit 1.
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/kernel/lab"
	"github.com/envhooks/envhooks/tests/kernel/lab/proto"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testnet"
)

const (
	rounds   = 5
	jname    = "web1"
	workdir  = "/usr/jails"
	sshDir   = "/etc/envhooks-bench" // in each guest: keys, known_hosts, sshd_config
	alphaSSH = 2201                  // the host loopback ports of the guests' sshds
	betaSSH  = 2202
)

// nfsPorts are ganesha's: portmapper, NFS, MOUNT.
var nfsPorts = []int{111, 2049, 20048}

func main() {
	if os.Geteuid() != 0 {
		benchenv.Fatal("the kernelmove benchmark needs root (ganesha in a private network namespace, qemu guests)")
	}
	testnet.Isolate()
	benchenv.Exit(run())
}

// node is one guest playing a node.
type node struct {
	*lab.Guest
	t    *benchenv.T
	port int // where the other node reaches its sshd at lab.HostAddr
}

func run() int {
	t := &benchenv.T{}
	dir := benchenv.TempDir("", "envhooks-bench-kernelmove-")
	bin := filepath.Join(dir, "bin")
	for _, cmd := range []string{"cmd/mnt-start", "cmd/mnt-stop", "cmd/envctl"} {
		benchenv.Build(bin, cmd)
	}
	srv, err := ganesha.Start(filepath.Join(dir, "ganesha"))
	must(err)
	benchenv.Cleanup(srv.Stop)
	root := filepath.Join(srv.Export, "move")
	for _, d := range []string{"leases", "data/" + jname, "system/" + jname, "fstab/" + jname, "rcconf/" + jname} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	keys := makeKeys(filepath.Join(dir, "keys"))

	gs := lab.BootAll(t,
		lab.Config{Name: "alpha", Forward: append([]int{betaSSH}, nfsPorts...), Expose: []lab.Expose{{Host: alphaSSH, Guest: 22}}, Modules: []string{"nfsv4"}},
		lab.Config{Name: "beta", Forward: append([]int{alphaSSH}, nfsPorts...), Expose: []lab.Expose{{Host: betaSSH, Guest: 22}}, Modules: []string{"nfsv4"}})
	alpha, beta := &node{gs[0], t, alphaSSH}, &node{gs[1], t, betaSSH}
	for _, n := range []*node{alpha, beta} {
		n.setup(bin, root, keys)
	}
	for _, n := range []*node{alpha, beta} {
		n.waitSSH(alpha, beta)
	}

	// jcreate left the descriptor on alpha; the environment runs there.
	alpha.WriteFile(t, workdir+"/jails-rcconf/rc.conf_"+jname, []byte(fmt.Sprintf(descriptor, jname)), 0o644)
	alpha.envctl("jregister", "jname="+jname)
	alpha.envctl("start", "jname="+jname)
	alpha.Sh(t, "echo written-on-alpha > "+workdir+"/jails-data/"+jname+"-data/hello")

	// Each round, so that all three see the same machine (the guests share
	// its cores with whatever else runs): the move there and back; the
	// same two hops by hand, the environment stopped (move stops and
	// starts it), as an operator on the source types them; one bare ssh
	// session, of which a move opens three (preflight, jregister, start).
	byHand := func(to *node) string {
		return fmt.Sprintf("envctl junregister jname=%s && ssh %s ssh://root@%s:%d /usr/local/bin/envctl jregister jname=%s",
			jname, sshOptions, lab.HostAddr, to.port, jname)
	}
	var moves, manual, sessions []time.Duration
	for i := range rounds {
		for _, hop := range [][2]*node{{alpha, beta}, {beta, alpha}} {
			from, to := hop[0], hop[1]
			start := time.Now()
			from.envctl("move", "jname="+jname, "to="+to.Name)
			moves = append(moves, time.Since(start))
			t.Logf("round %d: move %s -> %s: %s (host load %s)", i+1, from.Name, to.Name, secs(moves[len(moves)-1]), load())
			from.check(0, false)
			to.check(3, true)
			if i == 0 && to == beta {
				if got := beta.Sh(t, "cat "+workdir+"/jails-data/"+jname+"-data/hello"); got != "written-on-alpha\n" {
					benchenv.Fatal("beta reads %q from the data alpha wrote, over its own NFS mount", got)
				}
			}
		}
		alpha.envctl("stop", "jname="+jname)
		for _, hop := range [][2]*node{{alpha, beta}, {beta, alpha}} {
			from, to := hop[0], hop[1]
			start := time.Now()
			if r := from.Run(t, nil, 5*time.Minute, "sh", "-c", byHand(to)); r.Code != 0 {
				benchenv.Fatal("by hand on %s: exit %d: %s", from.Name, r.Code, errorLine(r.Stderr))
			}
			manual = append(manual, time.Since(start))
			t.Logf("round %d: by hand %s -> %s: %s (host load %s)", i+1, from.Name, to.Name, secs(manual[len(manual)-1]), load())
			from.check(0, false)
			to.check(3, false)
		}
		alpha.envctl("start", "jname="+jname)
		start := time.Now()
		if r := alpha.Run(t, nil, time.Minute, "sh", "-c", fmt.Sprintf("ssh %s ssh://root@%s:%d true", sshOptions, lab.HostAddr, beta.port)); r.Code != 0 {
			benchenv.Fatal("ssh from alpha to beta: exit %d: %s", r.Code, errorLine(r.Stderr))
		}
		sessions = append(sessions, time.Since(start))
		t.Logf("round %d: ssh alpha -> beta true: %s (host load %s)", i+1, secs(sessions[len(sessions)-1]), load())
	}

	mm, hm := benchenv.Quantile(moves, 0.5), benchenv.Quantile(manual, 0.5)
	fmt.Printf("== envctl move of one running environment between two qemu guests (Linux %s, TCG, 1 vCPU each), NFSv4 from ganesha (3 hard mounts), NFS leases, real OpenSSH through the host; %d moves\n", lab.Prepare(t).Version, len(moves))
	benchenv.Table([][]string{
		{"what", "median", "p90"},
		{"envctl move (preflight, stop, junregister, jregister, start, check, journal, history)", secs(mm), secs(benchenv.Quantile(moves, 0.9))},
		{"by hand: junregister here + ssh there jregister (no stop, start, journal)", secs(hm), secs(benchenv.Quantile(manual, 0.9))},
		{"move / by hand", fmt.Sprintf("%.2fx", float64(mm)/float64(hm)), ""},
		{"one ssh session alpha -> beta running true (a move opens three)", secs(benchenv.Quantile(sessions, 0.5)), secs(benchenv.Quantile(sessions, 0.9))},
	})
	if t.Failed() {
		return 1
	}
	return 0
}

// A descriptor as CBSD's jexport writes it, the workdir as CBSDROOT.
const descriptor = `jname="%[1]s";
path="CBSDROOT/jails/%[1]s";
data="CBSDROOT/jails-data/%[1]s-data";
host_hostname="%[1]s.example.org";
emulator="jail";
`

// sshOptions is how a node reaches the other: the run's key, and only the
// host keys made for the run.
const sshOptions = "-F none -i " + sshDir + "/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=" + sshDir +
	"/known_hosts -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o LogLevel=ERROR"

// setup installs the programs as the README says, writes the node's
// configuration and starts its sshd.
func (n *node) setup(bin, root string, keys map[string][]byte) {
	t := n.t
	// The workdir and root's home are the guest's own: through the
	// overlay they would show the host's (and its shell start-up files
	// would run in every ssh session).
	n.Sh(t, fmt.Sprintf("install -m 755 %[1]s/mnt-start %[1]s/envhooks-attach %[1]s/mnt-stop %[1]s/envctl /usr/local/bin/"+
		" && mkdir -p %[2]s && mount -t tmpfs tmpfs %[2]s && mkdir -p %[2]s/jails-rcconf"+
		" && mount -t tmpfs -o mode=0700 tmpfs /root && mkdir -p -m 0755 /run/sshd %[3]s", bin, workdir, sshDir))
	for name, data := range keys {
		mode := os.FileMode(0o644)
		if !strings.HasSuffix(name, ".pub") && name != "known_hosts" {
			mode = 0o600
		}
		if strings.HasPrefix(name, "host_") && name != "host_"+n.Name && name != "host_"+n.Name+".pub" {
			continue // the other node's host key stays with it
		}
		n.WriteFile(t, sshDir+"/"+name, data, mode)
	}
	n.WriteFile(t, sshDir+"/sshd_config", []byte(fmt.Sprintf(`ListenAddress %s:22
HostKey %s/host_%s
PidFile none
AuthorizedKeysFile %s/id_ed25519.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
`, lab.GuestAddr, sshDir, n.Name, sshDir)), 0o644)
	n.Start(t, proto.Command{Argv: []string{"/usr/sbin/sshd", "-D", "-e", "-f", sshDir + "/sshd_config"}})
	n.WriteFile(t, "/etc/envhooks.conf", []byte(fmt.Sprintf(`BACKEND=nfs
NFS_SERVER=%[1]s
NFS_SERVER_ROOT_DIR=%[2]s
MOUNT_NFS_OPT="-orw -overs=4 -ohard -oproto=tcp -otimeout=300"
LEASE_BACKEND=nfs
LEASE_DIR=%[2]s/leases
WORKDIR=%[3]s
RUNNING_CHECK="/usr/bin/test -e /run/running-%%j"
START_COMMAND="/usr/bin/touch /run/running-%%j"
STOP_COMMAND="/bin/rm -f /run/running-%%j"
SSH_DESTINATIONS="alpha=ssh://root@%[1]s:%[4]d beta=ssh://root@%[1]s:%[5]d"
SSH_OPTIONS="%[6]s"
SSH_CONNECT_TIMEOUT=20
SSH_TIMEOUT=300
REMOTE_ENVCTL=/usr/local/bin/envctl
CBSD_DELEGATE=0
SYSLOG=0
`, lab.HostAddr, root, workdir, alphaSSH, betaSSH, sshOptions)), 0o644)
}

// waitSSH waits until n reaches every other node's sshd through the host.
func (n *node) waitSSH(nodes ...*node) {
	for _, o := range nodes {
		if o == n {
			continue
		}
		var r lab.Result
		for range 30 {
			r = n.Run(n.t, nil, time.Minute, "sh", "-c", fmt.Sprintf("ssh %s -o ConnectTimeout=20 ssh://root@%s:%d hostname", sshOptions, lab.HostAddr, o.port))
			if r.Code == 0 {
				break
			}
			time.Sleep(time.Second)
		}
		if got := strings.TrimSpace(string(r.Stdout)); r.Code != 0 || got != o.Name {
			benchenv.Fatal("%s cannot ssh to %s: exit %d, %q: %s", n.Name, o.Name, r.Code, got, errorLine(r.Stderr))
		}
	}
}

// envctl runs envctl on the node and ends the benchmark if it fails.
func (n *node) envctl(args ...string) {
	if r := n.Run(n.t, nil, 5*time.Minute, append([]string{"envctl"}, args...)...); r.Code != 0 {
		benchenv.Fatal("envctl %s on %s: exit %d: %s", strings.Join(args, " "), n.Name, r.Code, errorLine(r.Stderr))
	}
}

// check ends the benchmark unless the node has mounts NFS mounts, and runs
// the environment or not as running says.
func (n *node) check(mounts int, running bool) {
	got := strings.Count(string(n.ReadFile(n.t, "/proc/self/mountinfo")), " - nfs4 ")
	on := n.Run(n.t, nil, time.Minute, "test", "-e", "/run/running-"+jname).Code == 0
	if got != mounts || on != running {
		benchenv.Fatal("%s: %d NFS mounts (want %d), %s running %v (want %v)", n.Name, got, mounts, jname, on, running)
	}
}

// makeKeys makes the run's user key, a host key per node and the
// known_hosts that names each node's key at the address and port the
// other reaches it at.
func makeKeys(dir string) map[string][]byte {
	must(os.MkdirAll(dir, 0o700))
	keygen := func(name string) {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "envhooks-bench", "-f", filepath.Join(dir, name)).CombinedOutput(); err != nil {
			benchenv.Fatal("ssh-keygen: %v: %s", err, bytes.TrimSpace(out))
		}
	}
	keys := map[string][]byte{}
	var known bytes.Buffer
	for _, name := range []string{"id_ed25519", "host_alpha", "host_beta"} {
		keygen(name)
		for _, f := range []string{name, name + ".pub"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			must(err)
			keys[f] = b
		}
	}
	for name, port := range map[string]int{"alpha": alphaSSH, "beta": betaSSH} {
		f := strings.Fields(string(keys["host_"+name+".pub"]))
		fmt.Fprintf(&known, "[%s]:%d %s %s\n", lab.HostAddr, port, f[0], f[1])
	}
	keys["known_hosts"] = known.Bytes()
	return keys
}

// errorLine is the line a failing program said what failed on (the last
// one naming an error), else its last line.
func errorLine(stderr []byte) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "error") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

// load is the host's load average over the last minute: the guests run
// under TCG on the host's cores, beside whatever else runs there.
func load() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s" }

func must(err error) {
	if err != nil {
		benchenv.Fatal("%v", err)
	}
}
