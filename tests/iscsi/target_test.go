//go:build linux

package iscsi_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envhooks/envhooks/tests/iscsi/tgt"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

// startTarget starts a tgtd on a free port of 127.0.0.1 for this test.
func startTarget(t *testing.T) *target { return &target{tgt.Start(t, "")} }

type target struct{ *tgt.Target }

// addTarget exports a new 16 MiB LUN 1 under iqn.
func (g *target) addTarget(t *testing.T, tid int, iqn string) { g.Add(t, tid, iqn, 16<<20) }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// silentPortal accepts connections on 127.0.0.1 and never answers: a hung
// storage server as the hook sees it.
func silentPortal(t *testing.T) string {
	t.Helper()
	addr, stop, err := testnet.Silent()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr.String()
}

// loopDevice makes a file-backed loop device standing in for the LUN,
// with a filesystem made by mkfs (args after the device).
func loopDevice(t *testing.T, size int64, mkfs ...string) string {
	t.Helper()
	testenv.Require(t, "losetup", mkfs[0])
	img := filepath.Join(t.TempDir(), "lun.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	if out, err := exec.Command(mkfs[0], append(mkfs[1:], dev)...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", mkfs[0], err, out)
	}
	return dev
}
