// Package hook tests mnt-start and mnt-stop end to end with real bind
// mounts, as root, in a private mount namespace.
package hook

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/dist/cbsd"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/failures"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/tests/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// node is one simulated CBSD node: a workdir, a shared "DFS" directory with
// the envhooks layout, and a config file for the nullfs backend.
type node struct {
	t                       *testing.T
	root, dfs, workdir, cfg string
	state                   string
}

func newNode(t *testing.T, extra string) *node {
	root := t.TempDir()
	n := &node{t: t, root: root, dfs: filepath.Join(root, "dfs"), workdir: filepath.Join(root, "usr", "jails"),
		cfg: filepath.Join(root, "etc", "envhooks.conf"), state: filepath.Join(root, "state")}
	testenv.WriteFile(t, n.cfg, fmt.Sprintf("BACKEND=nullfs\nNULLFS_ROOT=%s\nSTATE_DIR=%s\nWORKDIR=%s\nSYSLOG=0\nUNMOUNT_TIMEOUT=1\n%s", n.dfs, n.state, n.workdir, extra), 0o644)
	t.Cleanup(func() { n.unmountAll() })
	return n
}

// create makes an environment's folders on the DFS with a file in data.
func (n *node) create(jname string) {
	for _, role := range []string{"data", "system", "fstab", "rcconf"} {
		require.NoError(n.t, os.MkdirAll(filepath.Join(n.dfs, role, jname), 0o755))
	}
	testenv.WriteFile(n.t, filepath.Join(n.dfs, "data", jname, "hello.txt"), "hello from "+jname+"\n", 0o644)
}

// jailArgs is exactly what CBSD's jstart passes.
func (n *node) jailArgs(jname string) []string {
	d := environment.CBSDDirs(n.workdir, jname)
	return []string{"-d", d["data"], "-f", d["fstab"], "-j", jname, "-r", d["rcconf"], "-s", d["system"]}
}

func (n *node) start(jname string, extra ...string) testenv.Result {
	return n.startWith(testenv.Bin(n.t, "mnt-start"), nil, jname, extra...)
}

// startWith runs a given mnt-start with extra environment.
func (n *node) startWith(prog string, env []string, jname string, extra ...string) testenv.Result {
	args := append([]string{"-c", n.cfg}, append(extra, n.jailArgs(jname)...)...)
	return testenv.Run(n.t, append([]string{n.runDirEnv()}, env...), prog, args...)
}

func (n *node) stop(jname string, extra ...string) testenv.Result {
	args := append([]string{"-c", n.cfg}, append(extra, "-j", jname)...)
	return testenv.Run(n.t, []string{n.runDirEnv()}, testenv.Bin(n.t, "mnt-stop"), args...)
}

// runDirEnv gives the node a run directory of its own for mnt-start's
// quick-check notes.
func (n *node) runDirEnv() string { return quick.DirEnv + "=" + filepath.Join(n.root, "run") }

func (n *node) mounts() []string { return testenv.MountsUnder(n.t, n.workdir) }

func (n *node) unmountAll() {
	for i := 0; i < 10 && len(testenv.MountsUnder(n.t, n.root)) > 0; i++ {
		m := testenv.MountsUnder(n.t, n.root)
		f := strings.Fields(m[len(m)-1])
		exec.Command("umount", f[4]).Run()
	}
}

func (n *node) snapshot() string {
	var b strings.Builder
	failures := failures.Dir(filepath.Join(n.root, "run"))
	filepath.Walk(n.root, func(p string, fi os.FileInfo, err error) error {
		if p == failures {
			// Each refusal is counted there for envctl metrics, by design.
			return filepath.SkipDir
		}
		if err == nil {
			fmt.Fprintf(&b, "%s %v\n", p, fi.Mode())
		}
		return nil
	})
	return b.String() + strings.Join(n.mounts(), "\n")
}

func requireOK(t *testing.T, r testenv.Result) {
	t.Helper()
	require.Equal(t, 0, r.Code, "stdout: %s\nstderr: %s", r.Stdout, r.Stderr)
}

func TestMountIsIdempotentAndStopUndoes(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	requireOK(t, n.start("web1"))
	mounts := n.mounts()
	require.Len(t, mounts, 3, "data, system and fstab (MOUNT_FSTAB=1 by default, rcconf off)")
	got, err := os.ReadFile(filepath.Join(n.workdir, "jails-data", "web1-data", "hello.txt"))
	require.NoError(t, err)
	assert.Equal(t, "hello from web1\n", string(got))

	// Writing through the mount lands on the shared storage.
	testenv.WriteFile(t, filepath.Join(n.workdir, "jails-system", "web1", "note"), "x", 0o644)
	_, err = os.Stat(filepath.Join(n.dfs, "system", "web1", "note"))
	require.NoError(t, err)

	r := n.start("web1")
	requireOK(t, r)
	assert.Equal(t, mounts, n.mounts(), "the second start stacks nothing")
	assert.Empty(t, r.Stderr, "nothing to do, nothing to say")

	requireOK(t, n.stop("web1"))
	assert.Empty(t, n.mounts())
	_, err = os.Stat(state.Store{Dir: n.state}.Path("web1"))
	assert.True(t, os.IsNotExist(err), "the record is gone once everything is undone")
	requireOK(t, n.stop("web1"))
	assert.Empty(t, n.mounts())
	// Nothing lost: the data is still on the shared storage.
	_, err = os.Stat(filepath.Join(n.dfs, "data", "web1", "hello.txt"))
	require.NoError(t, err)
}

func TestVMInvocationWithoutFstab(t *testing.T) {
	n := newNode(t, "")
	n.create("vm1")
	d := environment.CBSDDirs(n.workdir, "vm1")
	r := testenv.Run(t, nil, testenv.Bin(t, "mnt-start"), "-c", n.cfg, "-d", d["data"], "-j", "vm1", "-r", d["rcconf"], "-s", d["system"])
	requireOK(t, r)
	assert.Len(t, n.mounts(), 2)
	requireOK(t, n.stop("vm1"))
}

func TestRCConfOnlyWhenAskedAndWithWarning(t *testing.T) {
	n := newNode(t, "MOUNT_RCCONF=1\nMOUNT_FSTAB=0\n")
	n.create("web1")
	r := n.start("web1")
	requireOK(t, r)
	assert.Len(t, n.mounts(), 3, "data, system, rcconf")
	assert.Contains(t, r.Stderr, "warning: MOUNT_RCCONF=1")
	assert.Contains(t, r.Stderr, "EVERY environment")
	requireOK(t, n.stop("web1"))
	assert.Empty(t, n.mounts())
}

// The third mount fails (its target is a file): the first two are undone.
func TestRollbackWhenThirdStepFails(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	testenv.WriteFile(t, environment.CBSDDirs(n.workdir, "web1")["fstab"], "not a directory", 0o644)
	r := n.start("web1")
	assert.Equal(t, 73, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "is not a directory")
	assert.Contains(t, r.Stderr, "rolled back")
	assert.Empty(t, n.mounts(), "steps 1 and 2 were undone")
	_, err := os.Stat(state.Store{Dir: n.state}.Path("web1"))
	assert.True(t, os.IsNotExist(err))
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	assert.Contains(t, lines[len(lines)-1], "error:", "the last line says what failed")
}

func TestRefusesNonEmptyTarget(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	data := environment.CBSDDirs(n.workdir, "web1")["data"]
	testenv.WriteFile(t, filepath.Join(data, "local-only.txt"), "do not hide me", 0o644)
	r := n.start("web1")
	assert.Equal(t, 73, r.Code)
	assert.Contains(t, r.Stderr, "refusing to mount over "+data)
	assert.Contains(t, r.Stderr, "ALLOW_NONEMPTY=1")
	assert.Empty(t, n.mounts())
	got, _ := os.ReadFile(filepath.Join(data, "local-only.txt"))
	assert.Equal(t, "do not hide me", string(got))
}

func TestDifferentSourceAtTargetIsAnError(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	other := filepath.Join(n.root, "other")
	require.NoError(t, os.MkdirAll(other, 0o755))
	data := environment.CBSDDirs(n.workdir, "web1")["data"]
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, exec.Command("mount", "--bind", other, data).Run())
	before := n.mounts()
	r := n.start("web1")
	assert.Equal(t, 73, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, data+" already has")
	assert.Equal(t, before, n.mounts(), "nothing changed")
}

func TestDryRunPrintsCommandsAndChangesNothing(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	before := n.snapshot()
	r := n.start("web1", "-n")
	requireOK(t, r)
	d := environment.CBSDDirs(n.workdir, "web1")
	want := fmt.Sprintf("mkdir -p %[2]s\nmount --bind %[1]s/data/web1 %[2]s\nmkdir -p %[3]s\nmount --bind %[1]s/system/web1 %[3]s\nmkdir -p %[4]s\nmount --bind %[1]s/fstab/web1 %[4]s\n",
		n.dfs, d["data"], d["system"], d["fstab"])
	assert.Equal(t, want, r.Stdout)
	assert.Equal(t, before, n.snapshot(), "no directory, mount or state was created")

	requireOK(t, n.start("web1"))
	r = n.stop("web1", "-n")
	requireOK(t, r)
	assert.Equal(t, fmt.Sprintf("umount %s\numount %s\numount %s\n", d["fstab"], d["system"], d["data"]), r.Stdout)
	assert.Len(t, n.mounts(), 3, "the dry stop unmounted nothing")
}

// A dry run shows its whole plan even when it would not run: the sources
// are not there yet (the storage is not ready), or the environment still
// runs. The plan goes to stdout, then one line on stderr says why it would
// not run, and the code is the check's own.
func TestDryRunShowsThePlanWhenItWouldNotRun(t *testing.T) {
	n := newNode(t, "RUNNING_CHECK=/bin/true\n")
	d := environment.CBSDDirs(n.workdir, "web1")
	// The refusal is counted for envctl metrics, by design: its directory
	// is made first so the snapshot may skip it.
	require.NoError(t, os.MkdirAll(failures.Dir(filepath.Join(n.root, "run")), 0o755))
	before := n.snapshot()
	r := n.start("web1", "-n")
	assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
	want := fmt.Sprintf("mkdir -p %[2]s\nmount --bind %[1]s/data/web1 %[2]s\nmkdir -p %[3]s\nmount --bind %[1]s/system/web1 %[3]s\nmkdir -p %[4]s\nmount --bind %[1]s/fstab/web1 %[4]s\n",
		n.dfs, d["data"], d["system"], d["fstab"])
	assert.Equal(t, want, r.Stdout, "the whole plan, though the sources are missing")
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "dry run: the plan above would not run: source "+filepath.Join(n.dfs, "data", "web1")+" is not available")
	assert.Equal(t, before, n.snapshot(), "no directory, mount or state was created")

	// RUNNING_CHECK=/bin/true: the environment runs, so mnt-stop refuses;
	// its dry run still shows what it would undo.
	n.create("web1")
	requireOK(t, n.start("web1"))
	r = n.stop("web1")
	assert.Equal(t, 75, r.Code, "stderr: %s", r.Stderr)
	r = n.stop("web1", "-n")
	assert.Equal(t, 75, r.Code, "stderr: %s", r.Stderr)
	assert.Equal(t, fmt.Sprintf("umount %s\numount %s\numount %s\n", d["fstab"], d["system"], d["data"]), r.Stdout)
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "dry run: the plan above would not run: ")
	assert.Len(t, n.mounts(), 3, "the dry stop unmounted nothing")
}

// Racing runs for one jname never stack a mount: the local lock makes them
// take turns and every later one finds the work done.
func TestConcurrentRunsForOneJName(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		codes := make([]int, 8)
		for i := range codes {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				codes[i] = n.start("web1").Code
			}(i)
		}
		wg.Wait()
		assert.Equal(t, []int{0, 0, 0, 0, 0, 0, 0, 0}, codes)
		require.Len(t, n.mounts(), 3, "round %d: exactly one mount per target", round)
		for i := range codes {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				codes[i] = n.stop("web1").Code
			}(i)
		}
		wg.Wait()
		assert.Equal(t, []int{0, 0, 0, 0, 0, 0, 0, 0}, codes)
		require.Empty(t, n.mounts())
	}
}

func TestBusyUnmountNamesTheHolder(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	requireOK(t, n.start("web1"))
	data := environment.CBSDDirs(n.workdir, "web1")["data"]
	holder := exec.Command("sleep", "60")
	holder.Dir = data
	require.NoError(t, holder.Start())
	defer holder.Process.Kill()
	r := n.stop("web1")
	assert.Equal(t, 75, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, fmt.Sprintf("pid %d (sleep)", holder.Process.Pid))
	assert.NotEmpty(t, n.mounts(), "a busy mount stays mounted")
	holder.Process.Kill()
	holder.Wait()
	requireOK(t, n.stop("web1"))
	assert.Empty(t, n.mounts(), "the record kept what was left to undo")
}

// The script CBSD runs after a stop finds the jname and directories from its
// own path, leaves the mount and runs mnt-stop.
func TestPoststopScriptDetaches(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	requireOK(t, n.start("web1"))
	// Installed on the shared system directory, so it shows through the mount.
	requireOK(t, testenv.Run(t, nil, testenv.Bin(t, "envctl"), "-c", n.cfg, "install-hook", "jname=web1"))
	script := cbsd.Poststop().Path(environment.CBSDDirs(n.workdir, "web1")[environment.System])
	_, err := os.Stat(filepath.Join(n.dfs, "system", "web1", "master_poststop.d", cbsd.Poststop().Name))
	require.NoError(t, err, "the script travels with the environment")
	r := testenv.Run(t, []string{"PATH=" + filepath.Dir(testenv.Bin(t, "mnt-stop")) + ":" + os.Getenv("PATH"), "ENVHOOKS_CONFIG=" + n.cfg}, script)
	requireOK(t, r)
	assert.Empty(t, n.mounts())
}

func TestExecBackend(t *testing.T) {
	root := testenv.SafeDir(t)
	log := filepath.Join(root, "calls")
	hook := filepath.Join(root, "hook.sh")
	testenv.WriteFile(t, hook, "#!/bin/sh\necho \"$*\" >> "+log+"\n", 0o755)
	n := newNode(t, "BACKEND=exec\nEXEC_HOOK="+hook+"\n")
	requireOK(t, n.start("web1"))
	requireOK(t, n.stop("web1"))
	calls, err := os.ReadFile(log)
	require.NoError(t, err)
	d := environment.CBSDDirs(n.workdir, "web1")
	flags := fmt.Sprintf("-d %s -f %s -j web1 -r %s -s %s", d["data"], d["fstab"], d["rcconf"], d["system"])
	assert.Equal(t, flags+" start\n"+flags+" stop\n", string(calls))
}

// assertGone checks that every pid listed in pidfile has ended.
func assertGone(t *testing.T, pidfile string, want int) {
	t.Helper()
	var pids []string
	require.Eventually(t, func() bool {
		raw, _ := os.ReadFile(pidfile)
		pids = strings.Fields(string(raw))
		return len(pids) >= want
	}, 5*time.Second, 20*time.Millisecond, "the hook wrote %d pids", want)
	for _, pid := range pids {
		assert.Eventually(t, func() bool {
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			return err != nil || strings.Contains(string(stat), ") Z ")
		}, 2*time.Second, 20*time.Millisecond, "process %s outlived the deadline", pid)
	}
}

// At EXEC_TIMEOUT the hook dies with everything it started: its own
// background child, and a grandchild that called setsid to leave the
// process group (which the group kill alone misses).
func TestExecBackendHungHookIsKilled(t *testing.T) {
	root := testenv.SafeDir(t)
	pidfile := filepath.Join(root, "pids")
	hook := filepath.Join(root, "hang.sh")
	testenv.WriteFile(t, hook, "#!/bin/sh\nsleep 300 &\necho $! >> "+pidfile+"\nsetsid sleep 300 &\necho $! >> "+pidfile+
		"\n( setsid sh -c 'sleep 300 & echo $! >> "+pidfile+"; wait' & )\necho $$ >> "+pidfile+"\nwait\n", 0o755)
	n := newNode(t, "BACKEND=exec\nEXEC_HOOK="+hook+"\nEXEC_TIMEOUT=1\n")
	r := n.start("web1")
	assert.Equal(t, 69, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "did not finish within 1s and was killed")
	assert.Less(t, r.Took, 60*time.Second, "the hook's 300 s are not waited for")
	assertGone(t, pidfile, 4)
}

// A stop hook that never returns is bounded by EXEC_TIMEOUT like the start
// (not by COMMAND_TIMEOUT's 30 s), and dies with what it started.
func TestExecStopHookIsBoundedByExecTimeout(t *testing.T) {
	root := testenv.SafeDir(t)
	pidfile := filepath.Join(root, "pids")
	hook := filepath.Join(root, "hook.sh")
	testenv.WriteFile(t, hook, "#!/bin/sh\ncase \"$*\" in *stop) trap '' TERM HUP INT; setsid sleep 300 & echo $! >> "+pidfile+"; echo $$ >> "+pidfile+"; while :; do sleep 1; done;; esac\n", 0o755)
	n := newNode(t, "BACKEND=exec\nEXEC_HOOK="+hook+"\nEXEC_TIMEOUT=1\nCOMMAND_TIMEOUT=300\n")
	requireOK(t, n.start("web1"))
	r := n.stop("web1")
	assert.Equal(t, 69, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "did not finish within 1s and was killed")
	assert.Less(t, r.Took, 60*time.Second, "EXEC_TIMEOUT=1 bounds the stop hook, not COMMAND_TIMEOUT=300")
	assertGone(t, pidfile, 2)
}

// A hook that exits 0 is done, even if a child it left holds its stdout
// and stderr open (a daemon it started, which lives on).
func TestExecHookThatExitsIsDoneWhileAChildHoldsItsOutput(t *testing.T) {
	root := testenv.SafeDir(t)
	pidfile := filepath.Join(root, "pids")
	hook := filepath.Join(root, "hook.sh")
	testenv.WriteFile(t, hook, "#!/bin/sh\ncase \"$*\" in *start) sleep 300 & echo $! > "+pidfile+";; esac\nexit 0\n", 0o755)
	n := newNode(t, "BACKEND=exec\nEXEC_HOOK="+hook+"\nEXEC_TIMEOUT=600\n")
	r := n.start("web1")
	requireOK(t, r)
	assert.Less(t, r.Took, 60*time.Second, "the child's 300 s are not waited for")
	raw, err := os.ReadFile(pidfile)
	require.NoError(t, err)
	pid := strings.TrimSpace(string(raw))
	_, err = os.Stat("/proc/" + pid)
	assert.NoError(t, err, "the daemon the hook started lives on")
	exec.Command("kill", pid).Run()
	requireOK(t, n.stop("web1"))
}

// The message names the deadline that fired: HOOK_TIMEOUT=2 kills the hook
// long before its EXEC_TIMEOUT of 300 s.
func TestHookTimeoutIsTheDeadlineReported(t *testing.T) {
	root := testenv.SafeDir(t)
	hook := filepath.Join(root, "hang.sh")
	testenv.WriteFile(t, hook, "#!/bin/sh\nsleep 300\n", 0o755)
	n := newNode(t, "BACKEND=exec\nEXEC_HOOK="+hook+"\nEXEC_TIMEOUT=300\nHOOK_TIMEOUT=2\n")
	r := n.start("web1")
	assert.Equal(t, 69, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "killed: HOOK_TIMEOUT=2s passed")
	assert.NotContains(t, r.Stderr, "5m0s")
	assert.Less(t, r.Took, 60*time.Second)
}

// A lock wait cut off by HOOK_TIMEOUT says so, not LOCK_TIMEOUT's 300 s.
func TestLockWaitCutByHookTimeoutSaysSo(t *testing.T) {
	n := newNode(t, "LOCK_TIMEOUT=300\nHOOK_TIMEOUT=2\n")
	n.create("web1")
	lockFile := filepath.Join(n.state, "web1.lock")
	testenv.WriteFile(t, lockFile, "", 0o600)
	f, err := os.Open(lockFile)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	r := n.start("web1")
	assert.Equal(t, 75, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "when HOOK_TIMEOUT=2s passed")
	assert.NotContains(t, r.Stderr, "5m0s")
	assert.Less(t, r.Took, 60*time.Second)
}

func TestExecBackendRefusesUnsafeHook(t *testing.T) {
	root := testenv.SafeDir(t)
	hook := filepath.Join(root, "hook.sh")
	ran := filepath.Join(root, "ran")
	testenv.WriteFile(t, hook, "#!/bin/sh\ntouch "+ran+"\n", 0o755)
	n := newNode(t, "BACKEND=exec\nEXEC_HOOK="+hook+"\n")
	refused := func(mention string) {
		t.Helper()
		r := n.start("web1")
		assert.Equal(t, 78, r.Code, r.Stderr)
		assert.Contains(t, r.Stderr, mention)
		assert.NoFileExists(t, ran, "the hook never ran")
	}
	require.NoError(t, os.Chmod(hook, 0o777))
	refused("writable by group or others")
	require.NoError(t, os.Chmod(hook, 0o755))
	require.NoError(t, os.Chown(hook, 65534, 65534))
	refused("not root")
	require.NoError(t, os.Chown(hook, 0, 0))
	// The directory it lives in, or any above it, is as good as the file.
	require.NoError(t, os.Chmod(root, 0o777))
	refused("directory " + root + " is writable by group or others")
	require.NoError(t, os.Chmod(root, 0o755))
	inTmp := filepath.Join(t.TempDir(), "hook.sh")
	testenv.WriteFile(t, inTmp, "#!/bin/sh\ntouch "+ran+"\n", 0o755)
	n = newNode(t, "BACKEND=exec\nEXEC_HOOK="+inTmp+"\n")
	refused("directory /tmp is writable by group or others (mode 1777)")
}
