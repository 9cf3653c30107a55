//go:build linux

// Package tgt runs a throwaway iSCSI target for tests and benchmarks:
// Debian's tgtd in the foreground, in its own process group, listening on
// one loopback portal, with file-backed LUNs. Its control socket lives in
// the target's own directory (TGT_IPC_SOCKET, which tgtd and tgtadm both
// read), not in /run/tgtd where the machine's tgtd keeps its own. Callers
// run in the network namespace testnet.Isolate makes, so the portal never
// meets a target the machine runs. It is killed (by its process id) when
// the test ends.
package tgt

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
)

// Commands lists what Start needs installed.
var Commands = []string{"tgtd", "tgtadm"}

// Target is a running tgtd.
type Target struct {
	Portal string // host:port it listens on and announces
	Dir    string // its log and LUN backing files
	ctl    string
}

// Start starts tgtd on portal, or on a free port of 127.0.0.1 when portal
// is empty, and waits until it answers.
func Start(t testing.TB, portal string) *Target {
	t.Helper()
	testenv.Require(t, Commands...)
	if portal == "" {
		portal = "127.0.0.1:" + strconv.Itoa(freePort(t))
	}
	// tgtd takes control ports up to 32767 only.
	g := &Target{Portal: portal, ctl: strconv.Itoa(2000 + rand.IntN(30000)), Dir: t.TempDir()}
	logf, err := os.Create(filepath.Join(g.Dir, "tgtd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tgtd", "-f", "-C", g.ctl, "--iscsi", "portal="+g.Portal)
	cmd.Env = append(os.Environ(), g.ipcEnv())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
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
			if _, err := g.Adm("--mode", "target", "--op", "show"); err == nil {
				return g
			}
		}
		select {
		case <-exited:
			t.Fatalf("tgtd exited at start:\n%s", g.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tgtd did not come up on %s within 15s:\n%s", g.Portal, g.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ipcEnv puts tgtd's control socket (<path>.<control port> and its lock)
// in the target's directory.
func (g *Target) ipcEnv() string { return "TGT_IPC_SOCKET=" + filepath.Join(g.Dir, "ctl") }

// Log returns what tgtd wrote.
func (g *Target) Log() string {
	b, _ := os.ReadFile(filepath.Join(g.Dir, "tgtd.log"))
	return string(b)
}

// Adm runs tgtadm against this tgtd.
func (g *Target) Adm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tgtadm", append([]string{"-C", g.ctl, "--lld", "iscsi"}, args...)...)
	cmd.Env = append(os.Environ(), g.ipcEnv())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("tgtadm %s: %v: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// Add exports a new target iqn with a file-backed LUN 1 of size bytes (tgt
// keeps LUN 0 for its controller), open to every initiator address, and
// returns the backing file. The file starts blank: format it to taste.
func (g *Target) Add(t testing.TB, tid int, iqn string, size int64) string {
	t.Helper()
	backing := filepath.Join(g.Dir, fmt.Sprintf("lun-%d.img", tid))
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, size); err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(tid)
	for _, args := range [][]string{
		{"--mode", "target", "--op", "new", "--tid", id, "--targetname", iqn},
		{"--mode", "logicalunit", "--op", "new", "--tid", id, "--lun", "1", "--backing-store", backing},
		{"--mode", "target", "--op", "bind", "--tid", id, "--initiator-address", "ALL"},
	} {
		if _, err := g.Adm(args...); err != nil {
			t.Fatal(err)
		}
	}
	return backing
}

// RequireCHAP makes target tid accept only logins with this CHAP user and
// secret.
func (g *Target) RequireCHAP(t testing.TB, tid int, user, secret string) {
	t.Helper()
	for _, args := range [][]string{
		{"--mode", "account", "--op", "new", "--user", user, "--password", secret},
		{"--mode", "account", "--op", "bind", "--tid", strconv.Itoa(tid), "--user", user},
	} {
		if _, err := g.Adm(args...); err != nil {
			t.Fatal(err)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
