//go:build linux

package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/lease/etcdlease"
	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
)

// backend is a lease store as the benchmark drives it: one server (or
// cluster) for every row of its driver, emptied between rows, opened once
// per simulated node, and measured from the outside.
type backend interface {
	name() string
	start()
	// row empties the store for a new row.
	row(n int)
	// open is a store with a connection of its own; node is simulated
	// node i's store, whose connection may be shared with other
	// simulated nodes.
	open() lease.Store
	node(i int) lease.Store
	// config is the LEASE_* lines of envctl's configuration.
	config() string
	pids() []int
	// size is what the store takes on disk, in bytes.
	size() int64
	// writes counts the writes the store applied so far, or -1 when it
	// cannot tell.
	writes() int64
	stop()
}

// etcdBackend is one 3-member cluster with etcd's own timing, its data on
// this machine's disk, so every write waits for fsyncs as in production. Between rows every key is
// deleted, the history compacted and the members defragmented, so each
// row's database starts from empty.
type etcdBackend struct {
	dir     string
	cluster *etcdcluster.Cluster
	client  *clientv3.Client
	shared  []*clientv3.Client
}

// nodesPerClient simulated nodes share one etcd client (three connections,
// one per member): a thousand clients' own HTTP/2 upkeep would cost this
// 2-core machine more than etcd's work, and measure this process instead.
const nodesPerClient = 10

const etcdPrefix = "/envhooks/leases"

func (e *etcdBackend) name() string { return "etcd" }

func (e *etcdBackend) start() {
	c, err := etcdcluster.StartAsDeployed(filepath.Join(e.dir, "etcd"), 3)
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	e.cluster = c
	benchenv.Cleanup(c.Stop)
	if e.client, err = c.Client(); err != nil {
		benchenv.Fatal("%v", err)
	}
}

func (e *etcdBackend) row(int) {
	for _, c := range e.shared {
		c.Close()
	}
	e.shared = nil
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := e.client.Delete(ctx, "/", clientv3.WithPrefix())
	if err == nil {
		_, err = e.client.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	}
	for _, ep := range e.cluster.Endpoints() {
		if err == nil {
			_, err = e.client.Defragment(ctx, ep)
		}
	}
	if err != nil {
		benchenv.Fatal("emptying etcd: %v", err)
	}
}

func (e *etcdBackend) open() lease.Store {
	s, err := etcdlease.New(e.cluster.Endpoints(), etcdPrefix, callTimeout)
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	return s
}

func (e *etcdBackend) node(i int) lease.Store {
	for len(e.shared) <= i/nodesPerClient {
		c, err := e.cluster.Client()
		if err != nil {
			benchenv.Fatal("%v", err)
		}
		e.shared = append(e.shared, c)
	}
	return etcdlease.Over(e.shared[i/nodesPerClient], etcdPrefix, callTimeout)
}

func (e *etcdBackend) config() string {
	return fmt.Sprintf("LEASE_BACKEND=etcd\nLEASE_DIR=%s\nETCD_ENDPOINTS=%s\n", etcdPrefix, strings.Join(e.cluster.Endpoints(), ","))
}

func (e *etcdBackend) pids() []int {
	var out []int
	for _, m := range e.cluster.Members {
		out = append(out, m.Pid())
	}
	return out
}

// status asks every member and keeps the largest database and revision.
func (e *etcdBackend) status() (db, rev int64) {
	for _, ep := range e.cluster.Endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		st, err := e.client.Status(ctx, ep)
		cancel()
		if err != nil {
			benchenv.Fatal("etcd status of %s: %v", ep, err)
		}
		db, rev = max(db, st.DbSize), max(rev, st.Header.Revision)
	}
	return db, rev
}

func (e *etcdBackend) size() int64   { db, _ := e.status(); return db }
func (e *etcdBackend) writes() int64 { _, rev := e.status(); return rev }

func (e *etcdBackend) stop() {
	for _, c := range e.shared {
		c.Close()
	}
	e.client.Close()
	e.cluster.Stop()
}

// nfsBackend is one ganesha, with a fresh lease directory per row.
type nfsBackend struct {
	dir    string
	srv    *ganesha.Server
	leases string
}

func (n *nfsBackend) name() string { return "nfs" }

func (n *nfsBackend) start() {
	srv, err := ganesha.Start(filepath.Join(n.dir, "ganesha"))
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	n.srv = srv
	benchenv.Cleanup(srv.Stop)
}

func (n *nfsBackend) row(row int) {
	if n.leases != "" {
		os.RemoveAll(n.leases)
	}
	n.leases = filepath.Join(n.srv.Export, fmt.Sprintf("leases-%d", row))
}

func (n *nfsBackend) open() lease.Store {
	return lease.NewNFSStore("127.0.0.1", n.srv.Export, n.leases, callTimeout)
}

// node is a store of its own: an NFS client is one connection doing one
// call at a time, as each node's envctl has.
func (n *nfsBackend) node(int) lease.Store { return n.open() }

func (n *nfsBackend) config() string {
	return fmt.Sprintf("LEASE_BACKEND=nfs\nLEASE_NFS_SERVER=127.0.0.1\nLEASE_NFS_EXPORT=%s\nLEASE_DIR=%s\n", n.srv.Export, n.leases)
}

func (n *nfsBackend) pids() []int { return n.srv.Pids() }

// size is the allocated size of the lease directory on the server's disk.
func (n *nfsBackend) size() int64 {
	var sum int64
	filepath.WalkDir(n.leases, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				sum += st.Blocks * 512
			}
		}
		return nil
	})
	return sum
}

func (n *nfsBackend) writes() int64 { return -1 }

func (n *nfsBackend) stop() { n.srv.Stop() }
