//go:build freebsd && (amd64 || arm64 || riscv64)

package run

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procctl(idtype_t idtype, id_t id, int cmd, void *data): on 64-bit
// systems id_t (int64) is one register.
func procctl(idtype, id, cmd int, data unsafe.Pointer) error {
	_, _, errno := syscall.Syscall6(unix.SYS_PROCCTL, uintptr(idtype), uintptr(id), uintptr(cmd), uintptr(data), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
