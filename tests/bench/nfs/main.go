//go:build linux

// Command nfs is the NFS backend's benchmark. It measures, in one run:
// the cost of the preflight (TCP, NFSv4 NULL, MOUNT export check) against a
// live nfs-ganesha on loopback (target: median under 20 ms), next to a bare
// TCP connect; and how long mnt-start takes to fail against a server that
// accepts and never answers, as a ratio of PREFLIGHT_TIMEOUT (target: at
// most 1.1). It runs in a private network namespace, starts its own ganesha
// and rpcbind there, and stops them at the end.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/hooks/nfs"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/nfsclient"
	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testnet"
)

const rounds = 200

func main() {
	if os.Geteuid() != 0 {
		benchenv.Fatal("the NFS benchmark needs root (it starts ganesha in a private network namespace)")
	}
	for _, c := range ganesha.Commands {
		if _, err := exec.LookPath(c); err != nil {
			benchenv.Fatal("%s is not installed (tests/install-deps installs nfs-ganesha, nfs-ganesha-vfs and rpcbind)", c)
		}
	}
	testnet.Isolate()
	benchenv.Exit(run())
}

func run() int {
	dir := benchenv.TempDir("", "envhooks-bench-nfs-")
	mntStart := benchenv.Build(dir, "cmd/mnt-start")
	srv, err := ganesha.Start(filepath.Join(dir, "ganesha"))
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	benchenv.Cleanup(srv.Stop)
	root := filepath.Join(srv.Export, "nfs")
	for _, role := range []string{"data", "system"} {
		if err := os.MkdirAll(filepath.Join(root, role, "jail1"), 0o755); err != nil {
			benchenv.Fatal("%v", err)
		}
	}
	paths := []string{root + "/data/jail1", root + "/system/jail1"}

	probe := func(opts string) func(context.Context, []string) error {
		p := filepath.Join(dir, "probe.conf")
		if err := os.WriteFile(p, []byte(fmt.Sprintf("NFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=%s\nMOUNT_NFS_OPT=%q\n", root, opts)), 0o644); err != nil {
			benchenv.Fatal("%v", err)
		}
		cfg, err := config.LoadFile(p)
		if err != nil {
			benchenv.Fatal("%v", err)
		}
		b, err := nfs.New(cfg)
		if err != nil {
			benchenv.Fatal("%v", err)
		}
		return b.(*nfs.Backend).Probe
	}
	v4, v3 := probe("-orw -overs=4"), probe("-orw -overs=3")
	var tcp, t4, t3 []time.Duration
	for i := 0; i < rounds+10; i++ {
		ctx := context.Background()
		start := time.Now()
		if err := nfsclient.ProbeTCP(ctx, "127.0.0.1", nfsclient.NFSPort); err != nil {
			benchenv.Fatal("TCP connect: %v", err)
		}
		tookTCP := time.Since(start)
		start = time.Now()
		if err := v4(ctx, paths); err != nil {
			benchenv.Fatal("v4 preflight: %v", err)
		}
		took4 := time.Since(start)
		start = time.Now()
		if err := v3(ctx, paths); err != nil {
			benchenv.Fatal("v3 preflight: %v", err)
		}
		took3 := time.Since(start)
		if i >= 10 { // warm-up rounds
			tcp, t4, t3 = append(tcp, tookTCP), append(t4, took4), append(t3, took3)
		}
	}

	port, closeDead := deadServer()
	defer closeDead()
	type deadRun struct {
		deadline time.Duration
		took     time.Duration
	}
	var dead []deadRun
	for _, secs := range []int{1, 2, 3} {
		conf := filepath.Join(dir, "dead.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf("NFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\nMOUNT_NFS_OPT=\"-orw -overs=4\"\nNFS_PORT=%d\nPREFLIGHT_TIMEOUT=%d\nSTATE_DIR=%s\nSYSLOG=0\n", port, secs, filepath.Join(dir, "state"))), 0o644)
		cmd := exec.Command(mntStart, "-c", conf, "-j", "jail1",
			"-d", filepath.Join(dir, "node", "jails-data", "jail1-data"),
			"-s", filepath.Join(dir, "node", "jails-system", "jail1"))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 69 {
			benchenv.Fatal("mnt-start against the dead server: %v, want exit 69\n%s", err, out)
		}
		dead = append(dead, deadRun{time.Duration(secs) * time.Second, took})
	}

	fmt.Printf("NFS preflight (hooks/nfs, lib/nfsclient) against nfs-ganesha on 127.0.0.1 (private netns), %d rounds\n", rounds)
	m4, m3 := benchenv.Quantile(t4, 0.5), benchenv.Quantile(t3, 0.5)
	rows := [][]string{
		{"measure", "median", "p90", "target", "verdict"},
		{"TCP connect to 2049 only", benchenv.Ms(benchenv.Quantile(tcp, 0.5)), benchenv.Ms(benchenv.Quantile(tcp, 0.9)), "-", "-"},
		{"v4 preflight: TCP+NULL+MOUNT x2", benchenv.Ms(m4), benchenv.Ms(benchenv.Quantile(t4, 0.9)), "< 20 ms", benchenv.Verdict(m4 < 20*time.Millisecond)},
		{"v3 preflight: TCP+MOUNT x2", benchenv.Ms(m3), benchenv.Ms(benchenv.Quantile(t3, 0.9)), "< 20 ms", benchenv.Verdict(m3 < 20*time.Millisecond)},
	}
	for _, r := range dead {
		ratio := float64(r.took) / float64(r.deadline)
		rows = append(rows, []string{"mnt-start vs dead server, PREFLIGHT_TIMEOUT=" + r.deadline.String(), benchenv.Ms(r.took), "-", "ratio <= 1.10", fmt.Sprintf("%.3f %s", ratio, benchenv.Verdict(ratio <= 1.1))})
	}
	benchenv.Table(rows)
	return 0
}

// deadServer accepts on 127.0.0.1 and never answers: a hung NFS server.
func deadServer() (int, func()) {
	addr, stop, err := testnet.Silent()
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	return addr.Port, stop
}
