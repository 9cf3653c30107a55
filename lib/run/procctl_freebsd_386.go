package run

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procctl on i386: the 64-bit id_t takes two argument words, low first.
func procctl(idtype, id, cmd int, data unsafe.Pointer) error {
	id64 := int64(id)
	_, _, errno := syscall.Syscall6(unix.SYS_PROCCTL, uintptr(idtype), uintptr(id64), uintptr(id64>>32), uintptr(cmd), uintptr(data), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
