//go:build linux

package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/envhooks/envhooks/tests/kernel/lab/proto"
)

// Config shapes one guest.
type Config struct {
	Name        string        // its host name (and so the default NODE_NAME)
	MemoryMiB   int           // 1024 when 0
	Forward     []int         // host loopback ports the guest reaches at HostAddr:port
	Expose      []Expose      // guest ports the host reaches on its loopback
	Modules     []string      // modules to load at boot (nfsv4, iscsi_tcp, ...)
	BootTimeout time.Duration // 2 minutes when 0
}

// Expose makes the guest's port Guest the host's 127.0.0.1:Host (qemu's
// hostfwd; restrict=on leaves it open). Another guest that forwards Host
// reaches it at HostAddr:Host: guests never reach each other otherwise.
type Expose struct{ Host, Guest int }

// Result is what a command run in the guest left.
type Result = proto.Result

// Guest is one running qemu guest.
type Guest struct {
	Name        string
	BootTook    time.Duration
	dir         string
	started     time.Time
	bootTimeout time.Duration
	qemu        *exec.Cmd
	exited      chan struct{}
	client      *rpc.Client
}

// Boot starts a guest and waits until its agent answers. The guest is
// killed and its files removed when the test ends.
func Boot(t T, cfg Config) *Guest {
	t.Helper()
	return BootAll(t, cfg)[0]
}

// BootAll boots several guests side by side and waits until every agent
// answers.
func BootAll(t T, cfgs ...Config) []*Guest {
	t.Helper()
	k := Prepare(t)
	gs := make([]*Guest, len(cfgs))
	for i, cfg := range cfgs {
		gs[i] = start(t, k, cfg)
	}
	for _, g := range gs {
		if err := g.connect(g.bootTimeout); err != nil {
			t.Fatalf("guest %s did not come up: %v\nqemu: %s\nconsole:\n%s", g.Name, err, g.readFile("qemu.log"), g.ConsoleTail(40))
		}
		g.BootTook = time.Since(g.started)
		t.Logf("guest %s up in %s (kernel %s)", g.Name, g.BootTook.Round(time.Millisecond), k.Version)
	}
	return gs
}

// start starts qemu for one guest and registers its end.
func start(t T, k *Kernel, cfg Config) *Guest {
	t.Helper()
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 1024
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 2 * time.Minute
	}
	if cfg.Name == "" {
		cfg.Name = "lab"
	}
	dir, err := os.MkdirTemp("", "envhooks-lab-"+cfg.Name+"-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	g := &Guest{Name: cfg.Name, dir: dir, exited: make(chan struct{}), bootTimeout: cfg.BootTimeout}
	g.qemu = exec.Command("qemu-system-x86_64", qemuArgs(k, cfg, dir, g.path("agent.sock"), g.path("console.log"))...)
	qlog, err := os.Create(g.path("qemu.log"))
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("%v", err)
	}
	g.qemu.Stdout, g.qemu.Stderr = qlog, qlog
	// It dies with this process, whatever becomes of the test.
	g.qemu.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	g.started = time.Now()
	if err := g.qemu.Start(); err != nil {
		qlog.Close()
		os.RemoveAll(dir)
		t.Fatalf("start qemu: %v", err)
	}
	go func() { g.qemu.Wait(); qlog.Close(); close(g.exited) }()
	t.Cleanup(func() {
		g.Kill(t)
		if g.client != nil {
			g.client.Close()
		}
		if left := killRelays(k.Relay, dir); len(left) > 0 {
			t.Errorf("guest %s: relays outlived qemu (killed): pids %v", g.Name, left)
		}
		if t.Failed() {
			t.Logf("guest %s console (last lines):\n%s\nqemu: %s", g.Name, g.ConsoleTail(40), g.readFile("qemu.log"))
		}
		os.RemoveAll(dir)
	})
	return g
}

// killRelays kills, by process id, the relays qemu spawned for the guest
// whose directory is tag. qemu spawns them detached, so they are not its
// children; each ends by itself when qemu closes its connection, which it
// does when it dies, so this finds one only when a relay misbehaves. It
// waits a little for relays still closing.
func killRelays(relay, tag string) []int {
	find := func() []int {
		var pids []int
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
			if err != nil || len(args) < 3 || args[0] != relay || args[len(args)-1] != tag {
				continue
			}
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := find()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func qemuArgs(k *Kernel, cfg Config, tag, sock, console string) []string {
	netdev := "user,id=n0,restrict=on"
	for _, p := range cfg.Forward {
		// A comma inside a -netdev value is written twice.
		relay := strings.ReplaceAll(fmt.Sprintf("%s 127.0.0.1:%d %s", k.Relay, p, tag), ",", ",,")
		netdev += fmt.Sprintf(",guestfwd=tcp:%s:%d-cmd:%s", HostAddr, p, relay)
	}
	for _, e := range cfg.Expose {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-%s:%d", e.Host, GuestAddr, e.Guest)
	}
	cmdline := []string{
		"console=ttyS0", "panic=-1", "net.ifnames=0", "quiet",
		"LAB_AGENT=" + k.Agent,
		"LAB_MODULE_DIR=" + k.Modules,
		"LAB_HOSTNAME=" + cfg.Name,
		"LAB_ADDR=" + GuestAddr + "/24",
	}
	if len(cfg.Modules) > 0 {
		cmdline = append(cmdline, "LAB_MODULES="+strings.Join(cfg.Modules, ","))
	}
	return []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-pidfile", filepath.Join(tag, "qemu.pid"),
		"-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", strconv.Itoa(cfg.MemoryMiB),
		"-kernel", k.Image, "-initrd", k.Initrd, "-append", strings.Join(cmdline, " "),
		"-serial", "file:" + console,
		"-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=agent,path=" + sock + ",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=" + proto.PortName,
	}
}

// connect dials the agent's port and waits for its hello.
func (g *Guest) connect(limit time.Duration) error {
	sock := g.path("agent.sock")
	deadline := g.started.Add(limit)
	var conn net.Conn
	for {
		var err error
		conn, err = net.Dial("unix", sock)
		if err == nil {
			break
		}
		select {
		case <-g.exited:
			return errors.New("qemu exited")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no agent socket within %s", limit)
		}
	}
	hello := make(chan error, 1)
	r := bufio.NewReader(conn)
	go func() {
		line, err := r.ReadString('\n')
		if err == nil && line != proto.Hello {
			err = fmt.Errorf("unexpected greeting %q", line)
		}
		hello <- err
	}()
	select {
	case err := <-hello:
		if err != nil {
			conn.Close()
			return err
		}
	case <-g.exited:
		conn.Close()
		return errors.New("qemu exited before the agent was ready")
	case <-time.After(time.Until(deadline)):
		conn.Close()
		return fmt.Errorf("the agent did not answer within %s", limit)
	}
	g.client = rpc.NewClient(struct {
		io.Reader
		io.WriteCloser
	}{r, conn})
	return nil
}

// call makes one RPC, bounded by limit.
func (g *Guest) call(method string, args, reply any, limit time.Duration) error {
	c := g.client.Go("Agent."+method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-c.Done:
		return c.Error
	case <-g.exited:
		return fmt.Errorf("guest %s is gone (qemu exited)", g.Name)
	case <-time.After(limit):
		return fmt.Errorf("guest %s: %s got no answer within %s", g.Name, method, limit)
	}
}

// slack is what the host adds to a command's own timeout before it gives
// up on the agent's answer.
const slack = 30 * time.Second

// Exec runs a command in the guest and returns its result. Only a broken
// guest fails the test; the command's own failure is in the result.
func (g *Guest) Exec(t T, c proto.Command) Result {
	t.Helper()
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	var res Result
	if err := g.call("Run", c, &res, c.Timeout+slack); err != nil {
		t.Fatalf("%s: %s: %v", g.Name, strings.Join(c.Argv, " "), err)
	}
	if res.Err != "" {
		t.Fatalf("%s: %s: %s", g.Name, strings.Join(c.Argv, " "), res.Err)
	}
	return res
}

// Run runs argv in the guest with extra environment (KEY=value).
func (g *Guest) Run(t T, env []string, timeout time.Duration, argv ...string) Result {
	t.Helper()
	return g.Exec(t, proto.Command{Argv: argv, Env: env, Timeout: timeout})
}

// Sh runs a shell script in the guest and fails the test unless it exits 0;
// it returns the script's stdout.
func (g *Guest) Sh(t T, script string) string {
	t.Helper()
	res := g.Exec(t, proto.Command{Argv: []string{"sh", "-ec", script}, Timeout: 2 * time.Minute})
	if res.Code != 0 {
		t.Fatalf("%s: sh -ec %q: exit %d%s\nstdout: %s\nstderr: %s", g.Name, script, res.Code, timedOut(res), res.Stdout, res.Stderr)
	}
	return string(res.Stdout)
}

func timedOut(r Result) string {
	if r.TimedOut {
		return " (killed at its deadline)"
	}
	return ""
}

// Proc is a command started in the background.
type Proc struct {
	PID int // in the guest
	g   *Guest
	id  int
}

// Start starts a command in the guest without waiting for it.
func (g *Guest) Start(t T, c proto.Command) *Proc {
	t.Helper()
	var st proto.Started
	if err := g.call("Start", c, &st, slack); err != nil {
		t.Fatalf("%s: start %s: %v", g.Name, strings.Join(c.Argv, " "), err)
	}
	return &Proc{PID: st.PID, g: g, id: st.ID}
}

// Wait waits up to limit for the command; ok is false if it still runs.
func (p *Proc) Wait(t T, limit time.Duration) (res Result, ok bool) {
	t.Helper()
	var w proto.WaitResult
	if err := p.g.call("Wait", proto.Wait{ID: p.id, Timeout: limit}, &w, limit+slack); err != nil {
		t.Fatalf("%s: wait: %v", p.g.Name, err)
	}
	return w.Result, !w.Running
}

// Signal signals the command's process group, if it still runs.
func (p *Proc) Signal(t T, sig syscall.Signal) {
	t.Helper()
	if err := p.g.call("Signal", proto.Signal{ID: p.id, Signal: int(sig)}, &struct{}{}, slack); err != nil {
		t.Fatalf("%s: signal: %v", p.g.Name, err)
	}
}

// WriteFile writes a file in the guest's own filesystem.
func (g *Guest) WriteFile(t T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := g.call("WriteFile", proto.File{Path: path, Data: data, Mode: uint32(mode)}, &struct{}{}, slack); err != nil {
		t.Fatalf("%s: write %s: %v", g.Name, path, err)
	}
}

// ReadFile reads a file in the guest (a /proc file, a result).
func (g *Guest) ReadFile(t T, path string) []byte {
	t.Helper()
	var b []byte
	if err := g.call("ReadFile", path, &b, slack); err != nil {
		t.Fatalf("%s: read %s: %v", g.Name, path, err)
	}
	return b
}

// Procs lists the guest's processes.
func (g *Guest) Procs(t T) []proto.Process {
	t.Helper()
	var ps []proto.Process
	if err := g.call("Procs", struct{}{}, &ps, slack); err != nil {
		t.Fatalf("%s: list processes: %v", g.Name, err)
	}
	return ps
}

// Dmesg returns the guest kernel's log.
func (g *Guest) Dmesg(t T) string {
	t.Helper()
	var s string
	if err := g.call("Log", struct{}{}, &s, slack); err != nil {
		t.Fatalf("%s: dmesg: %v", g.Name, err)
	}
	return s
}

// Kill ends the guest at once, as a power failure would: SIGKILL to qemu's
// process group, by its id. It does nothing if the guest is gone.
func (g *Guest) Kill(t T) {
	t.Helper()
	select {
	case <-g.exited:
		return
	default:
	}
	syscall.Kill(-g.qemu.Process.Pid, syscall.SIGKILL)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("qemu of guest %s (pid %d) did not exit after SIGKILL", g.Name, g.qemu.Process.Pid)
	}
}

// Poweroff asks the guest to power off and waits for qemu to exit.
func (g *Guest) Poweroff(t T) {
	t.Helper()
	if err := g.call("Poweroff", struct{}{}, &struct{}{}, slack); err != nil {
		t.Fatalf("%s: poweroff: %v", g.Name, err)
	}
	select {
	case <-g.exited:
	case <-time.After(time.Minute):
		t.Fatalf("guest %s did not power off within a minute", g.Name)
	}
}

func (g *Guest) path(name string) string { return filepath.Join(g.dir, name) }

func (g *Guest) readFile(name string) string {
	b, _ := os.ReadFile(g.path(name))
	return string(b)
}

// ConsoleTail returns the last n lines of the guest's serial console.
func (g *Guest) ConsoleTail(n int) string {
	lines := strings.Split(strings.TrimRight(g.readFile("console.log"), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
