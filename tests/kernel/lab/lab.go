//go:build linux

// Package lab boots Linux guests under qemu for tests that need a real
// kernel: an NFS client, an iSCSI initiator, a hard mount hung on a frozen
// server, two nodes sharing storage. The host here has none of these, but a
// guest kernel does.
//
// A guest runs Debian's kernel (found from linux-image-amd64, downloaded and
// unpacked into a cache on first use, never installed), under TCG, on the
// host's own root filesystem exported read-only over 9p with a tmpfs
// overlay on top, so it has the host's programs, the project's freshly
// built binaries included. Its network is qemu's user network with
// restrict=on: it reaches nothing but the host ports a test names, each at
// HostAddr; the host reaches the guest ports a test exposes on its own
// loopback, and so another guest that forwards such a port reaches them. A
// small agent in the guest runs the commands a test asks for over a
// virtio-serial port and reports their exit codes and output.
//
// Guests booted together (BootAll) are separate nodes: each has its own
// kernel, overlay, user network and address, and all reach the same host
// servers (tgtd, ganesha, etcd) at HostAddr, so two of them can share one
// iSCSI LUN or one export; Kill is a power failure, Poweroff a clean one.
// Commands run with Run, Sh or Exec; Start runs one in the background
// (Wait, Signal); Procs lists the guest's processes and their states (a
// process in D state shows as "D"); ReadFile and WriteFile reach its own
// files.
//
// Every guest is killed (by its process id) and its directory removed when
// the test ends, whatever happened; qemu also dies with the test process,
// and the relays it spawns for forwarded connections end with qemu.
package lab

import (
	"sync"
	"testing"

	"github.com/envhooks/envhooks/tests/testenv"
)

// HostAddr is where a guest reaches the host's forwarded ports.
const HostAddr = "10.0.2.100"

// GuestAddr is every guest's own address (each has its own user network).
const GuestAddr = "10.0.2.15"

var (
	kernelOnce sync.Once
	kernel     *Kernel
	kernelErr  error
)

// T is what the lab needs of a test. A *testing.T is one; a benchmark,
// which has none, passes a stand-in of its own.
type T interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
}

// Prepare returns the prepared kernel, preparing it on the first call of
// the process. In a test, a missing command skips it, or fails it under
// CI=true.
func Prepare(t T) *Kernel {
	t.Helper()
	if tb, ok := t.(testing.TB); ok {
		testenv.Require(tb, Commands...)
	}
	kernelOnce.Do(func() { kernel, kernelErr = prepare() })
	if kernelErr != nil {
		t.Fatalf("kernel lab: %v", kernelErr)
	}
	return kernel
}
