//go:build linux

// Command lease is the lease drivers' benchmark. In one run, in a private
// network namespace, it starts an nfs-ganesha and a 3-member etcd cluster of
// its own on loopback and measures, per driver, the latency of one acquire
// plus one release (medians; targets: file under 2 ms, nfs under 10 ms,
// etcd under 20 ms), interleaved so load drift touches all alike; and how
// long after a node's heartbeat stops another node's takeover succeeds, as
// a ratio of LEASE_TTL (the heartbeat renews every TTL/3, so the ratio lies
// between 2/3 and 1 plus the polling step: never a takeover of a live node,
// never a wait much past the TTL). Everything it starts is stopped at the end.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/lease/etcdlease"
	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testnet"
)

const (
	rounds  = 300
	warmup  = 20
	ttl     = 2 * time.Second
	trials  = 3
	timeout = 3 * time.Second
)

func main() {
	if os.Geteuid() != 0 {
		benchenv.Fatal("the lease benchmark needs root (it starts ganesha and etcd in a private network namespace)")
	}
	for _, c := range append(append([]string{}, ganesha.Commands...), etcdcluster.Commands...) {
		if _, err := exec.LookPath(c); err != nil {
			benchenv.Fatal("%s is not installed (tests/install-deps installs nfs-ganesha, rpcbind and etcd-server)", c)
		}
	}
	testnet.Isolate()
	benchenv.Exit(run())
}

type driver struct {
	name, target string
	limit        time.Duration
	a, b         lease.Store
	times        []time.Duration
	ratios       []float64
}

func run() int {
	dir := benchenv.TempDir("", "envhooks-bench-lease-")
	srv, err := ganesha.Start(filepath.Join(dir, "ganesha"))
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	benchenv.Cleanup(srv.Stop)
	// etcd's data on this VM's disk: each write waits for an fsync, as in
	// production.
	cluster, err := etcdcluster.Start(filepath.Join(dir, "etcd"), 3)
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	benchenv.Cleanup(cluster.Stop)
	tmpfs := filepath.Join(dir, "tmpfs")
	os.MkdirAll(tmpfs, 0o755)
	if err := unix.Mount("tmpfs", tmpfs, "tmpfs", 0, "mode=0755"); err != nil {
		benchenv.Fatal("%v", err)
	}
	benchenv.Cleanup(func() { unix.Unmount(tmpfs, unix.MNT_DETACH) })

	nfsStore := func() lease.Store {
		return lease.NewNFSStore("127.0.0.1", srv.Export, srv.Export+"/leases", timeout)
	}
	etcdStore := func() lease.Store {
		s, err := etcdlease.New(cluster.Endpoints(), "/envhooks/leases", timeout)
		if err != nil {
			benchenv.Fatal("%v", err)
		}
		return s
	}
	ds := []*driver{
		{name: "file (local disk)", target: "< 2 ms", limit: 2 * time.Millisecond, a: &lease.FileStore{Dir: filepath.Join(dir, "file")}, b: &lease.FileStore{Dir: filepath.Join(dir, "file")}},
		{name: "file (tmpfs)", target: "< 2 ms", limit: 2 * time.Millisecond, a: &lease.FileStore{Dir: filepath.Join(tmpfs, "file")}, b: &lease.FileStore{Dir: filepath.Join(tmpfs, "file")}},
		{name: "nfs (ganesha, NFSv3 RPC)", target: "< 10 ms", limit: 10 * time.Millisecond, a: nfsStore(), b: nfsStore()},
		{name: "etcd (3 members, disk)", target: "< 20 ms", limit: 20 * time.Millisecond, a: etcdStore(), b: etcdStore()},
	}
	defer func() {
		for _, d := range ds {
			lease.Close(d.a)
			lease.Close(d.b)
		}
	}()
	ctx := context.Background()
	for i := 0; i < warmup+rounds; i++ {
		for _, d := range ds {
			start := time.Now()
			if _, err := d.a.Acquire(ctx, "web1", "a"); err != nil {
				benchenv.Fatal("%s acquire: %v", d.name, err)
			}
			if err := d.a.Release(ctx, "web1", "a"); err != nil {
				benchenv.Fatal("%s release: %v", d.name, err)
			}
			if i >= warmup {
				d.times = append(d.times, time.Since(start))
			}
		}
	}
	for _, d := range ds {
		for k := 0; k < trials; k++ {
			d.ratios = append(d.ratios, takeover(ctx, d, k))
		}
	}

	fmt.Printf("Lease drivers (lib/lease) on loopback in a private netns: acquire+release, %d rounds each, interleaved\n", rounds)
	rows := [][]string{{"driver", "median", "p90", "target", "verdict"}}
	for _, d := range ds {
		m := benchenv.Quantile(d.times, 0.5)
		rows = append(rows, []string{d.name, benchenv.Ms(m), benchenv.Ms(benchenv.Quantile(d.times, 0.9)), d.target, benchenv.Verdict(m < d.limit)})
	}
	benchenv.Table(rows)
	fmt.Printf("\nTakeover after the holder's heartbeat stops (LEASE_TTL %s, beats every TTL/3, taker polls every 50 ms), %d trials\n", ttl, trials)
	rows = [][]string{{"driver", "took/TTL (each trial)", "target", "verdict"}}
	for _, d := range ds {
		ok := true
		s := ""
		for _, r := range d.ratios {
			s += fmt.Sprintf("%.2f ", r)
			ok = ok && r >= 2.0/3 && r <= 1.25
		}
		rows = append(rows, []string{d.name, s, "2/3 .. 1.25", benchenv.Verdict(ok)})
	}
	benchenv.Table(rows)
	return 0
}

// takeover lets node a hold a lease and beat, stops the beat at a moment
// out of step with the beat interval, and times b's first successful
// jregister --takeover equivalent from that moment.
func takeover(ctx context.Context, d *driver, trial int) float64 {
	jname := fmt.Sprintf("dead%d", trial)
	if _, err := d.a.Acquire(ctx, jname, "a"); err != nil {
		benchenv.Fatal("%s: %v", d.name, err)
	}
	bctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		lease.Heartbeat(bctx, d.a.(lease.Liveness), "a", ttl, ttl/3, func(error) {})
	}()
	time.Sleep(ttl + time.Duration(trial)*ttl/7)
	stop()
	<-done
	died := time.Now()
	for {
		_, err := lease.TakeoverExpired(ctx, d.b, jname, "b", ttl)
		if err == nil {
			break
		}
		var ne *lease.NotExpiredError
		if !errors.As(err, &ne) {
			benchenv.Fatal("%s takeover: %v", d.name, err)
		}
		if time.Since(died) > 10*ttl {
			benchenv.Fatal("%s: no takeover %s after the heartbeat stopped", d.name, time.Since(died))
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(died)
	if err := d.b.Release(ctx, jname, "b"); err != nil {
		benchenv.Fatal("%s: %v", d.name, err)
	}
	return float64(took) / float64(ttl)
}
