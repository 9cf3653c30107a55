//go:build linux

// Package nfs_test runs the NFS backend against a real nfs-ganesha started
// on the loopback of a private network namespace. The kernel here has no
// NFS client, so the mount command itself is covered by exact-argv tests in
// hooks/nfs and, here, by checking that its refusal rolls everything back.
package nfs_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

func TestMain(m *testing.M) {
	testnet.Isolate()
	testenv.MainTeardown(m, func() {
		server.Close()
		scratch.Close()
	})
}

// The one ganesha the package's tests share (starting it takes seconds);
// it is stopped when the test binary ends.
var (
	scratch = testenv.SharedTmpfs("envhooks-nfs-")
	server  = ganesha.Shared(scratch)
)

func startServer(t *testing.T) *ganesha.Server {
	t.Helper()
	testenv.Require(t, ganesha.Commands...)
	return server.Get(t)
}

// mkExport makes a directory inside the export, as an operator would on
// the server, and returns its path on the server.
func mkExport(t *testing.T, s *ganesha.Server, rel string) string {
	t.Helper()
	p := filepath.Join(s.Export, rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
