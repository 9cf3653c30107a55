//go:build linux || freebsd

package run

import (
	"fmt"
	"os"
	"syscall"
)

// sameFile returns path if it still names the file exe holds open (same
// device and inode): where a descriptor cannot be executed, the identity is
// checked again just before the exec, and the directories above it, which
// only root can write, keep it that way.
func sameFile(exe *os.File, path string) (string, error) {
	var held, now syscall.Stat_t
	if err := syscall.Fstat(int(exe.Fd()), &held); err != nil {
		return "", err
	}
	if err := syscall.Stat(path, &now); err != nil {
		return "", err
	}
	if held.Dev != now.Dev || held.Ino != now.Ino {
		return "", fmt.Errorf("%s was replaced after it was checked: not running it", path)
	}
	return path, nil
}
