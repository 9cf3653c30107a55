//go:build linux

// Package sshnodes plays several nodes on one machine for the tests and
// benchmarks of envctl move, drain, restore and failover: each node is a
// network namespace and a mount namespace of its own (held open by a
// sleeping process), joined to the test's namespace by a veth pair (node i
// is 10.98.i.2, the hub's end 10.98.i.1), running its own sshd on its own
// address with host and user keys made for the run. Every node sees one
// shared directory (the storage, with the file leases in it); envctl on a
// node reaches the others with the real OpenSSH client.
package sshnodes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/tests/testenv"
)

// TB is what the fixture needs of a *testing.T (benchenv.T has it too).
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// Cluster is the nodes and their shared storage.
type Cluster struct {
	t      TB
	Root   string // scratch directory
	DFS    string // the shared storage: NULLFS_ROOT, leases in DFS/leases
	Envctl string // the envctl every node runs
	Nodes  []*Node
	sshCfg string
}

// Node is one node.
type Node struct {
	c                        *Cluster
	I                        int
	Name, Home, Workdir, Cfg string
	holder                   *exec.Cmd
	sshd                     *exec.Cmd
	sshdCfg                  string
}

// Addr is the node's address.
func (n *Node) Addr() string { return fmt.Sprintf("10.98.%d.2", n.I) }

func (n *Node) hubIf() string { return fmt.Sprintf("mvhub%d", n.I) }

// New makes names[i] node i+1, each with extra config lines (extra may be
// nil), and starts their sshds. envctl is the program they run.
func New(t TB, root, envctl string, names []string, extra func(n *Node) string) *Cluster {
	t.Helper()
	for _, p := range []string{"ip", "nsenter", "unshare", "/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is missing (Debian: iproute2, util-linux, openssh-server, openssh-client): %v", p, err)
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		t.Fatalf("ip_forward: %v", err)
	}
	c := &Cluster{t: t, Root: root, DFS: filepath.Join(root, "dfs"), Envctl: envctl}
	must(t, os.MkdirAll(filepath.Join(c.DFS, "leases"), 0o755))
	// The shared lease directory, marked as envctl lease init does: it is
	// on the same filesystem as every node's root here.
	_, err := lease.InitDir(filepath.Join(c.DFS, "leases"), "test")
	must(t, err)
	keys := filepath.Join(root, "keys")
	must(t, os.MkdirAll(keys, 0o700))
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "envhooks-test", "-f", filepath.Join(keys, "id_ed25519"))
	must(t, copyFile(filepath.Join(keys, "id_ed25519.pub"), filepath.Join(keys, "authorized_keys")))
	var known bytes.Buffer
	for i, name := range names {
		n := &Node{c: c, I: i + 1, Name: name, Home: filepath.Join(root, name)}
		n.Workdir = filepath.Join(n.Home, "usr", "jails")
		n.Cfg = filepath.Join(n.Home, "envhooks.conf")
		must(t, os.MkdirAll(filepath.Join(n.Workdir, "jails-rcconf"), 0o755))
		hostKey := filepath.Join(n.Home, "ssh_host_ed25519_key")
		run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey)
		pub, err := os.ReadFile(hostKey + ".pub")
		must(t, err)
		fields := strings.Fields(string(pub))
		fmt.Fprintf(&known, "%s %s %s\n", n.Addr(), fields[0], fields[1])
		c.Nodes = append(c.Nodes, n)
	}
	c.sshCfg = filepath.Join(root, "ssh_config")
	must(t, os.WriteFile(filepath.Join(keys, "known_hosts"), known.Bytes(), 0o644))
	must(t, os.WriteFile(c.sshCfg, []byte(fmt.Sprintf(`Host *
  User root
  IdentityFile %[1]s/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile %[1]s/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  LogLevel ERROR
`, keys)), 0o644))
	var dests []string
	for _, n := range c.Nodes {
		dests = append(dests, n.Name+"="+n.Addr())
	}
	for _, n := range c.Nodes {
		more := ""
		if extra != nil {
			more = extra(n)
		}
		must(t, os.WriteFile(n.Cfg, []byte(fmt.Sprintf(`BACKEND=nullfs
NULLFS_ROOT=%[1]s
LEASE_DIR=%[1]s/leases
NODE_NAME=%[2]s
WORKDIR=%[3]s
STATE_DIR=%[4]s/state
INVENTORY_DIR=%[4]s/inventory
RUNNING_CHECK="/usr/bin/test -e %[4]s/running-%%j"
START_COMMAND="/usr/bin/touch %[4]s/running-%%j"
STOP_COMMAND="/bin/rm -f %[4]s/running-%%j"
SSH_DESTINATIONS="%[5]s"
SSH_OPTIONS="-F %[6]s"
SSH_CONNECT_TIMEOUT=2
SSH_TIMEOUT=60
REMOTE_ENVCTL=%[7]s
CBSD_DELEGATE=0
SYSLOG=0
UNMOUNT_TIMEOUT=1
%[8]s
`, c.DFS, n.Name, n.Workdir, n.Home, strings.Join(dests, " "), c.sshCfg, envctl, more)), 0o644))
		n.start()
	}
	return c
}

func (n *Node) start() {
	t := n.c.t
	n.holder = exec.Command("unshare", "--net", "--mount", "--propagation", "private", "sleep", "86400")
	n.holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, n.holder.Start())
	t.Cleanup(func() {
		// The namespaces and the node's mounts go with their holder; the
		// veth pair is deleted here and now, as the kernel frees a dead
		// namespace's devices only later and the next cluster reuses
		// the names.
		_ = exec.Command("ip", "link", "del", n.hubIf()).Run() // best effort: absent before the pair was made
		n.holder.Process.Kill()
		n.holder.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		self, _ := os.Readlink("/proc/self/ns/net")
		other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.holder.Process.Pid))
		otherNet, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", n.holder.Process.Pid))
		if err == nil && otherNet != self && other != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: its namespaces did not appear", n.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	pid := strconv.Itoa(n.holder.Process.Pid)
	peer := fmt.Sprintf("mvnode%d", n.I)
	run(t, "ip", "link", "add", n.hubIf(), "type", "veth", "peer", "name", peer, "netns", pid)
	run(t, "ip", "addr", "add", fmt.Sprintf("10.98.%d.1/24", n.I), "dev", n.hubIf())
	run(t, "ip", "link", "set", n.hubIf(), "up")
	in := n.prefix()
	run(t, append(in, "ip", "link", "set", "lo", "up")...)
	run(t, append(in, "ip", "addr", "add", n.Addr()+"/24", "dev", peer)...)
	run(t, append(in, "ip", "link", "set", peer, "up")...)
	run(t, append(in, "ip", "route", "add", "10.98.0.0/16", "via", fmt.Sprintf("10.98.%d.1", n.I))...)
	// sshd's privilege separation directory, in the node's own /run; a
	// home of its own for root, so the machine's shell start-up files do
	// not run in every ssh session.
	run(t, append(in, "mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")...)
	run(t, append(in, "mkdir", "-m", "0755", "/run/sshd")...)
	run(t, append(in, "mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", "/root")...)
	n.sshdCfg = filepath.Join(n.Home, "sshd_config")
	must(t, os.WriteFile(n.sshdCfg, []byte(fmt.Sprintf(`ListenAddress %s:22
HostKey %s/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile %s/keys/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv ENVHOOKS_CONFIG=%s
`, n.Addr(), n.Home, n.c.Root, n.Cfg)), 0o644))
	n.StartSSHD()
}

// prefix runs a program inside the node's namespaces.
func (n *Node) prefix() []string {
	return []string{"nsenter", "-t", strconv.Itoa(n.holder.Process.Pid), "-n", "-m", "--"}
}

// StartSSHD starts the node's sshd (again) and waits until it answers.
func (n *Node) StartSSHD() {
	t := n.c.t
	argv := append(n.prefix(), "/usr/sbin/sshd", "-D", "-e", "-f", n.sshdCfg)
	n.sshd = exec.Command(argv[0], argv[1:]...)
	n.sshd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	must(t, n.sshd.Start())
	sshd := n.sshd
	t.Cleanup(func() { sshd.Process.Kill(); sshd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		// From another node's place: the hub reaches every address.
		cmd := exec.Command("ssh", "-F", n.c.sshCfg, "-o", "BatchMode=yes", "-o", "ConnectTimeout=1", n.Addr(), "true")
		if err := cmd.Run(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: sshd does not answer on %s", n.Name, n.Addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// KillSSHD kills the node's sshd (SIGKILL): the node stays, nobody reaches
// it over ssh.
func (n *Node) KillSSHD() {
	n.sshd.Process.Kill()
	n.sshd.Wait()
}

// Cut takes the node's link down (true) or up again (false). Up again, it
// returns once the hub and the node reach each other again, as a link
// that comes back is usable only when each side has found the other's
// address anew: a node that gave its gateway up while the link was down
// answers "No route to host" until then.
func (n *Node) Cut(cut bool) {
	state := "up"
	if cut {
		state = "down"
	}
	run(n.c.t, "ip", "link", "set", n.hubIf(), state)
	if !cut {
		n.waitLink()
	}
}

// waitLink waits until a TCP connection from the hub to the node's ssh
// port is answered, accepted or refused (its sshd may be down): either
// way the node's reply came back over the link.
func (n *Node) waitLink() {
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(n.Addr(), "22"), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return
		}
		if time.Now().After(deadline) {
			n.c.t.Fatalf("node %s: its link is up again, but the hub does not reach %s: %v", n.Name, n.Addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Result is what a program run in a node left.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// In runs a program inside the node, with its config.
func (n *Node) In(env []string, prog string, args ...string) Result {
	argv := append(n.prefix(), prog)
	cmd := exec.Command(argv[0], append(argv[1:], args...)...)
	cmd.Env = append(append(os.Environ(), "ENVHOOKS_CONFIG="+n.Cfg), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Start()
	if err != nil {
		n.c.t.Fatalf("%s: %v", prog, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		n.c.t.Fatalf("%s %s on %s did not finish in 5 minutes", prog, strings.Join(args, " "), n.Name)
	}
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		n.c.t.Fatalf("%s: %v", prog, err)
	}
	return r
}

// Envctl runs envctl on the node.
func (n *Node) Envctl(args ...string) Result { return n.In(nil, n.c.Envctl, args...) }

// EnvctlCrash runs envctl on the node, killing itself after step.
func (n *Node) EnvctlCrash(step string, args ...string) Result {
	return n.In([]string{"ENVHOOKS_CRASH_AFTER=" + step}, n.c.Envctl, args...)
}

// Mounts lists the node's mount points under its workdir.
func (n *Node) Mounts() []string {
	return testenv.MountPoints(n.In(nil, "cat", "/proc/self/mountinfo").Stdout, n.Workdir)
}

// Registered says whether the node's inventory has jname.
func (n *Node) Registered(jname string) bool {
	_, err := os.Stat(filepath.Join(n.Home, "inventory", jname+".json"))
	return err == nil
}

// Running says whether jname runs on the node (its running file).
func (n *Node) Running(jname string) bool {
	_, err := os.Stat(filepath.Join(n.Home, "running-"+jname))
	return err == nil
}

// SetRunning marks jname running on the node, or not.
func (n *Node) SetRunning(jname string, on bool) {
	p := filepath.Join(n.Home, "running-"+jname)
	if on {
		must(n.c.t, os.WriteFile(p, nil, 0o644))
	} else {
		os.Remove(p)
	}
}

const descriptor = `relative_path="1";
jname="%[1]s";
path="CBSDROOT/jails/%[1]s";
data="CBSDROOT/jails-data/%[1]s-data";
mount_fstab="CBSDROOT/jails-fstab/%[1]s/fstab";
host_hostname="%[1]s.example.org";
emulator="jail";
`

// Create puts a new jail on the shared storage, with the descriptor
// CBSD's junregister would leave in n's jails-rcconf.
func (c *Cluster) Create(n *Node, jname string) {
	for _, role := range []string{"data", "system", "fstab", "rcconf"} {
		must(c.t, os.MkdirAll(filepath.Join(c.DFS, role, jname), 0o755))
	}
	must(c.t, os.WriteFile(filepath.Join(c.DFS, "data", jname, "data.txt"), []byte("the data of "+jname+"\n"), 0o644))
	must(c.t, os.WriteFile(filepath.Join(n.Workdir, "jails-rcconf", "rc.conf_"+jname), []byte(fmt.Sprintf(descriptor, jname)), 0o644))
}

// Owner is the node holding jname's lease ("" for none, "?" for a lease
// that cannot be read), as the lease store says.
func (c *Cluster) Owner(jname string) string {
	l, err := (&lease.FileStore{Dir: filepath.Join(c.DFS, "leases")}).Get(context.Background(), jname)
	switch {
	case err != nil:
		return "?"
	case l == nil:
		return ""
	}
	return l.Node
}

// JournalOpen says whether a move of jname is unfinished.
func (c *Cluster) JournalOpen(jname string) bool {
	_, err := os.Stat(filepath.Join(c.DFS, "leases", ".records", "journal", jname))
	return err == nil
}

func run(t TB, argv ...string) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

func must(t TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%v", err)
	}
}

func copyFile(from, to string) error {
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, raw, 0o600)
}

// Background starts envctl with args in the node and leaves it running;
// kill it with Kill (SIGKILL), as a node dying would.
func (n *Node) Background(args ...string) *exec.Cmd {
	argv := append(n.prefix(), append([]string{n.c.Envctl}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "ENVHOOKS_CONFIG="+n.Cfg)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(n.c.t, cmd.Start())
	n.c.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// WriteEnvConfig writes jname's own configuration on the node
// (envhooks.d/<jname>.conf beside its global one).
func (n *Node) WriteEnvConfig(jname, text string) {
	dir := filepath.Join(n.Home, "envhooks.d")
	must(n.c.t, os.MkdirAll(dir, 0o755))
	must(n.c.t, os.WriteFile(filepath.Join(dir, jname+".conf"), []byte(text), 0o644))
}

// CutCommand is a shell command line that takes the node's link down
// from inside any node (through the test's own network namespace), as
// Cut(true) does: for a STOP_COMMAND, START_COMMAND or SSH_COMMAND of a
// test that cuts the link at an exact point of what it runs.
func (n *Node) CutCommand() string {
	nsenter, err := exec.LookPath("nsenter")
	must(n.c.t, err)
	ip, err := exec.LookPath("ip")
	must(n.c.t, err)
	return fmt.Sprintf("%s -t %d -n %s link set %s down", nsenter, os.Getpid(), ip, n.hubIf())
}

// Install puts an executable script into the node's own /run (a tmpfs
// only root writes, as envhooks wants its configured executables) and
// returns its path there.
func (n *Node) Install(name, text string) string {
	src := filepath.Join(n.Home, "install-"+name)
	must(n.c.t, os.WriteFile(src, []byte(text), 0o644))
	dst := "/run/envhooks-test/" + name
	if r := n.In(nil, "install", "-D", "-m", "0755", src, dst); r.Code != 0 {
		n.c.t.Fatalf("install %s on %s: %s", name, n.Name, r.Stderr)
	}
	return dst
}

// SSHDPid is the process id of the node's sshd (the listener).
func (n *Node) SSHDPid() int { return n.sshd.Process.Pid }
