// Command relay joins one guest TCP connection to a server on the host.
// qemu's user network runs it for every connection the guest opens to a
// forwarded port (guestfwd=...-cmd:relay HOST:PORT), with that connection
// as its standard input and output. A guestfwd to a chardev would instead
// open one host connection when qemu starts and pour every guest
// connection into it, which breaks any protocol that opens a second
// connection (an NFSv3 mount's portmapper and MOUNT calls, a second iSCSI
// login).
//
// It writes nothing of its own: stderr is the guest's connection too.
package main

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	// qemu may die without closing us cleanly: go with it.
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0)
	if os.Getppid() == 1 || len(os.Args) != 2 {
		os.Exit(2)
	}
	server, err := net.DialTimeout("tcp", os.Args[1], 5*time.Second)
	if err != nil {
		os.Exit(1) // the guest sees its connection closed, as with a refused one
	}
	guest, err := net.FileConn(os.Stdin)
	if err != nil {
		os.Exit(1)
	}
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if c, ok := dst.(interface{ CloseWrite() error }); ok {
			c.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go pipe(server, guest)
	go pipe(guest, server)
	wg.Wait()
}
