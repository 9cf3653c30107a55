package run

import (
	"os"
	"syscall"
	"unsafe"
)

// From <sys/procctl.h> and <sys/wait.h> (procctl(2)).
const (
	procPID         = 0 // P_PID, the first idtype_t
	procReapAcquire = 2 // PROC_REAP_ACQUIRE
	procReapKill    = 6 // PROC_REAP_KILL
)

// reaperKill is struct procctl_reaper_kill.
type reaperKill struct {
	Sig     int32      // rk_sig: the signal to send
	Flags   uint32     // rk_flags: 0 signals every descendant of the reaper
	Subtree int32      // rk_subtree, with REAPER_KILL_SUBTREE
	Killed  uint32     // rk_killed: how many were signalled
	FPid    int32      // rk_fpid: the first pid that could not be
	Pad0    [15]uint32 // rk_pad0
}

// The kernel copies exactly sizeof(struct procctl_reaper_kill) = 80 bytes.
var _ = [1]struct{}{}[unsafe.Sizeof(reaperKill{})-80]

// selfPath is this program's file, as the kernel recorded it at exec.
func selfPath() string {
	p, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return p
}

// becomeReaper acquires reaper status; procctl(2) wants P_PID and our own
// pid for it.
func becomeReaper() error { return procctl(procPID, os.Getpid(), procReapAcquire, nil) }

// executablePath: FreeBSD cannot exec a descriptor without fdescfs on
// /dev/fd, so the checked path runs, after its identity is checked again.
func executablePath(exe *os.File, path string) (string, error) { return sameFile(exe, path) }

// killDescendants signals every descendant of this reaper, whatever
// session or process group it moved to (PROC_REAP_KILL without flags).
// ESRCH, nothing left to signal, is the end of the sweep.
func killDescendants() {
	rk := reaperKill{Sig: int32(syscall.SIGKILL)}
	_ = procctl(procPID, os.Getpid(), procReapKill, unsafe.Pointer(&rk))
}
