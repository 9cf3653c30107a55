// Package testenv is what the integration tests share: they run as root in a
// private mount namespace (so nothing they mount is seen outside, and all of
// it vanishes with them), build the real binaries once, and treat a missing
// dependency as a failure under CI=true and a skip elsewhere.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/run"
)

const nsMarker = "ENVHOOKS_TEST_PRIVATE_NS"

// CI reports whether the tests run under CI, where nothing may be skipped.
func CI() bool { return os.Getenv("CI") == "true" }

// Main runs the package's tests as root in a private mount namespace,
// re-executing the test binary under unshare(1) when needed. Use it as
// func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) { MainTeardown(m, nil) }

// MainTeardown is Main with a teardown that runs after the tests, in the
// private namespace (stopping servers the tests shared).
func MainTeardown(m *testing.M, teardown func()) {
	if os.Getenv(nsMarker) == "" {
		if os.Geteuid() != 0 {
			if CI() {
				fmt.Fprintln(os.Stderr, "integration tests need root under CI=true")
				os.Exit(1)
			}
			fmt.Fprintln(os.Stderr, "integration tests need root: skipped")
			os.Exit(0)
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			fmt.Fprintln(os.Stderr, "integration tests need unshare(1) from util-linux:", err)
			os.Exit(1)
		}
		// mnt-start's quick-check notes go to a run directory of the
		// tests' own, not the node's /run/envhooks.
		runDir, err := os.MkdirTemp("", "envhooks-test-run-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cmd := exec.Command(unshare, append([]string{"--mount", "--propagation", "private", "--", os.Args[0]}, os.Args[1:]...)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), nsMarker+"=1", quick.DirEnv+"="+runDir)
		err = cmd.Run()
		os.RemoveAll(runDir)
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode())
			}
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if teardown != nil {
		teardown()
	}
	os.Exit(code)
}

// Require fails (under CI) or skips the test when a command is missing.
func Require(t testing.TB, commands ...string) {
	t.Helper()
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			if CI() {
				t.Fatalf("%s is required under CI=true but is not installed (make test installs it)", c)
			}
			t.Skipf("%s is not installed", c)
		}
	}
}

// BinEnv names a directory of programs to test instead of those built from
// the tree: another version's, to show that a test fails without a fix.
const BinEnv = "ENVHOOKS_TEST_BIN"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Bin returns the path of a freshly built envhooks program (mnt-start,
// mnt-stop, envctl), built once per test binary.
func Bin(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv(BinEnv); dir != "" {
		return filepath.Join(dir, name)
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "envhooks-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/...")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build ships them
		cmd.Dir = RepoRoot()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// RepoRoot is the module's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Result is what a program run left.
type Result struct {
	Code           int
	Stdout, Stderr string
	Took           time.Duration
}

// Run runs a program with args and extra environment, with a generous
// safety deadline so a hung program fails the test instead of the run.
func Run(t testing.TB, env []string, prog string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", prog, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("%s %s did not finish in 3 minutes", prog, strings.Join(args, " "))
	}
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", prog, err)
	}
	return r
}

// MountsUnder returns the lines of /proc/self/mountinfo whose mount point
// lies under dir.
func MountsUnder(t testing.TB, dir string) []string {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, line)
		}
	}
	return out
}

// MountPoints returns the mount points in mountinfo (the text of a
// /proc/PID/mountinfo, read in whichever namespace the test looks at)
// that lie under dir, dir itself excluded.
func MountPoints(mountinfo, dir string) []string {
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// WriteFile writes content to path, creating parents, failing the test on error.
func WriteFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// SafeDir is a fresh directory where an executable the configuration
// names (EXEC_HOOK, RUNNING_CHECK, CBSD_COMMAND) is accepted: only root
// can write it or any directory above it, which t.TempDir, under the
// world-writable /tmp, is not. It is removed after the test.
func SafeDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "envhooks-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(dir, "probe")
	WriteFile(t, probe, "#!/bin/sh\n", 0o755)
	if err := run.CheckExecutable(probe); err != nil {
		t.Fatalf("SafeDir needs /run owned by root and writable by root alone: %v", err)
	}
	return dir
}

// SharedLeaseDir makes dir a file lease directory as an operator does with
// the shared storage mounted: created, then marked by envctl lease init's
// marker. Tests keep it on the root file system, where an unmarked
// directory is refused (it could be an empty mount point).
func SharedLeaseDir(t testing.TB, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.InitDir(dir, "test"); err != nil {
		t.Fatal(err)
	}
	return dir
}
