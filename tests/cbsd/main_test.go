//go:build linux

// Package cbsd_test replays CBSD's lifecycle of jails and bhyve VMs against
// the real envhooks programs: jcreate, jstart, jstop, jstart again;
// bcreate, bstart, bstop, bstart again; and a migration between two nodes
// with different workdirs, with ownership leases in a directory, on an NFS
// server (nfs-ganesha) and in etcd, with and without CBSD_DELEGATE. CBSD
// itself is tests/cbsd/replay, which follows CBSD's scripts step by step;
// a fake cbsd program (tests/cbsd/fakecbsd) stands in for it where envctl
// runs cbsd. Mounts are real bind mounts in this test's private mount
// namespace where Linux and FreeBSD behave alike; where they differ, a
// model of FreeBSD's rules (tests/cbsd/fbsd) stands in for the kernel.
//
// The NFS and etcd lease tests start ganesha and an etcd cluster in a
// network namespace of their own: run this package under the integration
// lock (flock /tmp/envhooks-integration.lock go test ./tests/cbsd/...).
package cbsd_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

func TestMain(m *testing.M) {
	testnet.Isolate()
	testenv.MainTeardown(m, teardown)
}

var (
	scratchOnce sync.Once
	scratch     string
	scratchErr  error

	etcdOnce sync.Once
	etcd     *etcdcluster.Cluster
	etcdErr  error

	nfsOnce sync.Once
	nfs     *ganesha.Server
	nfsErr  error

	fakeOnce sync.Once
	fakeBin  string
	fakeErr  error
)

func scratchDir(t *testing.T) string {
	t.Helper()
	scratchOnce.Do(func() {
		scratch, scratchErr = os.MkdirTemp("", "envhooks-cbsd-")
		if scratchErr == nil {
			scratchErr = unix.Mount("tmpfs", scratch, "tmpfs", 0, "mode=0755")
		}
	})
	if scratchErr != nil {
		t.Fatal(scratchErr)
	}
	return scratch
}

func etcdCluster(t *testing.T) *etcdcluster.Cluster {
	t.Helper()
	testenv.Require(t, etcdcluster.Commands...)
	etcdOnce.Do(func() { etcd, etcdErr = etcdcluster.Start(filepath.Join(scratchDir(t), "etcd"), 3) })
	if etcdErr != nil {
		t.Fatal(etcdErr)
	}
	return etcd
}

func nfsServer(t *testing.T) *ganesha.Server {
	t.Helper()
	testenv.Require(t, ganesha.Commands...)
	nfsOnce.Do(func() { nfs, nfsErr = ganesha.Start(filepath.Join(scratchDir(t), "ganesha")) })
	if nfsErr != nil {
		t.Fatal(nfsErr)
	}
	return nfs
}

func teardown() {
	if etcd != nil {
		etcd.Stop()
	}
	if nfs != nil {
		nfs.Stop()
	}
	if scratch != "" {
		unix.Unmount(scratch, unix.MNT_DETACH)
		os.RemoveAll(scratch)
	}
	if fakeBin != "" {
		os.RemoveAll(filepath.Dir(fakeBin))
	}
}

// fakeCBSD builds the fake cbsd program once.
func fakeCBSD(t *testing.T) string {
	t.Helper()
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "envhooks-fakecbsd-")
		if err != nil {
			fakeErr = err
			return
		}
		fakeBin = filepath.Join(dir, "fakecbsd")
		cmd := exec.Command("go", "build", "-o", fakeBin, "./tests/cbsd/fakecbsd")
		cmd.Dir = testenv.RepoRoot()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			fakeErr = fmt.Errorf("go build ./tests/cbsd/fakecbsd: %v\n%s", err, out.String())
		}
	})
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	return fakeBin
}
