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
	"testing"

	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

func TestMain(m *testing.M) {
	testnet.Isolate()
	testenv.MainTeardown(m, func() {
		etcd.Close()
		nfs.Close()
		scratch.Close()
		fake.Close()
	})
}

// What the package's tests share, made on first use and ended when the
// test binary ends: a scratch tmpfs, the servers in it, the fake cbsd.
var (
	scratch = testenv.SharedTmpfs("envhooks-cbsd-")
	etcd    = etcdcluster.Shared(scratch, 3)
	nfs     = ganesha.Shared(scratch)
	fake    = &testenv.Shared[string]{Make: buildFakeCBSD, End: func(bin string) { os.RemoveAll(filepath.Dir(bin)) }}
)

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

// fakeCBSD builds the fake cbsd program once.
func fakeCBSD(t *testing.T) string {
	t.Helper()
	return fake.Get(t)
}

func buildFakeCBSD() (string, error) {
	dir, err := os.MkdirTemp("", "envhooks-fakecbsd-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fakecbsd")
	cmd := exec.Command("go", "build", "-o", bin, "./tests/cbsd/fakecbsd")
	cmd.Dir = testenv.RepoRoot()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./tests/cbsd/fakecbsd: %v\n%s", err, out.String())
	}
	return bin, nil
}
