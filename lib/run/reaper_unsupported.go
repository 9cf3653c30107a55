//go:build !linux && !freebsd

package run

import (
	"context"
	"os/exec"
)

// reaperCommand: without a reaper facility a configured executable runs as
// any command does, in a process group of its own, from its checked path.
func reaperCommand(ctx context.Context, argv []string, exe *Executable) *exec.Cmd {
	cmd := exec.CommandContext(ctx, exe.Path, argv[1:]...)
	cmd.Args[0] = argv[0]
	setProcessGroup(cmd)
	return cmd
}
