//go:build linux

// Package lease_test runs the lease drivers against real servers: a 3-member
// etcd cluster of Debian etcd-server processes and an nfs-ganesha, both on
// the loopback of a network namespace the test makes (members on 127.0.0.11
// to .13, ganesha on 127.0.0.1), started and stopped by the test. It races
// many acquirers for thousands of rounds, kills the etcd leader and restarts
// the NFS server in the middle of acquires, stops heartbeats, and talks to
// servers that accept and never answer.
package lease_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/lease/etcdlease"
	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(nodeHelper(mode))
	}
	testnet.Isolate()
	testenv.MainTeardown(m, teardown)
}

// What the package's tests share, made on first use and ended when the
// test binary ends: a scratch tmpfs of the test's own mount namespace
// (etcd's fsyncs there cost what they cost on a battery-backed disk, not on
// this VM's), and the servers in it.
var (
	scratch = testenv.SharedTmpfs("envhooks-lease-")
	etcd    = etcdcluster.Shared(scratch, 3)
	nfs     = ganesha.Shared(scratch)
)

func scratchDir(t *testing.T) string {
	t.Helper()
	return scratch.Get(t)
}

func etcdCluster(t *testing.T) *etcdcluster.Cluster {
	t.Helper()
	testenv.Require(t, etcdcluster.Commands...)
	return etcd.Get(t)
}

func nfsServer(t *testing.T) *ganesha.Server {
	t.Helper()
	testenv.Require(t, ganesha.Commands...)
	return nfs.Get(t)
}

func teardown() {
	etcd.Close()
	nfs.Close()
	scratch.Close()
}

const timeout = 3 * time.Second

// stores opens n independent stores of one driver, each with connections
// of its own, as n nodes would.
func stores(t *testing.T, driver string, n int) []lease.Store {
	t.Helper()
	var out []lease.Store
	prefix := fmt.Sprintf("/%s-%d", t.Name(), time.Now().UnixNano())
	for i := 0; i < n; i++ {
		var s lease.Store
		switch driver {
		case "file":
			// The directory on the shared storage exists: a file store
			// never creates it.
			dir := filepath.Join(scratchDir(t), "file"+prefix)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			s = &lease.FileStore{Dir: dir}
		case "nfs":
			srv := nfsServer(t)
			s = lease.NewNFSStore("127.0.0.1", srv.Export, srv.Export+prefix, timeout)
		case "etcd":
			var err error
			s, err = etcdlease.New(etcdCluster(t).Endpoints(), prefix, timeout)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				// A fresh store, as the first envctl heartbeat of a
				// new cluster finds it: the index by owner is
				// complete from the start.
				if err := s.(lease.Upgrader).Upgrade(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		t.Cleanup(func() { lease.Close(s) })
		out = append(out, s)
	}
	return out
}

func node(i int) string { return fmt.Sprintf("node%d", i) }

// verdict is one acquirer's definite answer in a round.
type verdict struct {
	won     bool
	retries int
}

// acquire asks until it gets a definite answer: ownership or a *HeldError.
// Errors of an unreachable store (a server restarting, an election) are
// retried while retry is set.
func acquire(ctx context.Context, s lease.Store, jname, who string, retry bool) (verdict, error) {
	var v verdict
	for {
		_, err := s.Acquire(ctx, jname, who)
		var held *lease.HeldError
		switch {
		case err == nil:
			v.won = true
			return v, nil
		case errors.As(err, &held):
			return v, nil
		case !retry || ctx.Err() != nil:
			return v, err
		}
		v.retries++
		time.Sleep(20 * time.Millisecond)
	}
}

// round races every store for jname once and returns the winners.
func round(ctx context.Context, ss []lease.Store, jname string, retry bool) ([]string, int, error) {
	var (
		mu       sync.Mutex
		winners  []string
		retries  int
		firstErr error
		wg       sync.WaitGroup
		start    = make(chan struct{})
	)
	for i, s := range ss {
		wg.Add(1)
		go func(i int, s lease.Store) {
			defer wg.Done()
			<-start
			v, err := acquire(ctx, s, jname, node(i), retry)
			mu.Lock()
			defer mu.Unlock()
			retries += v.retries
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", node(i), err)
			}
			if v.won {
				winners = append(winners, node(i))
			}
		}(i, s)
	}
	close(start)
	wg.Wait()
	return winners, retries, firstErr
}

// storeErrors counts the calls retrying repeated.
var storeErrors atomic.Int64

// retrying repeats op while the store is unreachable.
func retrying(ctx context.Context, op func() error) error {
	for {
		err := op()
		if err == nil || ctx.Err() != nil {
			return err
		}
		var held *lease.HeldError
		if errors.As(err, &held) {
			return err
		}
		storeErrors.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
}
