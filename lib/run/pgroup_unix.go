//go:build unix

package run

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the child as the leader of a new process group and
// makes cancellation kill that whole group, so a hung helper's own children
// (a mount_nfs retrying in the background, a hook's sleep) die with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
