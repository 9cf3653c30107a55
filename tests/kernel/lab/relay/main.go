// Command relay joins one guest TCP connection to a server on the host.
// qemu's user network runs it for every connection the guest opens to a
// forwarded port (guestfwd=...-cmd:relay HOST:PORT GUESTDIR), with that
// connection as its standard input and output. A guestfwd to a chardev
// would instead open one host connection when qemu starts and pour every
// guest connection into it, which breaks any protocol that opens a second
// connection (an NFSv3 mount's portmapper and MOUNT calls, a second iSCSI
// login).
//
// Each direction is copied until its end, then shut down on the other side,
// so a client that half-closes still gets its answer. qemu spawns the relay
// detached (it is not qemu's child, so no parent-death signal reaches it),
// and a guest that dies leaves nothing the relay could notice on a
// connection whose server went silent; so the relay also watches qemu's
// pid file in GUESTDIR and exits when qemu is gone. It writes nothing of its
// own: stderr is the guest's connection too.
package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		os.Exit(2)
	}
	go watchQemu(filepath.Join(os.Args[2], "qemu.pid"))
	server, err := net.DialTimeout("tcp", os.Args[1], 5*time.Second)
	if err != nil {
		os.Exit(1) // the guest sees its connection closed, as with a refused one
	}
	guest, err := net.FileConn(os.Stdin)
	if err != nil {
		os.Exit(1)
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if c, ok := dst.(interface{ CloseWrite() error }); ok {
			c.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(server, guest)
	go pipe(guest, server)
	<-done
	<-done
}

// watchQemu exits the relay once qemu's pid file is gone or names a
// process that no longer exists.
func watchQemu(pidFile string) {
	for {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			os.Exit(0)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || syscall.Kill(pid, 0) == syscall.ESRCH {
			os.Exit(0)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
