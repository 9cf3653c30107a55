//go:build linux

// Command scale is the cluster-scale benchmark of the ownership leases, on
// one machine. It starts the lease stores (a 3-member etcd cluster, an
// nfs-ganesha), and per row, in an emptied store, lets N simulated nodes
// (goroutines, each with a lease store and a node name of its own, driving
// the lease layer as envctl does; on etcd ten of them share a connection)
// acquire E environments between them and
// heartbeat as envctl heartbeat does, and runs two real envctl nodes beside
// them that migrate 1,000 more environments with nullfs mounts. It measures
// heartbeat calls and store writes per second, the store's CPU and size,
// envctl lease list and envctl list --json (wall time, peak memory), the time
// from a node's death to the takeover of all its environments, the wildcard
// migration, and the latency of a probe read every 20 ms throughout. Rows
// grow one of N or E tenfold at a time, and the tables give the growth
// between rows.
//
// go run ./tests/bench/scale [-large] [-only etcd|nfs] [-sizes NxE,...]
//
// -large adds the largest sizes (1,000 nodes and 100,000 environments).
// Everything runs in private network and mount namespaces and is stopped at
// the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testnet"
)

const (
	ttl         = 10 * time.Second // LEASE_TTL of every node; beats every TTL/3
	callTimeout = 5 * time.Second  // LEASE_TIMEOUT
	migrating   = 1000             // environments the two envctl nodes move
	parallel    = 8                // PARALLEL: takeovers and envctl wildcards at once
	steady      = 10 * time.Second // the heartbeat-only phase
	probeEvery  = 20 * time.Millisecond
)

type size struct{ nodes, envs int }

var (
	large    = flag.Bool("large", false, "also run the largest sizes (1,000 nodes with 100,000 environments)")
	only     = flag.String("only", "", "run one driver only: etcd or nfs")
	rowsFlag = flag.String("sizes", "", "rows to run instead of the default ones: NxE,NxE,... (10x1000,100x10000)")
)

func main() {
	if os.Getenv(spawnEnv) != "" {
		os.Exit(spawn(os.Args[1:]))
	}
	flag.Parse()
	if os.Geteuid() != 0 {
		benchenv.Fatal("the scale benchmark needs root (etcd, ganesha and bind mounts in private namespaces)")
	}
	for _, c := range append(append([]string{"unshare"}, ganesha.Commands...), etcdcluster.Commands...) {
		if _, err := exec.LookPath(c); err != nil {
			benchenv.Fatal("%s is not installed (tests/install-deps installs nfs-ganesha, rpcbind and etcd-server)", c)
		}
	}
	testnet.Isolate()
	benchenv.Exit(run())
}

// sizes are the rows of each driver: every row grows N or E tenfold over
// the one before. The NFS driver stops where its lease list and takeover,
// one read per environment, leave the time budget.
func sizes(driver string) []size {
	if *rowsFlag != "" {
		var out []size
		for _, f := range strings.Split(*rowsFlag, ",") {
			var sz size
			if _, err := fmt.Sscanf(f, "%dx%d", &sz.nodes, &sz.envs); err != nil || sz.nodes < 2 || sz.envs < sz.nodes || sz.envs%sz.nodes != 0 {
				benchenv.Fatal("-sizes: %q is not NxE with 2 <= N <= E, E a multiple of N", f)
			}
			out = append(out, sz)
		}
		return out
	}
	switch driver {
	case "etcd":
		s := []size{{10, 1000}, {100, 1000}, {100, 10000}, {1000, 10000}}
		if *large {
			s = append(s, size{1000, 100000})
		}
		return s
	default:
		s := []size{{10, 1000}, {100, 1000}}
		if *large {
			s = append(s, size{100, 10000})
		}
		return s
	}
}

func run() int {
	tmp := benchenv.TempDir("/var/tmp", "envhooks-bench-scale-")
	benchenv.Cleanup(func() { unmountUnder(tmp) }) // before the directory goes
	envctl := benchenv.Build(filepath.Join(tmp, "bin"), "cmd/envctl")
	dfs := filepath.Join(tmp, "dfs")
	a, b := newEnvNode(tmp, dfs, envctl, "a"), newEnvNode(tmp, dfs, envctl, "b")
	for i := 0; i < migrating; i++ {
		createEnv(dfs, a, migName(i))
	}
	var results []*rowResult
	row := 0
	holder, other := a, b
	for _, be := range []backend{&etcdBackend{dir: tmp}, &nfsBackend{dir: tmp}} {
		if *only != "" && *only != be.name() {
			continue
		}
		be.start()
		for _, sz := range sizes(be.name()) {
			row++
			results = append(results, runRow(be, row, sz, holder, other))
			// The environments stay where the migration took them.
			holder, other = other, holder
		}
		be.stop()
	}
	report(results)
	return 0
}

func migName(i int) string { return fmt.Sprintf("mig%04d", i) }
func envName(i int) string { return fmt.Sprintf("env%06d", i) }
func simName(i int) string { return fmt.Sprintf("sim%04d", i) }

// rowResult is one row's figures.
type rowResult struct {
	driver string
	size
	populate           time.Duration
	beatsPerSec        float64
	beatFails          int
	writesPerSec       float64       // -1: the store cannot tell
	cpu                float64       // percent of one core, heartbeat phase
	simCPU             float64       // this program's (the simulated nodes), heartbeat phase
	firstBeats         time.Duration // until every node's first beat, all started over one interval
	storeSize          int64
	beatLatency        string
	probeSteady        string
	leaseList          time.Duration
	leaseListRSS       int64
	listJSON           time.Duration
	listJSONRSS        int64
	unregister         time.Duration
	register           time.Duration
	probeMigrate       string
	cpuMigrate         float64
	takeEnvs           int
	detect, find, take time.Duration
	takeoverCall       string
	probeTakeover      string
	probeAll           []time.Duration
	load               string // the machine's load average at the row's end
}

// sim is a simulated node: a store of its own, holding its share of the
// environments and beating until stopped.
type sim struct {
	name  string
	store lease.Store
	stop  context.CancelFunc
	done  chan struct{}
}

// runRow measures one size. holder has the migrating environments
// registered (or none registered yet, in the first row) and moves them to
// other.
func runRow(be backend, row int, sz size, holder, other *envNode) *rowResult {
	r := &rowResult{driver: be.name(), size: sz}
	progress("%s N=%d E=%d: starting", r.driver, sz.nodes, sz.envs)
	be.row(row)
	ctx := context.Background()

	probeStore := be.open()
	defer lease.Close(probeStore)
	// The cluster runs this envctl from the start: whatever its first
	// heartbeat upgrades, it upgrades in an empty store.
	if u, ok := probeStore.(lease.Upgrader); ok {
		must(u.Upgrade(ctx))
	}
	probe := startProbe(probeStore)

	sims := make([]*sim, sz.nodes)
	for i := range sims {
		sims[i] = &sim{name: simName(i), store: be.node(i)}
	}
	defer func() {
		for _, s := range sims {
			if s.stop != nil {
				s.stop()
				<-s.done
			}
			lease.Close(s.store)
		}
	}()
	per := sz.envs / sz.nodes
	start := time.Now()
	populate(ctx, sims, per)
	r.populate = time.Since(start)
	progress("%s N=%d E=%d: %d leases acquired in %s", r.driver, sz.nodes, sz.envs, sz.envs, r.populate.Round(time.Millisecond))
	probe.phase(start)

	for _, n := range []*envNode{holder, other} {
		n.configure(be.config())
	}
	start = time.Now()
	holder.holdMigrating(be)
	probe.phase(start)

	// Heartbeats: every simulated node, and envctl heartbeat on a and b,
	// started spread over one interval as independent nodes would be.
	interval := ttl / 3
	beats := newMeter()
	up := startBeats(ctx, sims, beats, interval)
	for _, n := range []*envNode{holder, other} {
		n.startHeartbeat()
		defer n.stopHeartbeat()
	}
	r.firstBeats = awaitBeats(sims, up, beats)
	time.Sleep(interval)
	beats.take(time.Now())
	probe.phase(time.Now())
	start = time.Now()
	self := []int{os.Getpid()}
	ticks, selfTicks, writesBefore := cpuTicks(be.pids()), cpuTicks(self), be.writes()
	time.Sleep(steady)
	ticks, selfTicks = cpuTicks(be.pids())-ticks, cpuTicks(self)-selfTicks
	took := time.Since(start)
	r.simCPU = cpuShare(selfTicks, took)
	p := beats.take(start)
	r.beatsPerSec = float64(p.count("beat")) / took.Seconds()
	r.beatFails = p.fails["beat"]
	r.writesPerSec = -1
	if writesBefore >= 0 { // -1: the store cannot tell
		r.writesPerSec = float64(be.writes()-writesBefore) / took.Seconds()
	}
	r.cpu = cpuShare(ticks, took)
	r.storeSize = be.size()
	r.beatLatency = quantiles(p.times["beat"])
	r.probeSteady = probe.phase(start)
	progress("%s N=%d E=%d: every node beating after %s; %.1f beats/s, %.1f writes/s, store CPU %.0f%%, size %s", r.driver, sz.nodes, sz.envs, r.firstBeats.Round(time.Millisecond), r.beatsPerSec, r.writesPerSec, r.cpu, mib(r.storeSize))

	r.leaseList, r.leaseListRSS = leaseList(other, sz.envs+migrating)
	probe.phase(start)

	// The wildcard migration of 1,000 environments.
	start = time.Now()
	ticks = cpuTicks(be.pids())
	holder.mustRun("junregister", "jname=mig*")
	r.unregister = time.Since(start)
	other.mustRun("jregister", "jname=mig*")
	holder.registered, other.registered = 0, migrating
	r.register = time.Since(start) - r.unregister
	r.cpuMigrate = cpuShare(cpuTicks(be.pids())-ticks, time.Since(start))
	r.probeMigrate = probe.phase(start)
	progress("%s N=%d E=%d: migration %s + %s", r.driver, sz.nodes, sz.envs, r.unregister.Round(time.Millisecond), r.register.Round(time.Millisecond))

	var sts []struct{ State string }
	r.listJSON, r.listJSONRSS = best(3, func() (time.Duration, int64) {
		res := other.mustRun("--json", "list")
		must(json.Unmarshal(res.out, &sts))
		return res.took, res.rss
	})
	if len(sts) != migrating || sts[0].State != "registered-here" {
		benchenv.Fatal("list on %s shows %d environments (first %+v), want %d registered here", other.name, len(sts), sts[0], migrating)
	}
	probe.phase(start)

	// Node 0 dies (its heartbeat stops); node 1 takes over everything it
	// held, once etcd or the heartbeat file says it is dead.
	start = time.Now()
	r.takeEnvs, r.detect, r.find, r.take, r.takeoverCall = takeoverAll(ctx, sims[0], sims[1], per)
	r.probeTakeover = probe.phase(start)
	progress("%s N=%d E=%d: takeover of %d: dead after %s, found in %s, taken in %s", r.driver, sz.nodes, sz.envs, r.takeEnvs, r.detect.Round(time.Millisecond), r.find.Round(time.Millisecond), r.take.Round(time.Millisecond))

	r.probeAll = probe.stop()
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.load = strings.Join(strings.Fields(string(raw))[:3], " ")
	}
	return r
}

// prober reads one lease every probeEvery on a connection of its own, for
// the store's latency as every other client sees it, phase by phase.
type prober struct {
	m       *meter
	all     []time.Duration
	stopped context.CancelFunc
	done    chan struct{}
}

func startProbe(s lease.Store) *prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &prober{m: newMeter(), stopped: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(probeEvery)
		defer t.Stop()
		for {
			start := time.Now()
			_, err := s.Get(ctx, "probe")
			if ctx.Err() != nil {
				return
			}
			p.m.record("get", time.Since(start), err)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// phase returns the latencies recorded since the last phase, and keeps
// them for the row's whole figure.
func (p *prober) phase(since time.Time) string {
	ph := p.m.take(since)
	p.all = append(p.all, ph.all()...)
	return quantiles(ph.all())
}

// stop ends the probe and returns every latency it recorded.
func (p *prober) stop() []time.Duration {
	p.stopped()
	<-p.done
	return p.all
}

// startBeats starts every simulated node's heartbeat, spread over one
// interval as independent nodes would start, each beat recorded in beats;
// it counts the nodes whose first beat succeeded.
func startBeats(ctx context.Context, sims []*sim, beats *meter, interval time.Duration) *atomic.Int64 {
	up := new(atomic.Int64)
	for i, s := range sims {
		bctx, cancel := context.WithCancel(ctx)
		s.stop, s.done = cancel, make(chan struct{})
		go func(s *sim, delay time.Duration) {
			defer close(s.done)
			select {
			case <-bctx.Done():
				return
			case <-time.After(delay):
			}
			lease.Heartbeat(bctx, &beating{Liveness: s.store.(lease.Liveness), m: beats, up: up}, s.name, ttl, interval, func(error) {})
		}(s, interval*time.Duration(i)/time.Duration(len(sims)))
	}
	return up
}

// awaitBeats returns once every simulated node's first beat (an etcd
// grant and a write) succeeded, and how long that took; three minutes
// without it end the benchmark, naming the last failure.
func awaitBeats(sims []*sim, up *atomic.Int64, beats *meter) time.Duration {
	start := time.Now()
	for up.Load() < int64(len(sims)) {
		if time.Since(start) > 3*time.Minute {
			benchenv.Fatal("only %d of %d nodes beat within %s (last failure: %v)", up.Load(), len(sims), 3*time.Minute, beats.lastError())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// leaseList runs envctl lease list --json on n three times and keeps the
// best time and the largest memory; every one of want leases must be
// there, each with its owner alive.
func leaseList(n *envNode, want int) (time.Duration, int64) {
	var listed []struct {
		JName, Node, Heartbeat string
	}
	took, rss := best(3, func() (time.Duration, int64) {
		res := n.mustRun("--json", "lease", "list")
		must(json.Unmarshal(res.out, &listed))
		return res.took, res.rss
	})
	if len(listed) != want {
		benchenv.Fatal("lease list shows %d leases, want %d", len(listed), want)
	}
	for _, l := range listed {
		if l.Heartbeat != "alive" {
			benchenv.Fatal("lease list: %s of %s has heartbeat %q, want alive", l.JName, l.Node, l.Heartbeat)
		}
	}
	return took, rss
}

// populate has every simulated node acquire its share, 32 at a time.
func populate(ctx context.Context, sims []*sim, per int) {
	type job struct{ node, env int }
	jobs := make(chan job)
	var wg sync.WaitGroup
	var once sync.Once
	var failed error
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				s := sims[j.node]
				if _, err := s.store.Acquire(ctx, envName(j.env), s.name); err != nil {
					once.Do(func() { failed = fmt.Errorf("%s acquires %s: %w", s.name, envName(j.env), err) })
				}
			}
		}()
	}
	for k := 0; k < per*len(sims); k++ {
		jobs <- job{node: k / per, env: k}
	}
	close(jobs)
	wg.Wait()
	if failed != nil {
		benchenv.Fatal("%v", failed)
	}
}

// takeoverAll stops victim's heartbeat (the node dies) and has taker take
// over every environment victim held, as soon as the store lets it: it
// waits until victim counts as dead, finds victim's leases, and takes them
// PARALLEL at a time with the --takeover check.
func takeoverAll(ctx context.Context, victim, taker *sim, want int) (n int, detect, find, take time.Duration, calls string) {
	victim.stop()
	<-victim.done
	victim.stop = nil
	died := time.Now()
	awaitExpiry(ctx, taker.store, victim.name)
	expired := time.Now()
	names := heldBy(ctx, taker.store, victim.name)
	found := time.Now()
	if len(names) != want {
		benchenv.Fatal("%s held %d leases, want %d", victim.name, len(names), want)
	}
	m := newMeter()
	jobs := make(chan string)
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				start := time.Now()
				l, err := lease.TakeoverExpired(ctx, taker.store, j, taker.name, ttl)
				m.record("takeover", time.Since(start), err)
				if err != nil {
					benchenv.Fatal("takeover of %s: %v", j, err)
				}
				if l.Node != taker.name {
					benchenv.Fatal("takeover of %s gave it to %s", j, l.Node)
				}
			}
		}()
	}
	for _, j := range names {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	done := time.Now()
	if left := heldBy(ctx, taker.store, victim.name); len(left) != 0 {
		benchenv.Fatal("%s still holds %d leases after the takeover", victim.name, len(left))
	}
	p := m.take(found)
	return len(names), expired.Sub(died), found.Sub(expired), done.Sub(found), quantiles(p.times["takeover"])
}

// awaitExpiry returns once node's heartbeat has expired: etcd tells (a
// watch), the NFS driver is asked every TTL/20.
func awaitExpiry(ctx context.Context, s lease.Store, node string) {
	ctx, cancel := context.WithTimeout(ctx, 3*ttl)
	defer cancel()
	if err := lease.AwaitExpiry(ctx, s.(lease.Liveness), node, ttl); err != nil {
		benchenv.Fatal("%s still alive %s after its heartbeat stopped (%v)", node, 3*ttl, err)
	}
}

// heldBy lists the leases node holds: etcd through its index by owner, the
// NFS driver by reading every lease.
func heldBy(ctx context.Context, s lease.Store, node string) []string {
	ls, err := lease.HeldBy(ctx, s, node)
	if err != nil {
		benchenv.Fatal("the leases of %s: %v", node, err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.JName)
	}
	return out
}

// best runs f n times and keeps the shortest time and the largest memory.
func best(n int, f func() (time.Duration, int64)) (time.Duration, int64) {
	var took time.Duration
	var rss int64
	for i := 0; i < n; i++ {
		t, m := f()
		if i == 0 || t < took {
			took = t
		}
		rss = max(rss, m)
	}
	return took, rss
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scale: "+format+"\n", args...)
}

func must(err error) {
	if err != nil {
		benchenv.Fatal("%v", err)
	}
}

// envNode is a real envctl node: its own workdir, state and inventory, the
// shared nullfs root, and the row's lease store.
type envNode struct {
	name, home, workdir, cfg, dfs, envctl string
	hb                                    *exec.Cmd
	registered                            int // migrating environments registered here
}

func newEnvNode(tmp, dfs, envctl, name string) *envNode {
	home := filepath.Join(tmp, name)
	n := &envNode{name: name, home: home, workdir: filepath.Join(home, "jails"), cfg: filepath.Join(home, "envhooks.conf"), dfs: dfs, envctl: envctl}
	must(os.MkdirAll(filepath.Join(n.workdir, "jails-rcconf"), 0o755))
	return n
}

func (n *envNode) configure(store string) {
	must(os.WriteFile(n.cfg, []byte(fmt.Sprintf("BACKEND=nullfs\nNULLFS_ROOT=%s\n%sLEASE_TTL=%d\nLEASE_TIMEOUT=%d\nNODE_NAME=%s\nWORKDIR=%s\nSTATE_DIR=%s/state\nINVENTORY_DIR=%s/inventory\nSYSLOG=0\nMOUNT_FSTAB=0\nPARALLEL=%d\n",
		n.dfs, store, int(ttl.Seconds()), int(callTimeout.Seconds()), n.name, n.workdir, n.home, n.home, parallel)), 0o644))
}

type runResult struct {
	out  []byte
	took time.Duration
	rss  int64 // peak resident memory, bytes
}

func (n *envNode) mustRun(args ...string) runResult {
	self, err := os.Executable()
	must(err)
	rd, wr, err := os.Pipe()
	must(err)
	defer rd.Close()
	cmd := exec.Command(self, append([]string{n.envctl}, args...)...)
	cmd.Env = append(os.Environ(), "ENVHOOKS_CONFIG="+n.cfg, spawnEnv+"=1")
	cmd.ExtraFiles = []*os.File{wr}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	wr.Close()
	if err != nil {
		benchenv.Fatal("envctl %s on %s: %v\n%s", strings.Join(args, " "), n.name, err, tail(stderr.String()))
	}
	var rss int64
	if _, err := fmt.Fscan(rd, &rss); err != nil {
		benchenv.Fatal("envctl %s on %s: no memory figure: %v", strings.Join(args, " "), n.name, err)
	}
	return runResult{out: out, took: took, rss: rss}
}

// spawnEnv makes this program run the command it is given and report the
// command's peak memory on descriptor 3. A child's ru_maxrss counts the
// memory of the process that started it (Go starts children sharing its
// memory until they exec), so envctl is started from this small process,
// not from the benchmark with its thousand simulated nodes.
const spawnEnv = "ENVHOOKS_BENCH_SCALE_SPAWN"

func spawn(argv []string) int {
	report := os.NewFile(3, "rss")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, spawnEnv+"=") })
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		fmt.Fprintln(report, ru.Maxrss*1024)
	}
	return cmd.ProcessState.ExitCode()
}

// holdMigrating makes n the owner of the migrating environments in a fresh
// store: the first time by registering them (mounts, inventory), later by
// taking their leases again through the lease layer, since n still has them
// registered from the row before.
func (n *envNode) holdMigrating(be backend) {
	if n.registered == 0 {
		n.mustRun("jregister", "jname=mig*")
		n.registered = migrating
		return
	}
	s := be.open()
	defer lease.Close(s)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < migrating; i += 16 {
				if _, err := s.Acquire(context.Background(), migName(i), n.name); err != nil {
					benchenv.Fatal("%s acquires %s: %v", n.name, migName(i), err)
				}
			}
		}()
	}
	wg.Wait()
}

func (n *envNode) startHeartbeat() {
	cmd := exec.Command(n.envctl, "heartbeat")
	cmd.Env = append(os.Environ(), "ENVHOOKS_CONFIG="+n.cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(cmd.Start())
	n.hb = cmd
}

func (n *envNode) stopHeartbeat() {
	if n.hb == nil {
		return
	}
	n.hb.Process.Signal(syscall.SIGTERM)
	n.hb.Wait()
	n.hb = nil
}

func createEnv(dfs string, n *envNode, jname string) {
	for _, role := range []string{"data", "system"} {
		must(os.MkdirAll(filepath.Join(dfs, role, jname), 0o755))
	}
	must(os.WriteFile(filepath.Join(n.workdir, "jails-rcconf", "rc.conf_"+jname),
		[]byte(fmt.Sprintf("jname=\"%s\";\npath=\"CBSDROOT/jails/%s\";\ndata=\"CBSDROOT/jails-data/%s-data\";\nemulator=\"jail\";\n", jname, jname, jname)), 0o644))
}

// unmountUnder detaches every mount below dir, deepest first, so removing
// dir never reaches through one.
func unmountUnder(dir string) {
	raw, _ := os.ReadFile("/proc/self/mountinfo")
	var targets []string
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			targets = append(targets, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(targets)))
	for _, t := range targets {
		unix.Unmount(t, unix.MNT_DETACH)
	}
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
