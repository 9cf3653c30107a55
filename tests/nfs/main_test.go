//go:build linux

// Package nfs_test runs the NFS backend against a real nfs-ganesha started
// on the loopback of a private network namespace. The kernel here has no
// NFS client, so the mount command itself is covered by exact-argv tests in
// hooks/nfs and, here, by checking that its refusal rolls everything back.
package nfs_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

func TestMain(m *testing.M) {
	testnet.Isolate()
	testenv.MainTeardown(m, stopServer)
}

var (
	serverOnce sync.Once
	server     *ganesha.Server
	serverErr  error
	serverDir  string
)

// startServer starts the one ganesha the package's tests share (starting
// it takes seconds); it is stopped when the test binary ends.
func startServer(t *testing.T) *ganesha.Server {
	t.Helper()
	testenv.Require(t, ganesha.Commands...)
	serverOnce.Do(func() {
		serverDir, serverErr = os.MkdirTemp("", "envhooks-ganesha-")
		if serverErr != nil {
			return
		}
		server, serverErr = ganesha.Start(serverDir)
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return server
}

// stopServer runs once after all tests, inside the namespaces.
func stopServer() {
	if server != nil {
		server.Stop()
		server = nil
	}
	if serverDir != "" {
		os.RemoveAll(serverDir)
	}
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
