//go:build linux || freebsd

// Command iscsi is the iSCSI backend's benchmark: how long the Go discovery
// preflight takes against a live tgtd on 127.0.0.1 (target: median under
// 20 ms), next to a bare TCP connect to the same portal, and how long it
// takes to fail against a portal that accepts and never answers, as a ratio
// of its deadline (target: at most 1.1). It starts and stops its own tgtd.
package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/envhooks/envhooks/lib/iscsi"
	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

const (
	rounds = 200
	target = "iqn.2026-01.org.envhooks.bench:web1"
)

func main() {
	if os.Geteuid() != 0 {
		benchenv.Fatal("the iSCSI benchmark needs root (it starts tgtd)")
	}
	for _, c := range []string{"tgtd", "tgtadm"} {
		if _, err := exec.LookPath(c); err != nil {
			benchenv.Fatal("%s is not installed (tests/install-deps installs tgt)", c)
		}
	}
	// tgtd and the silent portal live on the loopback of a network
	// namespace of the benchmark's own.
	testnet.Isolate()
	dir := benchenv.TempDir("", "envhooks-bench-iscsi-")
	portal, stop := startTgtd(dir)
	benchenv.Cleanup(stop)

	opt := iscsi.Options{InitiatorName: "iqn.2026-01.org.envhooks.bench:initiator", Timeout: 5 * time.Second}
	var disc, dial []time.Duration
	for i := 0; i < rounds+10; i++ {
		start := time.Now()
		c, err := net.DialTimeout("tcp", portal, 5*time.Second)
		if err != nil {
			benchenv.Fatal("connect %s: %v", portal, err)
		}
		c.Close()
		tookDial := time.Since(start)

		start = time.Now()
		ts, err := iscsi.Discover(context.Background(), portal, opt)
		tookDisc := time.Since(start)
		if err != nil || len(ts) != 1 || ts[0].Name != target {
			benchenv.Fatal("discovery against tgtd: %v, %v", ts, err)
		}
		if i >= 10 { // the first rounds warm up tgtd and the runtime
			dial, disc = append(dial, tookDial), append(disc, tookDisc)
		}
	}

	silent, closeSilent := silentPortal()
	benchenv.Cleanup(closeSilent)
	type deadRun struct {
		deadline time.Duration
		took     time.Duration
	}
	var dead []deadRun
	for _, d := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
		start := time.Now()
		_, err := iscsi.Discover(context.Background(), silent, iscsi.Options{InitiatorName: opt.InitiatorName, Timeout: d})
		took := time.Since(start)
		if e, ok := err.(*iscsi.Error); !ok || !e.TimedOut {
			benchenv.Fatal("silent portal: got %v, want a timeout", err)
		}
		dead = append(dead, deadRun{d, took})
	}

	med := benchenv.Quantile(disc, 0.5)
	fmt.Printf("iSCSI discovery preflight (lib/iscsi) against tgtd on %s, %d rounds\n", portal, rounds)
	rows := [][]string{
		{"measure", "median", "p90", "target", "verdict"},
		{"TCP connect only", benchenv.Ms(benchenv.Quantile(dial, 0.5)), benchenv.Ms(benchenv.Quantile(dial, 0.9)), "-", "-"},
		{"login+SendTargets+logout", benchenv.Ms(med), benchenv.Ms(benchenv.Quantile(disc, 0.9)), "< 20 ms", benchenv.Verdict(med < 20*time.Millisecond)},
	}
	for _, r := range dead {
		ratio := float64(r.took) / float64(r.deadline)
		rows = append(rows, []string{"silent portal, deadline " + r.deadline.String(), benchenv.Ms(r.took), "-", "ratio <= 1.10", fmt.Sprintf("%.3f %s", ratio, benchenv.Verdict(ratio <= 1.1))})
	}
	benchenv.Table(rows)
	benchenv.Exit(0)
}

// startTgtd runs tgtd in the foreground on a free 127.0.0.1 port with a
// private control port, exporting one 16 MiB file-backed LUN.
func startTgtd(dir string) (string, func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	portal := l.Addr().String()
	l.Close()
	ctl := strconv.Itoa(2000 + rand.IntN(30000)) // tgtd takes control ports up to 32767
	logf, err := os.Create(filepath.Join(dir, "tgtd.log"))
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	ipc := "TGT_IPC_SOCKET=" + filepath.Join(dir, "ctl") // tgtd's control socket: ours, not /run/tgtd's
	cmd := exec.Command("tgtd", "-f", "-C", ctl, "--iscsi", "portal="+portal)
	cmd.Env = append(os.Environ(), ipc)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: tgtd must not outlive the benchmark, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		benchenv.Fatal("start tgtd: %v", err)
	}
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		logf.Close()
	}
	adm := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		adm := exec.CommandContext(ctx, "tgtadm", append([]string{"-C", ctl, "--lld", "iscsi"}, args...)...)
		adm.Env = append(os.Environ(), ipc)
		out, err := adm.CombinedOutput()
		if err != nil {
			return fmt.Errorf("tgtadm %v: %v: %s", args, err, out)
		}
		return nil
	}
	deadline := time.Now().Add(15 * time.Second)
	for adm("--mode", "target", "--op", "show") != nil {
		if time.Now().After(deadline) {
			stop()
			benchenv.Fatal("tgtd did not come up on %s", portal)
		}
		time.Sleep(50 * time.Millisecond)
	}
	backing := filepath.Join(dir, "lun.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		stop()
		benchenv.Fatal("%v", err)
	}
	if err := os.Truncate(backing, 16<<20); err != nil {
		stop()
		benchenv.Fatal("%v", err)
	}
	for _, args := range [][]string{
		{"--mode", "target", "--op", "new", "--tid", "1", "--targetname", target},
		{"--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1", "--backing-store", backing},
		{"--mode", "target", "--op", "bind", "--tid", "1", "--initiator-address", "ALL"},
	} {
		if err := adm(args...); err != nil {
			stop()
			benchenv.Fatal("%v", err)
		}
	}
	return portal, stop
}

// silentPortal accepts on 127.0.0.1 and never answers.
func silentPortal() (string, func()) {
	addr, stop, err := testnet.Silent()
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	return addr.String(), stop
}
