//go:build linux || freebsd

package run

// A configured executable (a hook) runs under a reaper: this program
// started again as reaperName, which makes itself the reaper of everything
// it starts (PR_SET_CHILD_SUBREAPER on Linux, procctl PROC_REAP_ACQUIRE on
// FreeBSD), starts the hook, and waits. Every process the hook leaves
// behind is reparented to it instead of init, whatever session or process
// group it moved to, so at the deadline (the runner sends SIGTERM) it kills
// all its descendants and reaps them until it has no child left: nothing
// the hook started outlives the deadline. When the hook exits by itself,
// the reaper exits with its status at once and whatever the hook left
// running (a daemon it started) lives on under init, as it would have
// without the reaper.
//
// One reaper per command rather than this process itself: envctl runs
// several environments at once, and a process-wide reaper could not tell
// whose orphan is whose.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// reaperName is argv[0] of this program started as a reaper; argv[1] is
// the checked executable's real path, argv[2:] the command, and descriptor
// 3 the checked executable.
const reaperName = "envhooks-reaper"

// executableFD is where the reaper finds the checked executable.
const executableFD = 3

// killBudget bounds the reaper's sweep; the runner's killGrace bounds the
// reaper itself.
const killBudget = 400 * time.Millisecond

func init() {
	if len(os.Args) > 2 && os.Args[0] == reaperName {
		os.Exit(reap(os.Args[1], os.Args[2:]))
	}
}

func reaperCommand(ctx context.Context, argv []string, exe *Executable) *exec.Cmd {
	cmd := exec.CommandContext(ctx, selfPath())
	cmd.Args = append([]string{reaperName, exe.Path}, argv...)
	cmd.ExtraFiles = []*os.File{exe.File}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	return cmd
}

// reap is the reaper: it runs argv from the executable at descriptor 3
// and returns the exit code to leave with.
func reap(path string, argv []string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		return 126
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if err := becomeReaper(); err != nil {
		return fail(fmt.Errorf("cannot become the reaper of its processes: %v", err))
	}
	exe := os.NewFile(executableFD, path)
	run, err := executablePath(exe, path)
	if err != nil {
		return fail(err)
	}
	p, err := os.StartProcess(run, argv, &os.ProcAttr{Env: os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, exe}})
	if err != nil {
		return fail(err)
	}
	exited := make(chan syscall.WaitStatus, 1)
	gone := make(chan struct{})
	go waitAll(p.Pid, exited, gone)
	select {
	case ws := <-exited:
		return exitCode(ws)
	case <-term:
		sweep(gone)
		return 128 + int(syscall.SIGKILL)
	}
}

// waitAll reaps every child as it ends, reports the command's own status
// on exited, and closes gone once no child is left.
func waitAll(pid int, exited chan<- syscall.WaitStatus, gone chan<- struct{}) {
	defer close(gone)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return // ECHILD: no child, hence no descendant, is left
		case got == pid && (ws.Exited() || ws.Signaled()):
			exited <- ws
		}
	}
}

// sweep kills every descendant until none is left, or the budget is
// spent. Killing one reparents its children here, and a fork may race
// with the kill: each round finds what the last one left.
func sweep(gone <-chan struct{}) {
	stop := time.After(killBudget)
	for {
		killDescendants()
		select {
		case <-gone:
			return
		case <-stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// exitCode passes the command's status on: its exit code, or its death by
// a signal, which the reaper re-raises on itself so that the runner sees
// what it would have seen without one.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		sig := ws.Signal()
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig)
		time.Sleep(100 * time.Millisecond) // a signal that does not kill (unlikely)
		return 128 + int(sig)
	}
	return ws.ExitStatus()
}
