package envctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/failures"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/running"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// The figures envctl metrics exposes, in the Prometheus text format through
// the Prometheus Go client (which only envctl links: the hooks record their
// failures in lib/failures, which needs nothing of it).
var (
	attachedDesc = prometheus.NewDesc("envhooks_environment_attached",
		"1 when everything this node's state record lists for the environment is mounted, 0 when some or all of it is not.", []string{"jname", "kind"}, nil)
	ownedDesc = prometheus.NewDesc("envhooks_environment_owned",
		"1 when this node holds the environment's ownership lease, 0 when another node or none does.", []string{"jname", "kind"}, nil)
	registeredDesc = prometheus.NewDesc("envhooks_environment_registered",
		"1 when the environment is in this node's inventory (envctl jregister, bregister, cregister).", []string{"jname", "kind"}, nil)
	generationDesc = prometheus.NewDesc("envhooks_environment_generation",
		"The generation of the environment's lease: it grows with every new owner.", []string{"jname", "kind", "owner"}, nil)
	leaseAgeDesc = prometheus.NewDesc("envhooks_environment_lease_age_seconds",
		"Seconds since the environment's current owner took its lease.", []string{"jname", "kind", "owner"}, nil)
	runningDesc = prometheus.NewDesc("envhooks_environment_running",
		"1 when the environment runs on this node (RUNNING_CHECK), 0 when it does not; absent when that cannot be told.", []string{"jname", "kind"}, nil)
	heartbeatDesc = prometheus.NewDesc("envhooks_node_heartbeat_age_seconds",
		"Seconds since the node last renewed its liveness (envctl heartbeat): this node and every node holding a lease; over LEASE_TTL, others may take its environments over.", []string{"node"}, nil)
	ttlDesc = prometheus.NewDesc("envhooks_lease_ttl_seconds",
		"LEASE_TTL: heartbeats older than this count as dead.", nil, nil)
	storeUpDesc = prometheus.NewDesc("envhooks_lease_store_up",
		"1 when the lease store answered this collection, 0 when it did not (the figures that need it are missing then).", []string{"backend"}, nil)
	failureDesc = prometheus.NewDesc("envhooks_last_failure_timestamp_seconds",
		"When each program last exited with each code since the node booted, and on which environment.", []string{"program", "code", "jname"}, nil)
)

// nodeCollector gathers this node's figures whenever it is collected: the
// inventory, the state records and the leases this node holds, the
// heartbeats of every lease holder, and the hooks' failure records.
type nodeCollector struct {
	n       *Node
	ctx     context.Context
	timeout time.Duration // for the lease store, per collection
	now     func() time.Time
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{attachedDesc, ownedDesc, registeredDesc, generationDesc, leaseAgeDesc, runningDesc, heartbeatDesc, ttlDesc, storeUpDesc, failureDesc} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	now := c.now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	n := c.n
	ttl := n.Config.Seconds(lease.TTLKey)
	gauge(ttlDesc, ttl.Seconds())

	// One list of the leases and one read of the mount table for all:
	// what needs the lease store is left out when it does not answer,
	// what is local is still reported.
	all, listErr := n.Leases.List(ctx)
	gauge(storeUpDesc, bit(listErr == nil), n.Config.Get(lease.BackendKey))
	leases := map[string]lease.Lease{}
	for _, l := range all {
		leases[l.JName] = l
	}
	tab, tabErr := mounttab.Read()
	names, owners := c.environments(all, listErr == nil)
	states := state.Store{Dir: n.Config.Get(config.StateDir)}
	for _, name := range names {
		kind := Jail
		rec, err := n.Inv.Load(name)
		if err != nil {
			n.Log.Debug("metrics: %s: %v", name, err)
		}
		if rec != nil {
			kind = rec.Kind
		}
		gauge(registeredDesc, bit(rec != nil), name, kind)
		if attached, err := states.Load(name); err == nil && tabErr == nil {
			gauge(attachedDesc, bit(attached != nil && mountsOf(attached) > 0 && mountedOf(tab, attached) == mountsOf(attached)), name, kind)
		}
		if listErr == nil {
			l, owned := leases[name]
			gauge(ownedDesc, bit(owned && l.Node == n.Name), name, kind)
			if owned {
				gauge(generationDesc, float64(l.Generation), name, kind, l.Node)
				if !l.Since.IsZero() {
					gauge(leaseAgeDesc, now.Sub(l.Since).Seconds(), name, kind, l.Node)
				}
			}
		}
		if running.Configured(n.Config, kind) {
			if on, _, err := running.Check(ctx, n.runner(), n.Config, name, kind); err == nil {
				gauge(runningDesc, bit(on), name, kind)
			}
		}
	}
	if lv, ok := n.Leases.(lease.Liveness); ok && listErr == nil {
		for _, node := range owners {
			_, known, last, err := lv.Alive(ctx, node, ttl)
			if err == nil && known && !last.IsZero() {
				gauge(heartbeatDesc, now.Sub(last).Seconds(), node)
			}
		}
	}
	fs, err := failures.List(failures.Dir(quick.Dir()))
	if err != nil {
		n.Log.Debug("metrics: failure records: %v", err)
	}
	for _, f := range fs {
		gauge(failureDesc, float64(f.Time.Unix()), f.Program, strconv.Itoa(f.Code), f.JName)
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// environments are the ones this node knows of (its inventory, its state
// records) and those whose lease it holds; owners are this node and every
// node holding a lease, whose heartbeats are reported.
func (c *nodeCollector) environments(all []lease.Lease, listed bool) (names, owners []string) {
	n := c.n
	seen := map[string]bool{}
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	registered, _, err := n.Inv.Names() // stray files are not environments
	if err != nil {
		n.Log.Debug("metrics: inventory: %v", err)
	}
	for _, name := range registered {
		add(name)
	}
	records, _ := filepath.Glob(state.Store{Dir: n.Config.Get(config.StateDir)}.Path("*"))
	for _, p := range records {
		add(strings.TrimSuffix(filepath.Base(p), ".state"))
	}
	nodes := map[string]bool{n.Name: true}
	if listed {
		for _, l := range all {
			if l.Node == n.Name {
				add(l.JName)
			}
			if l.Node != lease.OrphanNode {
				nodes[l.Node] = true
			}
		}
	}
	for node := range nodes {
		owners = append(owners, node)
	}
	sort.Strings(names)
	sort.Strings(owners)
	return names, owners
}

// registry holds the node's collector; every gather collects afresh.
func (n *Node) registry(ctx context.Context) *prometheus.Registry {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&nodeCollector{n: n, ctx: ctx, timeout: n.Config.Seconds(lease.TimeoutKey) * 2, now: time.Now})
	return reg
}

// textfileName is the file envctl metrics --textfile writes in the
// directory node_exporter's textfile collector reads.
const textfileName = "envhooks.prom"

// metrics writes the figures to w, or atomically to dir/envhooks.prom when
// dir is given (a temporary file renamed over it, so node_exporter never
// reads half a file).
func (n *Node) metrics(ctx context.Context, w io.Writer, dir string) error {
	reg := n.registry(ctx)
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return sysexits.New(sysexits.CantCreat, "--textfile %s: not a directory (node_exporter's --collector.textfile.directory)", dir)
		}
		path := filepath.Join(dir, textfileName)
		if n.DryRun {
			fmt.Fprintf(n.Out, "# write %s\n", path)
			return nil
		}
		if err := prometheus.WriteToTextfile(path, reg); err != nil {
			return sysexits.New(sysexits.CantCreat, "cannot write %s: %v", path, err)
		}
		return nil
	}
	mfs, err := reg.Gather()
	if err != nil {
		return sysexits.New(sysexits.Software, "metrics: %v", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// serveMetrics serves the figures on http://addr/metrics until ctx ends.
// The listener is opened before it returns, so a bad address fails the
// command at once.
func (n *Node) serveMetrics(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return sysexits.New(sysexits.Unavailable, "--listen %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.registry(ctx), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close() // the heartbeat is over; nothing is left to serve

	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.Log.Error("metrics on %s stopped: %v", addr, err)
		}
	}()
	n.Log.Action("serving metrics on http://%s/metrics", l.Addr())
	return nil
}
