package run

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/lib/deadline"
)

// safeDir is a directory only root can write, with only such directories
// above it (t.TempDir is under the world-writable /tmp): where a
// configured executable may live.
func safeDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "envhooks-run-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, checkDirs(filepath.Join(dir, "x")), "the test needs a root-owned /run")
	return dir
}

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755))
	return p
}

// alive reports whether pid runs (a zombie about to be reaped counts as gone).
func alive(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	return err == nil && !strings.Contains(string(stat), ") Z ")
}

// pidsIn waits for n pids in file.
func pidsIn(t *testing.T, file string, n int) []string {
	t.Helper()
	var raw []byte
	require.Eventually(t, func() bool {
		raw, _ = os.ReadFile(file)
		return len(strings.Fields(string(raw))) >= n
	}, 5*time.Second, 10*time.Millisecond, "want %d pids in %s, have %q", n, file, raw)
	return strings.Fields(string(raw))
}

// A grandchild that calls setsid leaves the process group, so the group
// kill misses it; under the reaper it dies at the deadline all the same,
// with a double-forked daemon and a process in a new group beside it.
func TestConfiguredDeadlineKillsEveryDescendant(t *testing.T) {
	dir := safeDir(t)
	pids := filepath.Join(dir, "pids")
	hook := script(t, dir, "hook", `
setsid sleep 300 & echo $! >> `+pids+`
( setsid sh -c 'sleep 300 & echo $! >> `+pids+`; wait' & ) 
( set -m; sleep 300 & echo $! >> `+pids+`; wait ) &
sleep 0.2; echo $$ >> `+pids+`; sleep 300
`)
	start := time.Now()
	_, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{hook, "start"}, Timeout: 3 * time.Second, Configured: true})
	var re *Error
	require.True(t, errors.As(err, &re), "%v", err)
	assert.True(t, re.TimedOut)
	assert.Contains(t, err.Error(), "did not finish within 3s and was killed")
	assert.Less(t, time.Since(start), 60*time.Second, "the hook's 300 s are not waited for")
	got := pidsIn(t, pids, 4)
	for _, pid := range got {
		assert.False(t, alive(pid), "process %s outlived the deadline", pid)
	}
}

// Without the reaper (a command the configuration does not name), the
// group kill is all there is: this is what the reaper is for.
func TestGroupKillMissesASetsidGrandchild(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	_, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "setsid sleep 30 & echo $! > " + pids + "; sleep 1; sleep 30"}, Timeout: 3 * time.Second})
	require.Error(t, err)
	pid := pidsIn(t, pids, 1)[0]
	assert.True(t, alive(pid), "the setsid grandchild escapes a group kill")
	p, _ := os.FindProcess(atoi(pid))
	p.Kill()
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// A hook that exits is done, even if a child it left keeps its stdout and
// stderr open; the child lives on (a daemon the hook started).
func TestExitedCommandIsDoneWhileAChildHoldsItsOutput(t *testing.T) {
	dir := safeDir(t)
	pids := filepath.Join(dir, "pids")
	hook := script(t, dir, "hook", "sleep 60 & echo $! > "+pids+"\necho attached\n")
	for _, configured := range []bool{false, true} {
		start := time.Now()
		res, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{hook}, Timeout: 20 * time.Second, Configured: configured})
		require.NoError(t, err, "configured=%v", configured)
		assert.Equal(t, "attached\n", string(res.Stdout))
		assert.Less(t, time.Since(start), 20*time.Second, "configured=%v: the child's 30 s are not waited for", configured)
		pid := pidsIn(t, pids, 1)[0]
		assert.True(t, alive(pid), "a hook's daemon is not killed when the hook succeeds")
		p, _ := os.FindProcess(atoi(pid))
		p.Kill()
		os.Remove(pids)
	}
}

// The exit code, the stderr tail and a death by signal come through the
// reaper as they would without it.
func TestConfiguredStatusComesThrough(t *testing.T) {
	dir := safeDir(t)
	_, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{script(t, dir, "fails", "echo 'no such export' >&2; exit 7\n")}, Configured: true})
	var re *Error
	require.True(t, errors.As(err, &re))
	assert.Equal(t, 7, re.ExitCode)
	assert.Equal(t, "no such export", re.Stderr)
	_, err = osRunner{}.Run(context.Background(), Cmd{Argv: []string{script(t, dir, "killed", "kill -9 $$\n")}, Configured: true})
	require.True(t, errors.As(err, &re))
	assert.Equal(t, -1, re.ExitCode)
	assert.Contains(t, err.Error(), "signal: killed")
	res, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{script(t, dir, "args", `printf '[%s]' "$@"`), "-j", "a b", "start"}, Configured: true})
	require.NoError(t, err)
	assert.Equal(t, "[-j][a b][start]", string(res.Stdout))
}

// A stop hook that never returns is bounded like any other.
func TestNeverReturningHookIsBounded(t *testing.T) {
	dir := safeDir(t)
	hook := script(t, dir, "stop", "trap '' TERM INT HUP; while :; do sleep 1; done\n")
	start := time.Now()
	_, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{hook, "stop"}, Timeout: 500 * time.Millisecond, Configured: true})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 20*time.Second, "a hook that never returns is bounded")
}

// What runs is the file that was checked: a file renamed over the path
// afterwards is not what runs.
func TestRunsTheFileThatWasChecked(t *testing.T) {
	dir := safeDir(t)
	hook := script(t, dir, "hook", "echo checked\n")
	exe, err := OpenExecutable(hook)
	require.NoError(t, err)
	defer exe.Close()
	swapped := script(t, dir, "other", "echo swapped\n")
	require.NoError(t, os.Rename(swapped, hook))
	cmd := reaperCommand(context.Background(), []string{hook}, exe)
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, "checked\n", string(out))
}

// Which deadline fired is what the message says: the run's, not the
// command's own 30 s.
func TestKilledByTheCallersDeadlineSaysSo(t *testing.T) {
	ctx, cancel := deadline.WithTimeout(context.Background(), 300*time.Millisecond, "HOOK_TIMEOUT")
	defer cancel()
	_, err := osRunner{}.Run(ctx, Cmd{Argv: []string{"sleep", "30"}, Timeout: 30 * time.Second})
	require.Error(t, err)
	assert.Equal(t, "sleep was killed: HOOK_TIMEOUT=300ms passed", err.Error())
	assert.NotContains(t, err.Error(), "30s")
}

func mkfifo(path string) error { return unix.Mkfifo(path, 0o755) }
