// Package benchenv is what the `make bench` programs share: a private mount
// namespace, building the real binaries, timing commands side by side, and
// printing medians and ratios.
package benchenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/envhooks/envhooks/lib/quick"
)

const nsMarker = "ENVHOOKS_BENCH_PRIVATE_NS"

// PrivateNamespace re-executes the program as root in a private mount
// namespace unless it already runs in one; mounts made there vanish with it.
func PrivateNamespace() {
	if os.Getenv(nsMarker) != "" {
		return
	}
	if os.Geteuid() != 0 {
		Fatal("benchmarks need root (they make real mounts in a private namespace)")
	}
	self, err := os.Executable()
	if err != nil {
		Fatal("%v", err)
	}
	// mnt-start's quick-check notes go to a run directory of the
	// benchmark's own, not the node's /run/envhooks.
	runDir, err := os.MkdirTemp("", "envhooks-bench-run-")
	if err != nil {
		Fatal("%v", err)
	}
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", self}, os.Args[1:]...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), nsMarker+"=1", quick.DirEnv+"="+runDir)
	err = cmd.Run()
	os.RemoveAll(runDir)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		Fatal("%v", err)
	}
	os.Exit(0)
}

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// Cleanup registers f to run when the benchmark ends through Fatal or
// Exit, last registered first: a deferred call would be skipped by
// os.Exit, and a benchmark must not leave behind a daemon it started.
func Cleanup(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

// Exit runs the registered cleanups and exits with code.
func Exit(code int) {
	cleanupMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	os.Exit(code)
}

// Fatal prints a message, runs the registered cleanups and exits 1.
func Fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	Exit(1)
}

// TempDir makes a directory for the benchmark's files under parent ("":
// the system's temporary directory), named like os.MkdirTemp's pattern,
// and removes it when the benchmark ends.
func TempDir(parent, pattern string) string {
	dir, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		Fatal("%v", err)
	}
	Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// RepoRoot is the module's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Build builds a package (relative to the repo root) into dir and returns
// the binary's path.
func Build(dir, pkg string) string {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./"+pkg)
	// Static, as make build ships them: no dynamic loader at every start.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		Fatal("go build %s: %v\n%s", pkg, err, b)
	}
	if pkg == "cmd/mnt-start" {
		// mnt-start hands everything but "already in place" to
		// envhooks-attach, installed beside it.
		Build(dir, "cmd/envhooks-attach")
	}
	return out
}

// Contender is one command measured against others.
type Contender struct {
	Name  string
	Argv  []string
	Env   []string
	times []time.Duration
}

// Race runs every contender rounds times, interleaved so that drift in the
// machine's load touches all alike, after warmup unmeasured rounds. A run
// that exits non-zero aborts the benchmark: a failing path is not a fast one.
func Race(rounds, warmup int, cs ...*Contender) {
	for i := 0; i < warmup+rounds; i++ {
		for _, c := range cs {
			cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
			cmd.Env = append(os.Environ(), c.Env...)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			if err != nil {
				Fatal("%s failed: %v\n%s", c.Name, err, out)
			}
			if i >= warmup {
				c.times = append(c.times, took)
			}
		}
	}
}

// Median of the measured times.
func (c *Contender) Median() time.Duration { return Quantile(c.times, 0.5) }

// P90 of the measured times.
func (c *Contender) P90() time.Duration { return Quantile(c.times, 0.9) }

// Quantile of a set of durations.
func Quantile(ts []time.Duration, q float64) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

// Table prints rows of cells aligned in columns.
func Table(rows [][]string) {
	widths := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		fmt.Println(strings.TrimRight(b.String(), " "))
	}
}

// Ms formats a duration in milliseconds.
func Ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Verdict says whether a measured figure meets its target.
func Verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// T stands in for a *testing.T where a benchmark uses a test helper (the
// kernel lab): Fatalf ends the benchmark through Fatal, Cleanup registers
// with Cleanup, Errorf prints and marks the run failed.
type T struct{ failed bool }

func (*T) Helper()                           {}
func (*T) Cleanup(f func())                  { Cleanup(f) }
func (*T) Logf(format string, args ...any)   { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (*T) Fatalf(format string, args ...any) { Fatal(format, args...) }
func (t *T) Failed() bool                    { return t.failed }
func (t *T) Errorf(format string, args ...any) {
	t.failed = true
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
