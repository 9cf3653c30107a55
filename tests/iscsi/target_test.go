package iscsi_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

// target is a tgtd this test started on 127.0.0.1, with a private control
// port so it cannot clash with another tgtd on the machine.
type target struct {
	Portal string // 127.0.0.1:port
	ctl    string
	dir    string
}

// startTarget starts tgtd in the foreground in its own process group and
// stops it (and only it) when the test ends.
func startTarget(t *testing.T) *target {
	t.Helper()
	testenv.Require(t, "tgtd", "tgtadm")
	port := freePort(t)
	// tgtd takes control ports up to 32767 only.
	g := &target{Portal: "127.0.0.1:" + strconv.Itoa(port), ctl: strconv.Itoa(2000 + rand.IntN(30000)), dir: t.TempDir()}
	logf, err := os.Create(filepath.Join(g.dir, "tgtd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tgtd", "-f", "-C", g.ctl, "--iscsi", "portal="+g.Portal)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tgtd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("tgtd (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
	})
	// Ready when the portal accepts and the control socket answers.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", g.Portal, time.Second)
		if err == nil {
			c.Close()
			if _, err := g.adm("--mode", "target", "--op", "show"); err == nil {
				return g
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(g.dir, "tgtd.log"))
			t.Fatalf("tgtd exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(g.dir, "tgtd.log"))
			t.Fatalf("tgtd did not come up on %s within 15s:\n%s", g.Portal, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *target) adm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tgtadm", append([]string{"-C", g.ctl, "--lld", "iscsi"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("tgtadm %s: %v: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// addTarget exports a new file-backed LUN (LUN 1: tgt keeps LUN 0 for its
// controller) under iqn, open to every initiator address.
func (g *target) addTarget(t *testing.T, tid int, iqn string) {
	t.Helper()
	backing := filepath.Join(g.dir, fmt.Sprintf("lun-%d.img", tid))
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 16<<20); err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(tid)
	for _, args := range [][]string{
		{"--mode", "target", "--op", "new", "--tid", id, "--targetname", iqn},
		{"--mode", "logicalunit", "--op", "new", "--tid", id, "--lun", "1", "--backing-store", backing},
		{"--mode", "target", "--op", "bind", "--tid", id, "--initiator-address", "ALL"},
	} {
		if _, err := g.adm(args...); err != nil {
			t.Fatal(err)
		}
	}
}

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
