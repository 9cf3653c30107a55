//go:build linux

// Command kernel benchmarks the NFS backend on a real Linux kernel: in a
// qemu guest of the kernel lab, with CBSD's sample config (three NFSv4 hard
// mounts: data, system, fstab) against nfs-ganesha on the host, it times
// attach (mnt-start) and detach (mnt-stop) over repeated runs; then it
// freezes the server (SIGSTOP) and times how long each program takes to
// give its answer, side by side with CBSD's own sample hook, which decides
// "mounted" by looking at the mount point (test -d, then df | tail | awk)
// and so hangs on a dead server: it runs under a cap, and the cap is
// reported.
//
// CBSD's script is not part of this project. It is read at run time from a
// CBSD checkout or git mirror named by CBSD_SOURCE (default: the mirror
// this project's machines carry); without one, the benchmark runs its own
// rendering of the sample's decision (test -d, df | tail | awk) and says so.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/kernel/lab"
	"github.com/envhooks/envhooks/tests/nfs/ganesha"
	"github.com/envhooks/envhooks/tests/testnet"
)

const (
	rounds     = 15
	capped     = 20 * time.Second // CBSD's sample hook, which has no deadline
	ourLimit   = 90 * time.Second // only a guard: the programs answer within HOOK_TIMEOUT=60s
	workdir    = "/usr/jails"
	samplePath = "share/examples/env_start/nfsv4/env_start_nfs.sh"
)

func main() {
	if os.Geteuid() != 0 {
		benchenv.Fatal("the kernel benchmark needs root (it starts ganesha in a private network namespace and qemu guests)")
	}
	testnet.Isolate()
	benchenv.Exit(run())
}

func run() int {
	t := &benchenv.T{}
	dir := benchenv.TempDir("", "envhooks-bench-kernel-")
	bin := filepath.Join(dir, "bin")
	for _, cmd := range []string{"cmd/mnt-start", "cmd/mnt-stop", "cmd/envctl"} {
		benchenv.Build(bin, cmd)
	}
	srv, err := ganesha.Start(filepath.Join(dir, "ganesha"))
	must(err)
	benchenv.Cleanup(srv.Stop)
	root := filepath.Join(srv.Export, "nfs")
	for _, j := range []string{"bench1", "bench2"} {
		for _, role := range []string{"data", "system", "fstab", "rcconf"} {
			must(os.MkdirAll(filepath.Join(root, role, j), 0o755))
		}
	}
	sample, sampleSource := cbsdSample()

	g := lab.Boot(t, lab.Config{Name: "bench", Forward: []int{111, 2049, 20048}, Modules: []string{"nfsv4"}})
	g.WriteFile(t, "/root/etc/env_start_nfs.conf", []byte(sampleConf(root)), 0o644)
	// Deadlines short enough for a benchmark: each command 10 s (default
	// 30), a whole run 60 s (default 120).
	g.WriteFile(t, "/etc/envhooks.conf", []byte("SYSLOG=0\nCOMMAND_TIMEOUT=10\nHOOK_TIMEOUT=60\n"), 0o644)
	g.WriteFile(t, "/root/env_start_nfs.sh", sample, 0o755)
	g.WriteFile(t, workdir+"/jails-rcconf/rc.conf_bench1", []byte("jname=\"bench1\";\npath=\"CBSDROOT/jails/bench1\";\nemulator=\"jail\";\n"), 0o644)
	g.Sh(t, fmt.Sprintf("install -m 755 %s/* /usr/local/bin/ && mkdir -p /var/lib/envhooks/leases", bin))
	// envctl needs leases (a one-node store here); the hooks run without.
	leases := []string{"LEASE_BACKEND=file", "LEASE_DIR=/var/lib/envhooks/leases"}
	// That directory is on the guest's root file system: marked once, as
	// an operator does.
	if r := g.Run(t, leases, time.Minute, "envctl", "lease", "init"); r.Code != 0 {
		benchenv.Fatal("envctl lease init: exit %d: %s", r.Code, r.Stderr)
	}
	mounted := func() int { return strings.Count(string(g.ReadFile(t, "/proc/self/mountinfo")), " - nfs4 ") }
	run := func(limit time.Duration, env []string, argv ...string) lab.Result {
		return g.Run(t, env, limit, argv...)
	}

	var attach, again, detach []time.Duration
	for i := 0; i <= rounds; i++ {
		steps := []struct {
			argv   []string
			mounts int
			times  *[]time.Duration
		}{
			{hookArgv("mnt-start", "bench1"), 3, &attach},
			{hookArgv("mnt-start", "bench1"), 3, &again},
			{[]string{"mnt-stop", "-j", "bench1"}, 0, &detach},
		}
		for _, s := range steps {
			r := run(time.Minute, nil, s.argv...)
			if r.Code != 0 || mounted() != s.mounts {
				benchenv.Fatal("%s: exit %d with %d NFS mounts: %s", s.argv[0], r.Code, mounted(), r.Stderr)
			}
			if i > 0 { // the first round warms the guest's caches
				*s.times = append(*s.times, r.Took)
			}
		}
	}
	fmt.Printf("== NFSv4 on a real kernel: a qemu guest (TCG, 1 vCPU), CBSD's sample config, 3 hard mounts, %d rounds\n", rounds)
	benchenv.Table([][]string{
		{"measure", "median", "p90"},
		{"mnt-start: attach (preflight + 3 mounts)", benchenv.Ms(benchenv.Quantile(attach, .5)), benchenv.Ms(benchenv.Quantile(attach, .9))},
		{"mnt-start: already attached", benchenv.Ms(benchenv.Quantile(again, .5)), benchenv.Ms(benchenv.Quantile(again, .9))},
		{"mnt-stop: detach (3 unmounts)", benchenv.Ms(benchenv.Quantile(detach, .5)), benchenv.Ms(benchenv.Quantile(detach, .9))},
	})

	// The frozen server: bench1 attached and registered (so envctl
	// status and list have it to show), bench2 not attached.
	if r := run(time.Minute, leases, "envctl", "jregister", "bench1"); r.Code != 0 || mounted() != 3 {
		benchenv.Fatal("envctl jregister bench1: exit %d: %s", r.Code, r.Stderr)
	}
	pid := srv.Pids()[1]
	must(syscall.Kill(pid, syscall.SIGSTOP))
	benchenv.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	time.Sleep(4 * time.Second) // past the sample's attribute cache times (acdirmax=3)

	rows := [][]string{{"program, server frozen", "answer", "time", "what it said"}}
	for _, c := range []struct {
		name string
		env  []string
		argv []string
	}{
		{"mnt-start bench1 (attached)", nil, hookArgv("mnt-start", "bench1")},
		{"mnt-start bench2 (not attached)", nil, hookArgv("mnt-start", "bench2")},
		{"envctl status bench1", leases, []string{"envctl", "status", "bench1"}},
		{"envctl list", leases, []string{"envctl", "list"}},
		{"CBSD's sample hook, bench1 (" + sampleSource + ")", nil, hookArgv("/root/env_start_nfs.sh", "bench1")},
		{"mnt-stop bench1", nil, []string{"mnt-stop", "-j", "bench1"}},
		{"mnt-stop bench1, FORCE_UNMOUNT=1", []string{"FORCE_UNMOUNT=1"}, []string{"mnt-stop", "-j", "bench1"}},
	} {
		// CBSD's hook has no deadline of its own: it gets the cap. The
		// project's programs keep theirs (HOOK_TIMEOUT); the generous
		// limit only guards the benchmark.
		limit := ourLimit
		if strings.HasPrefix(c.name, "CBSD") {
			limit = capped
		}
		r := run(limit, c.env, c.argv...)
		answer, took, said := fmt.Sprintf("exit %d", r.Code), benchenv.Ms(r.Took), firstLine(r.Stderr)
		if r.TimedOut {
			answer, took, said = "none", fmt.Sprintf(">= %s (killed at the cap)", limit), ""
		}
		rows = append(rows, []string{c.name, answer, took, said})
		if d := dState(g, t); d != "" {
			rows = append(rows, []string{"  then in D state", d, "", ""})
		}
	}
	rows = append(rows, []string{"NFS mounts left after mnt-stop", fmt.Sprint(mounted()), "", ""})
	fmt.Printf("== the same guest with ganesha stopped (SIGSTOP); COMMAND_TIMEOUT=10s, HOOK_TIMEOUT=60s; CBSD's sample hook capped at %s\n", capped)
	benchenv.Table(rows)
	if t.Failed() {
		return 1
	}
	return 0
}

// hookArgv is prog with the flags CBSD's jstart passes to mnt_start.
func hookArgv(prog, jname string) []string {
	return []string{prog, "-d", workdir + "/jails-data/" + jname + "-data", "-f", workdir + "/jails-fstab/" + jname,
		"-j", jname, "-r", workdir + "/jails-rcconf", "-s", workdir + "/jails-system/" + jname}
}

// dState names the guest's processes in uninterruptible sleep.
func dState(g *lab.Guest, t lab.T) string {
	var out []string
	for _, p := range g.Procs(t) {
		if p.State == "D" {
			out = append(out, fmt.Sprintf("%d %s", p.PID, p.Comm))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// sampleConf is this project's copy of CBSD's sample config with the lab's
// server and root.
func sampleConf(root string) string {
	raw, err := os.ReadFile(filepath.Join(benchenv.RepoRoot(), "examples", "nfs", "env_start_nfs.conf"))
	must(err)
	conf := strings.Replace(string(raw), `NFS_SERVER="172.16.0.1"`, `NFS_SERVER="`+lab.HostAddr+`"`, 1)
	return strings.Replace(conf, `NFS_SERVER_ROOT_DIR="/nfs"`, `NFS_SERVER_ROOT_DIR="`+root+`"`, 1)
}

// cbsdSample returns CBSD's sample hook, read from CBSD_SOURCE (a checkout
// or a git directory), or this benchmark's own rendering of its decision
// when there is none.
func cbsdSample() ([]byte, string) {
	src := os.Getenv("CBSD_SOURCE")
	if src == "" {
		src = "/work/.mirror/cbsd+cbsd/repo"
	}
	if b, err := os.ReadFile(filepath.Join(src, samplePath)); err == nil {
		return b, "verbatim from " + src
	}
	if b, err := exec.Command("git", "-C", src, "show", "HEAD:"+samplePath).Output(); err == nil && len(b) > 0 {
		return b, "verbatim from " + src
	}
	return []byte(ownRendering), "own rendering of its test -d, df | tail | awk decision"
}

// ownRendering decides "mounted" as CBSD's sample does, in this project's
// words: a directory whose df line names itself as the mount point is
// mounted; otherwise it would mount (mount_nfs, absent on Linux).
const ownRendering = `#!/bin/sh
[ -r /root/etc/env_start_nfs.conf ] && . /root/etc/env_start_nfs.conf
while getopts "d:f:j:r:s:" opt; do
	case "$opt" in
	d) data=$OPTARG ;; f) fstab=$OPTARG ;; j) jname=$OPTARG ;;
	r) rcconf=$OPTARG ;; s) sysdata=$OPTARG ;;
	esac
done
mounted() {
	[ -d "$1" ] || return 1
	[ "$(df "$1" | tail -n +2 | awk '{ print $6 }')" = "$1" ]
}
for dir in "$data" "$sysdata" "$fstab"; do
	mounted "$dir" || exit 1
done
`

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(line) > 110 {
		line = line[:107] + "..."
	}
	return line
}

func must(err error) {
	if err != nil {
		benchenv.Fatal("%v", err)
	}
}
