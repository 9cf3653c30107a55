//go:build linux || freebsd

// The migration benchmark of issue 6: move 1000 environments from node A to
// node B (envctl junregister on A, then jregister on B; nullfs, file
// leases), and show that moving 1 GiB costs what moving 1 MiB costs, beside
// copying the same data with cp -a.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/tests/benchenv"
)

const count = 1000

// node is a simulated node: a mount namespace of its own, held open by a
// sleeping process, that envctl enters with nsenter, as on a real node
// where only its own environments are mounted.
type node struct {
	name, home, workdir, cfg string
	ns                       *exec.Cmd
}

func main() {
	benchenv.PrivateNamespace()
	tmp := benchenv.TempDir("/var/tmp", "envhooks-bench-migrate-")
	envctl := benchenv.Build(filepath.Join(tmp, "bin"), "cmd/envctl")
	dfs := filepath.Join(tmp, "dfs")
	a, b := newNode(tmp, dfs, "a"), newNode(tmp, dfs, "b")
	benchenv.Cleanup(func() { a.ns.Process.Kill() })
	benchenv.Cleanup(func() { b.ns.Process.Kill() })

	// 1000 environments on the shared storage, their descriptors on A.
	for i := 0; i < count; i++ {
		create(dfs, a, fmt.Sprintf("bench%04d", i))
	}
	mustRun(envctl, a, "jregister", "jname=bench*")
	t0 := time.Now()
	mustRun(envctl, a, "junregister", "jname=bench*")
	t1 := time.Now()
	mustRun(envctl, b, "jregister", "jname=bench*")
	t2 := time.Now()
	total := t2.Sub(t0)
	mounts := countMounts(b)
	mustRun(envctl, b, "junregister", "jname=bench*")

	fmt.Printf("== migrate %d environments A -> B (two mount namespaces, nullfs, file leases, PARALLEL=%s; %d mounts on B after)\n", count, parallel(), mounts)
	benchenv.Table([][]string{
		{"phase", "time", "environments/s"},
		{"junregister on A", t1.Sub(t0).Round(time.Millisecond).String(), fmt.Sprintf("%.0f", count/t1.Sub(t0).Seconds())},
		{"jregister on B", t2.Sub(t1).Round(time.Millisecond).String(), fmt.Sprintf("%.0f", count/t2.Sub(t1).Seconds())},
		{"whole migration", total.Round(time.Millisecond).String(), fmt.Sprintf("%.0f", count/total.Seconds())},
	})
	benchenv.Table([][]string{{"target", "measured", ""}, {"1000 environments < 10 s", total.Round(time.Millisecond).String(), benchenv.Verdict(total < 10*time.Second)}})

	// Zero copy: the size of the data does not matter.
	create(dfs, a, "small")
	create(dfs, a, "big")
	writeData(filepath.Join(dfs, "data", "small", "blob"), 1)
	writeData(filepath.Join(dfs, "data", "big", "blob"), 1024)
	mustRun(envctl, a, "jregister", "small")
	mustRun(envctl, a, "jregister", "big")
	migrate := func(jname string) time.Duration {
		start := time.Now()
		mustRun(envctl, a, "junregister", jname)
		mustRun(envctl, b, "jregister", jname)
		took := time.Since(start)
		mustRun(envctl, b, "junregister", jname)
		mustRun(envctl, a, "jregister", jname)
		return took
	}
	var small, big []time.Duration
	for i := 0; i < 15; i++ {
		small = append(small, migrate("small"))
		big = append(big, migrate("big"))
	}
	cpStart := time.Now()
	out, err := exec.Command("cp", "-a", filepath.Join(dfs, "data", "big"), filepath.Join(tmp, "copy")).CombinedOutput()
	if err != nil {
		benchenv.Fatal("cp -a: %v\n%s", err, out)
	}
	exec.Command("sync").Run()
	cp := time.Since(cpStart)
	ms, mb := benchenv.Quantile(small, 0.5), benchenv.Quantile(big, 0.5)
	ratio := float64(mb) / float64(ms)
	fmt.Println("== migrate one environment A -> B (median of 15), and copying it instead")
	benchenv.Table([][]string{
		{"what", "time"},
		{"migrate, 1 MiB of data", benchenv.Ms(ms)},
		{"migrate, 1 GiB of data", benchenv.Ms(mb)},
		{"cp -a of the 1 GiB (+ sync)", benchenv.Ms(cp)},
	})
	benchenv.Table([][]string{
		{"ratio", "measured", "target", ""},
		{"1 GiB / 1 MiB migration", fmt.Sprintf("%.2fx", ratio), "<= 1.2x", benchenv.Verdict(ratio <= 1.2)},
		{"cp -a 1 GiB / migration 1 GiB", fmt.Sprintf("%.0fx", float64(cp)/float64(mb)), "(contrast)", ""},
	})
	mustRun(envctl, a, "junregister", "small")
	mustRun(envctl, a, "junregister", "big")
	benchenv.Exit(0)
}

func newNode(tmp, dfs, name string) *node {
	home := filepath.Join(tmp, name)
	n := &node{name: name, home: home, workdir: filepath.Join(home, "jails"), cfg: filepath.Join(home, "envhooks.conf")}
	n.ns = exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "3600")
	// The holder dies with us however we die, leaving no namespace behind.
	n.ns.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(n.ns.Start())
	for i := 0; i < 500; i++ {
		self, _ := os.Readlink("/proc/self/ns/mnt")
		if other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.ns.Process.Pid)); err == nil && other != self {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	must(os.MkdirAll(filepath.Join(n.workdir, "jails-rcconf"), 0o755))
	must(os.MkdirAll(filepath.Join(dfs, "leases"), 0o755))
	// What envctl lease init writes: the shared directory is on the root
	// filesystem here.
	_, err := lease.InitDir(filepath.Join(dfs, "leases"), name)
	must(err)
	must(os.WriteFile(n.cfg, []byte(fmt.Sprintf("BACKEND=nullfs\nNULLFS_ROOT=%s\nLEASE_DIR=%s/leases\nNODE_NAME=%s\nWORKDIR=%s\nSTATE_DIR=%s/state\nINVENTORY_DIR=%s/inventory\nSYSLOG=0\nMOUNT_FSTAB=0\nPARALLEL=%s\n",
		dfs, dfs, name, n.workdir, home, home, parallel())), 0o644))
	return n
}

func create(dfs string, n *node, jname string) {
	for _, role := range []string{"data", "system"} {
		must(os.MkdirAll(filepath.Join(dfs, role, jname), 0o755))
	}
	must(os.WriteFile(filepath.Join(n.workdir, "jails-rcconf", "rc.conf_"+jname),
		[]byte(fmt.Sprintf("jname=\"%s\";\npath=\"CBSDROOT/jails/%s\";\ndata=\"CBSDROOT/jails-data/%s-data\";\nemulator=\"jail\";\n", jname, jname, jname)), 0o644))
}

func writeData(path string, mib int) {
	out, err := exec.Command("dd", "if=/dev/urandom", "of="+path, "bs=1M", "count="+fmt.Sprint(mib), "status=none").CombinedOutput()
	if err != nil {
		benchenv.Fatal("dd: %v %s", err, out)
	}
}

func mustRun(envctl string, n *node, args ...string) {
	cmd := exec.Command("nsenter", append([]string{"-t", fmt.Sprint(n.ns.Process.Pid), "-m", "--", envctl}, args...)...)
	cmd.Env = append(os.Environ(), "ENVHOOKS_CONFIG="+n.cfg)
	if out, err := cmd.CombinedOutput(); err != nil {
		benchenv.Fatal("envctl %s on %s: %v\n%s", strings.Join(args, " "), n.name, err, tail(out))
	}
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

func countMounts(n *node) int {
	under := n.workdir
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", n.ns.Process.Pid))
	count := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], under+"/") {
			count++
		}
	}
	return count
}

func must(err error) {
	if err != nil {
		benchenv.Fatal("%v", err)
	}
}

// parallel is envctl's PARALLEL for the run: the default unless
// BENCH_PARALLEL overrides it.
func parallel() string {
	if p := os.Getenv("BENCH_PARALLEL"); p != "" {
		return p
	}
	return "16"
}
