package run

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procctl on 32-bit ARM: a 64-bit argument starts at an even argument
// word, so a pad word follows idtype (as x/sys/unix passes lseek's offset).
func procctl(idtype, id, cmd int, data unsafe.Pointer) error {
	id64 := int64(id)
	_, _, errno := syscall.Syscall6(unix.SYS_PROCCTL, uintptr(idtype), 0, uintptr(id64), uintptr(id64>>32), uintptr(cmd), uintptr(data))
	if errno != 0 {
		return errno
	}
	return nil
}
