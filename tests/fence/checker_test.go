//go:build linux

// Package fence_test is the fencing history checker. Three nodes, each a
// set of processes of its own (envctl heartbeat, and a writer for every
// environment attached there), share one storage directory and one lease
// store (a directory, an nfs-ganesha, an etcd, started by the test in the
// network namespace testnet.Isolate makes). A writer stands for what runs
// in an environment: it appends "node generation sequence" lines to the
// environment's history file on the shared storage, the generation read
// from the owner record mnt-start wrote there. A seeded random schedule
// then partitions a holder from the lease store, SIGSTOPs it beyond the
// TTL, takes the lease store down for everyone, and kill -9s envctl
// (heartbeats, and takeovers half-way), while the other nodes run envctl
// jregister --takeover as an operator's script would. The checker then
// asserts:
//
//   - never a write of generation g after the first write of a later one;
//   - never two live nodes with the environment attached at once;
//   - a lease store outage alone stops nothing, and lets no takeover
//     through.
//
// A failing seed is printed; FENCECHECK_SEED replays it (with the same
// FENCECHECK_STEPS), FENCECHECK_SEEDS=N runs N seeds per driver and
// FENCECHECK_STEPS=N events per seed (make bench).
package fence_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/fence"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

const writerEnv = "ENVHOOKS_FENCECHECK_WRITER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(writerEnv); spec != "" {
		os.Exit(writer(spec))
	}
	testnet.Isolate()
	testenv.MainTeardown(m, teardown)
}

// writer appends "node generation sequence" to the history file until it
// is killed; spec is "history|node|owner record".
func writer(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "writer: want history|node|owner")
		return 64
	}
	o, err := fence.ReadOwner(context.Background(), filepath.Dir(filepath.Dir(parts[2])))
	if err != nil || o == nil {
		fmt.Fprintln(os.Stderr, "writer: no owner record:", err)
		return 66
	}
	f, err := os.OpenFile(parts[0], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 73
	}
	for seq := 1; ; seq++ {
		if _, err := fmt.Fprintf(f, "%s %d %d\n", parts[1], o.Generation, seq); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			return 74
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Timing: LEASE_TTL 3 s, so a holder fences after 2.25 s without a
// renewal and others take over after 3.75 s.
const ttl = 3

// The servers the checker's drivers share, made on first use and stopped
// when the test binary ends, with their data on a scratch tmpfs.
var (
	servers sync.Mutex // the relays are set up once, by one test at a time
	scratch = testenv.SharedTmpfs("envhooks-fencecheck-")
	nfs     = ganesha.Shared(scratch)
	etcd    = etcdcluster.Shared(scratch, 1)
)

func teardown() {
	etcd.Close()
	nfs.Close()
	scratch.Close()
}

// store is one lease driver as the checker drives it: each node's
// configuration lines, a partition of one node from the store, and an
// outage of the store for everyone.
type store struct {
	name   string
	conf   func(i int) string
	cut    func(i int, on bool)
	outage func(on bool)
}

// nodeAddr is node i's own address for the lease store: a blackhole
// route to it is node i's partition from the store, and only node i's.
func nodeAddr(i int) string { return fmt.Sprintf("127.0.0.%d", 21+i) }

func blackhole(t *testing.T, i int, on bool) {
	verb := "add"
	if !on {
		verb = "del"
	}
	out, err := exec.Command("ip", "route", verb, "blackhole", nodeAddr(i)+"/32", "table", "local").CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func newStore(t *testing.T, driver, root string) *store {
	servers.Lock()
	defer servers.Unlock()
	prefix := fmt.Sprintf("/fencecheck-%d", time.Now().UnixNano())
	switch driver {
	case "file":
		// A directory is the store: node i reaches it through a symlink of
		// its own, which a partition points at a file instead.
		leases := filepath.Join(root, "shared", "leases")
		blocked := filepath.Join(root, "shared", "unreachable")
		require.NoError(t, os.MkdirAll(leases, 0o755))
		_, err := lease.InitDir(leases, "test") // as envctl lease init: it is on the root filesystem
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(blocked, nil, 0o644))
		link := func(i int) string { return filepath.Join(root, fmt.Sprintf("leases-n%d", i)) }
		point := func(i int, to string) {
			tmp := link(i) + ".new"
			os.Remove(tmp)
			require.NoError(t, os.Symlink(to, tmp))
			require.NoError(t, os.Rename(tmp, link(i)))
		}
		for i := 0; i < 3; i++ {
			point(i, leases)
		}
		s := &store{name: driver, conf: func(i int) string { return "LEASE_BACKEND=file\nLEASE_DIR=" + link(i) + "\n" }}
		s.cut = func(i int, on bool) {
			if on {
				point(i, blocked)
			} else {
				point(i, leases)
			}
		}
		s.outage = func(on bool) {
			for i := 0; i < 3; i++ {
				s.cut(i, on)
			}
		}
		return s
	case "nfs":
		testenv.Require(t, ganesha.Commands...)
		srv := nfs.Get(t)
		return &store{name: driver,
			conf: func(i int) string {
				return fmt.Sprintf("LEASE_BACKEND=nfs\nLEASE_NFS_SERVER=%s\nLEASE_NFS_EXPORT=%s\nLEASE_DIR=%s%s\n", nodeAddr(i), srv.Export, srv.Export, prefix)
			},
			cut: func(i int, on bool) { blackhole(t, i, on) },
			// The server freezes: every node's calls hang until their
			// deadline, as with a dead server.
			outage: func(on bool) {
				sig := syscall.SIGCONT
				if on {
					sig = syscall.SIGSTOP
				}
				for _, pid := range srv.Pids() {
					syscall.Kill(pid, sig)
				}
			},
		}
	default:
		testenv.Require(t, etcdcluster.Commands...)
		// Node i talks to etcd through a relay on its own address, one
		// for all seeds.
		member := etcd.Get(t).Members[0]
		if !relaying {
			for i := 0; i < 3; i++ {
				relay(t, nodeAddr(i)+":2379", member.Addr+":2379")
			}
			relaying = true
		}
		return &store{name: driver,
			conf: func(i int) string {
				return fmt.Sprintf("LEASE_BACKEND=etcd\nETCD_ENDPOINTS=http://%s:2379\nLEASE_DIR=%s\n", nodeAddr(i), prefix)
			},
			cut: func(i int, on bool) { blackhole(t, i, on) },
			outage: func(on bool) {
				if on {
					member.Kill()
					return
				}
				require.NoError(t, member.Start())
			},
		}
	}
}

// relaying says the relays to etcd run.
var relaying bool

// relay forwards TCP connections from listen to target until the tests
// end.
func relay(t *testing.T, listen, target string) {
	l, err := net.Listen("tcp", listen)
	require.NoError(t, err)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.DialTimeout("tcp", target, time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.Close() }()
				io.Copy(c, u)
			}()
		}
	}()
}

// node is one node: its configuration, its processes, and whether a
// power fence switched it off.
type node struct {
	i         int
	name, dir string
	conf      string
	hb        *proc
	writers   map[string]*proc
	paused    bool
}

// proc is a process the checker started and reaps.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) signal(sig syscall.Signal) { syscall.Kill(-p.cmd.Process.Pid, sig) }

// run is one seed of one driver.
type run struct {
	t        *testing.T
	seed     uint64
	rng      *rand.Rand
	bin      string
	root     string // a directory only root can write: configured executables live here
	shared   string // the shared storage
	store    *store
	nodes    []*node
	holder   map[string]*node
	fencing  bool
	c        fence.Contract
	events   []string
	problems []string
	mu       sync.Mutex
	takeover int
	// The figures: from a cut to the holder's environments detached (its
	// local fence complete), and from a holder's SIGSTOP to its
	// environment attached elsewhere.
	fenced, moved []time.Duration
}

var jnames = []string{"web1", "web2"}

const descriptor = "jname=\"%[1]s\";\npath=\"CBSDROOT/jails/%[1]s\";\nemulator=\"jail\";\n"

func newRun(t *testing.T, driver string, seed uint64, fencing bool) *run {
	root, err := os.MkdirTemp("/var/lib", "envhooks-fencecheck-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(root, 0o755))
	r := &run{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), bin: testenv.Bin(t, "envctl"), root: root,
		shared: filepath.Join(root, "shared"), holder: map[string]*node{}, fencing: fencing,
		c: fence.Contract{TTL: ttl * time.Second, Interval: ttl * time.Second / 3, Margin: ttl * time.Second / 4, Fence: ttl * time.Second / 4, Skew: ttl * time.Second / 10}}
	t.Cleanup(func() {
		r.stopAll()
		os.RemoveAll(root)
	})
	for _, j := range jnames {
		testenv.WriteFile(t, filepath.Join(r.shared, "work", "jails-system", j, "rc.conf_"+j), fmt.Sprintf(descriptor, j), 0o644)
	}
	r.store = newStore(t, driver, root)
	r.script("stop-writer", "#!/bin/sh\n# STOP_COMMAND NODEDIR JNAME: the environment stops at once.\nf=\"$1/pids/writer-$2\"\nif [ -f \"$f\" ]; then kill -KILL -\"$(cat \"$f\")\" 2>/dev/null; rm -f \"$f\"; fi\necho \"$(basename \"$1\") $2\" >> "+filepath.Join(r.shared, "stops")+"\n")
	r.script("power-off", "#!/bin/sh\n# FENCE_HOOK NODE JNAME GENERATION: the node is switched off, as IPMI would.\nd="+filepath.Join(root, "nodes")+"/$1\ntouch \"$d/off\"\nfor f in \"$d\"/pids/*; do [ -f \"$f\" ] && kill -KILL -\"$(cat \"$f\")\" 2>/dev/null; done\nrm -f \"$d\"/pids/*\n")
	for i := 0; i < 3; i++ {
		n := &node{i: i, name: fmt.Sprintf("n%d", i), writers: map[string]*proc{}}
		n.dir = filepath.Join(root, "nodes", n.name)
		n.conf = filepath.Join(n.dir, "envhooks.conf")
		require.NoError(t, os.MkdirAll(filepath.Join(n.dir, "pids"), 0o755))
		conf := fmt.Sprintf("BACKEND=exec\nEXEC_HOOK=/bin/true\nNODE_NAME=%s\nWORKDIR=%s\nSTATE_DIR=%s/state\nINVENTORY_DIR=%s/inventory\nSYSLOG=0\nLEASE_TTL=%d\nLEASE_TIMEOUT=1\nCBSD_DELEGATE=0\nFENCE_WITNESS_DIR=%s\nSTOP_COMMAND=%s %s %%j\n",
			n.name, filepath.Join(r.shared, "work"), n.dir, n.dir, ttl, filepath.Join(r.shared, "witness"), filepath.Join(root, "stop-writer"), n.dir) + r.store.conf(i)
		if fencing {
			conf += "SELF_FENCE=1\nFENCE_HOOK=" + filepath.Join(root, "power-off") + "\n"
		} else {
			conf += "SELF_FENCE=0\n"
		}
		testenv.WriteFile(t, n.conf, conf, 0o644)
		r.nodes = append(r.nodes, n)
	}
	return r
}

func (r *run) script(name, text string) {
	require.NoError(r.t, os.WriteFile(filepath.Join(r.root, name), []byte(text), 0o755))
}

func (r *run) say(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("%s ", time.Now().Format("15:04:05.000"))+fmt.Sprintf(format, args...))
}

func (r *run) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (n *node) off() bool {
	_, err := os.Stat(filepath.Join(n.dir, "off"))
	return err == nil
}

// start runs argv as a process of node n, in a process group of its own,
// recorded under name in n's pid directory (the power fence kills those).
func (r *run) start(n *node, name string, env []string, out io.Writer, argv ...string) *proc {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "ENVHOOKS_CONFIG="+n.conf, "ENVHOOKS_RUNDIR="+filepath.Join(n.dir, "run")), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(r.t, cmd.Start())
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	if name != "" {
		require.NoError(r.t, os.WriteFile(filepath.Join(n.dir, "pids", name), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644))
	}
	return p
}

func (r *run) logFile(n *node, name string) *os.File {
	f, err := os.OpenFile(filepath.Join(n.dir, name+".log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(r.t, err)
	r.t.Cleanup(func() { f.Close() })
	return f
}

func (r *run) startHeartbeat(n *node) {
	n.hb = r.start(n, "heartbeat", nil, r.logFile(n, "heartbeat"), r.bin, "heartbeat")
}

func (r *run) startWriter(n *node, j string) {
	exe, err := os.Executable()
	require.NoError(r.t, err)
	owner := fence.OwnerFile(filepath.Join(r.shared, "work", "jails-data", j+"-data"))
	spec := strings.Join([]string{r.history(j), n.name, owner}, "|")
	n.writers[j] = r.start(n, "writer-"+j, []string{writerEnv + "=" + spec}, r.logFile(n, "writer"), exe)
}

func (r *run) history(j string) string { return filepath.Join(r.shared, j+".history") }

// envctl runs one envctl command on node n; killAfter > 0 kill -9s it
// then, half-way through.
func (r *run) envctl(n *node, killAfter time.Duration, args ...string) int {
	var out bytes.Buffer
	p := r.start(n, "", nil, &out, append([]string{r.bin}, args...)...)
	if killAfter > 0 {
		select {
		case <-p.done:
		case <-time.After(killAfter):
			p.signal(syscall.SIGKILL)
			<-p.done
			r.say("%s: kill -9 of envctl %s after %s", n.name, strings.Join(args, " "), killAfter)
			return -1
		}
	}
	<-p.done
	code := p.cmd.ProcessState.ExitCode()
	if code != 0 {
		r.say("%s: envctl %s: %d: %s", n.name, strings.Join(args, " "), code, lastLine(out.String()))
	}
	return code
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (r *run) stopAll() {
	for _, n := range r.nodes {
		if n.hb != nil {
			n.hb.signal(syscall.SIGKILL)
			<-n.hb.done
		}
		for _, w := range n.writers {
			w.signal(syscall.SIGKILL)
			<-w.done
		}
	}
	if r.store != nil {
		for i := range r.nodes {
			if r.store.name != "file" {
				exec.Command("ip", "route", "del", "blackhole", nodeAddr(i)+"/32", "table", "local").Run()
			}
		}
		if r.store.name == "nfs" {
			r.store.outage(false)
		}
	}
}

// watchAttached samples, until ctx ends, which live nodes have each
// environment attached (its attach record): never more than one.
func (r *run) watchAttached(ctx context.Context) {
	for ctx.Err() == nil {
		for _, j := range jnames {
			var at []string
			for _, n := range r.nodes {
				if n.off() {
					continue
				}
				if _, err := os.Stat(filepath.Join(n.dir, "state", j+".state")); err == nil {
					at = append(at, n.name)
				}
			}
			if len(at) > 1 {
				r.problem("%s attached on %s at once", j, strings.Join(at, " and "))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *run) live(except *node) []*node {
	var out []*node
	for _, n := range r.nodes {
		if n != except && !n.off() && !n.paused {
			out = append(out, n)
		}
	}
	return out
}

func (r *run) stops() int {
	raw, _ := os.ReadFile(filepath.Join(r.shared, "stops"))
	return bytes.Count(raw, []byte("\n"))
}

// takeOver moves every environment h holds to other live nodes with
// jregister --takeover, retried as an operator's script would, the first
// try sometimes kill -9'd half-way; it returns when all moved or by
// deadline.
func (r *run) takeOver(h *node, deadline time.Time) {
	var held []string
	for _, j := range jnames {
		if r.holder[j] == h {
			held = append(held, j)
		}
	}
	args := []string{"--takeover"}
	if !r.fencing {
		args = append(args, "--no-fence")
	}
	for _, j := range held {
		cands := r.live(h)
		if len(cands) == 0 {
			return
		}
		to := cands[r.rng.IntN(len(cands))]
		kill := time.Duration(0)
		if r.rng.IntN(3) == 0 {
			kill = time.Duration(r.rng.IntN(300)+1) * time.Millisecond
		}
		for time.Now().Before(deadline) {
			code := r.envctl(to, kill, append([]string{"jregister", j}, args...)...)
			kill = 0
			if code == 0 {
				r.say("%s took %s over from %s", to.name, j, h.name)
				r.holder[j] = to
				r.takeover++
				r.startWriter(to, j)
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
}

// timeFence waits for h's attach records to go, the end of its local
// fence, and records how long after the cut that was.
func (r *run) timeFence(h *node, cut time.Time) {
	var held []string
	for _, j := range jnames {
		if r.holder[j] == h {
			held = append(held, j)
		}
	}
	for time.Since(cut) < 2*r.c.TakeoverAfter() {
		gone := true
		for _, j := range held {
			if _, err := os.Stat(filepath.Join(h.dir, "state", j+".state")); err == nil {
				gone = false
			}
		}
		if gone {
			r.mu.Lock()
			r.fenced = append(r.fenced, time.Since(cut))
			r.mu.Unlock()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *run) randDuration(from, spread time.Duration) time.Duration {
	return from + time.Duration(r.rng.Int64N(int64(spread)))
}

// pickHolder picks a live node holding an environment.
func (r *run) pickHolder() *node {
	j := jnames[r.rng.IntN(len(jnames))]
	if h := r.holder[j]; h != nil && !h.off() {
		return h
	}
	return nil
}

func (r *run) event(kind string) {
	h := r.pickHolder()
	if h == nil || len(r.live(h)) == 0 {
		return
	}
	after := r.c.TakeoverAfter()
	switch kind {
	case "cut":
		d := r.randDuration(after+time.Second, 2*time.Second)
		r.say("cut %s off the lease store for %s", h.name, d)
		r.store.cut(h.i, true)
		cut := time.Now()
		healAt := cut.Add(d)
		go r.timeFence(h, cut)
		r.takeOver(h, time.Now().Add(after+4*time.Second))
		time.Sleep(time.Until(healAt))
		r.store.cut(h.i, false)
		r.say("healed %s", h.name)
	case "pause":
		d := r.randDuration(after+time.Second, 2*time.Second)
		r.say("SIGSTOP %s (heartbeat and writers) for %s", h.name, d)
		h.paused = true
		h.hb.signal(syscall.SIGSTOP)
		for _, w := range h.writers {
			w.signal(syscall.SIGSTOP)
		}
		stopped := time.Now()
		contAt := stopped.Add(d)
		before := r.takeover
		r.takeOver(h, time.Now().Add(after+4*time.Second))
		if r.takeover > before {
			r.mu.Lock()
			r.moved = append(r.moved, time.Since(stopped))
			r.mu.Unlock()
		}
		time.Sleep(time.Until(contAt))
		h.hb.signal(syscall.SIGCONT)
		for _, w := range h.writers {
			w.signal(syscall.SIGCONT)
		}
		h.paused = false
		r.say("SIGCONT %s", h.name)
	case "outage":
		d := r.randDuration(after+500*time.Millisecond, 1500*time.Millisecond)
		before := r.stops()
		r.say("lease store down for everyone for %s", d)
		r.store.outage(true)
		time.Sleep(d)
		r.store.outage(false)
		r.say("lease store back")
		// Right away a takeover must still be refused: the holder's
		// heartbeat is old, but the witness shows it alive.
		if to := r.live(h); len(to) > 0 {
			j := ""
			for _, k := range jnames {
				if r.holder[k] == h {
					j = k
				}
			}
			args := []string{"jregister", j, "--takeover"}
			if !r.fencing {
				args = append(args, "--no-fence")
			}
			if j != "" && r.envctl(to[0], 0, args...) == 0 {
				r.holder[j] = to[0]
				r.startWriter(to[0], j)
				r.problem("%s took %s over from %s, which sat out a lease store outage alive", to[0].name, j, h.name)
			}
		}
		time.Sleep(r.c.Interval + 500*time.Millisecond)
		if n := r.stops() - before; n > 0 && r.fencing {
			r.problem("a lease store outage alone stopped %d environment(s)", n)
		}
		for _, n := range r.nodes {
			for j, w := range n.writers {
				if r.holder[j] == n && !w.alive() {
					r.problem("the writer of %s on %s died across a lease store outage", j, n.name)
				}
			}
		}
	case "kill":
		d := r.randDuration(100*time.Millisecond, 900*time.Millisecond)
		r.say("kill -9 of %s's envctl heartbeat; the service manager restarts it after %s", h.name, d)
		h.hb.signal(syscall.SIGKILL)
		<-h.hb.done
		time.Sleep(d)
		r.startHeartbeat(h)
		time.Sleep(r.c.Interval)
	}
	time.Sleep(r.c.Interval)
}

// verdict reads each history and returns how many writes it checked and
// every write of a generation older than one already written.
func (r *run) verdict() (writes int, violations []string) {
	for _, j := range jnames {
		f, err := os.Open(r.history(j))
		if err != nil {
			continue
		}
		var newest uint64
		var first string
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			var who string
			var gen, seq uint64
			if _, err := fmt.Sscanf(sc.Text(), "%s %d %d", &who, &gen, &seq); err != nil {
				violations = append(violations, fmt.Sprintf("%s line %d is torn: %q", j, line, sc.Text()))
				continue
			}
			writes++
			switch {
			case gen > newest:
				newest, first = gen, fmt.Sprintf("line %d (%s)", line, who)
			case gen < newest:
				violations = append(violations, fmt.Sprintf("%s line %d: %s wrote generation %d after the first write of generation %d at %s", j, line, who, gen, newest, first))
			}
		}
		f.Close()
	}
	return writes, violations
}

// result is one seed's outcome.
type result struct {
	writes, takeovers int
	violations        []string
	problems          []string
	events            []string
	fenced, moved     []time.Duration
}

func (r *run) play(steps int, kinds []string) result {
	for i, n := range r.nodes {
		r.startHeartbeat(n)
		_ = i
	}
	time.Sleep(r.c.Interval + 200*time.Millisecond)
	for i, j := range jnames {
		n := r.nodes[i]
		require.Equal(r.t, 0, r.envctl(n, 0, "jregister", j), "registering %s on %s: %v", j, n.name, r.events)
		r.holder[j] = n
		r.startWriter(n, j)
	}
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() { r.watchAttached(ctx); close(watching) }()
	for s := 0; s < steps; s++ {
		r.event(kinds[r.rng.IntN(len(kinds))])
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-watching
	r.stopAll()
	r.mu.Lock()
	res := result{takeovers: r.takeover, problems: r.problems, events: r.events, fenced: r.fenced, moved: r.moved}
	r.mu.Unlock()
	res.writes, res.violations = r.verdict()
	return res
}

func seeds(t *testing.T, ci int) []uint64 {
	if s := os.Getenv("FENCECHECK_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return []uint64{v}
	}
	n := ci
	if s := os.Getenv("FENCECHECK_SEEDS"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	base := uint64(time.Now().UnixNano())
	out := make([]uint64, n)
	for i := range out {
		out[i] = base + uint64(i)
	}
	return out
}

// stepsPerSeed is how many events a seed's schedule has: 2 in CI,
// FENCECHECK_STEPS in make bench.
func stepsPerSeed(t *testing.T) int {
	if s := os.Getenv("FENCECHECK_STEPS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		return n
	}
	return 2
}

// TestHistory runs the checker for every lease driver with fencing on:
// self-fencing with the witness, and a power fence (FENCE_HOOK) before
// every takeover.
func TestHistory(t *testing.T) {
	testenv.Require(t, "ip")
	for _, driver := range []string{"file", "nfs", "etcd"} {
		t.Run(driver, func(t *testing.T) {
			total := result{}
			for _, seed := range seeds(t, 1) {
				r := newRun(t, driver, seed, true)
				res := r.play(stepsPerSeed(t), []string{"cut", "pause", "outage", "kill"})
				total.writes += res.writes
				total.takeovers += res.takeovers
				// FIGURE lines are what make bench sums up.
				for _, d := range res.fenced {
					t.Logf("FIGURE %s lease-loss-to-fenced %.3f", driver, d.Seconds())
				}
				for _, d := range res.moved {
					t.Logf("FIGURE %s holder-death-to-attached-elsewhere %.3f ttl %d", driver, d.Seconds(), ttl)
				}
				if len(res.violations) > 0 || len(res.problems) > 0 {
					t.Errorf("seed %d (replay: FENCECHECK_SEED=%d go test -run 'TestHistory/%s' ./tests/fence): %d violations, problems %v\nfirst violations: %v\nschedule:\n%s",
						seed, seed, driver, len(res.violations), res.problems, head(res.violations, 5), strings.Join(res.events, "\n"))
				}
				if res.writes == 0 {
					t.Errorf("seed %d: no writes checked", seed)
				}
			}
			t.Logf("COUNT %s seeds %d writes %d takeovers %d failed %v", driver, len(seeds(t, 1)), total.writes, total.takeovers, t.Failed())
		})
	}
}

// TestHistoryCatchesUnfencedTakeovers shows the checker can fail: with
// self-fencing off and takeovers run with --no-fence (envhooks before
// fencing), a holder cut off from the lease store keeps writing after
// another node took over, and the checker reports it.
func TestHistoryCatchesUnfencedTakeovers(t *testing.T) {
	testenv.Require(t, "ip")
	r := newRun(t, "file", uint64(time.Now().UnixNano()), false)
	res := r.play(1, []string{"cut"})
	require.Positive(t, res.takeovers, "the schedule took nothing over: %v", res.events)
	require.NotEmpty(t, res.violations, "no violation found with fencing off: the checker cannot fail\n%s", strings.Join(res.events, "\n"))
	t.Logf("fencing off: %d writes checked, %d violations (first: %s), problems: %d", res.writes, len(res.violations), res.violations[0], len(res.problems))
}

func head(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
