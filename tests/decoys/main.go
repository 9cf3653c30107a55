//go:build linux

// Command decoys runs a command while decoys hold, on 127.0.0.1, the ports
// an NFS or iSCSI host already has taken: 111 (rpcbind), 2049 (NFS) and
// 3260 (iSCSI), TCP and UDP. A TCP decoy accepts and never answers. A test
// that leans on the machine's own services then fails: its own server
// cannot bind the port, or its client hangs on the decoy until a deadline.
// So a test run under decoys that passes shows the tests bring their own
// servers, in network namespaces of their own:
//
//	go run ./tests/decoys go test -count=1 ./hooks/nfs ./tests/nfs ./tests/iscsi
//
// A port something on the machine already holds is left to it: it is as
// good a decoy. The command's exit code is decoys' own.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"

	"github.com/envhooks/envhooks/tests/testnet"
)

// Ports are the well-known ports the decoys hold.
var Ports = []int{111, 2049, 3260}

func main() { os.Exit(run(os.Args[1:])) }

func run(argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "usage: decoys COMMAND [ARG...]")
		return 64
	}
	for _, port := range Ports {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if _, stop, err := testnet.SilentOn(addr); err == nil {
			defer stop()
			fmt.Fprintf(os.Stderr, "decoys: a silent server holds TCP %s\n", addr)
		} else {
			fmt.Fprintf(os.Stderr, "decoys: TCP %s is held already (%v): left to it\n", addr, err)
		}
		if c, err := net.ListenPacket("udp", addr); err == nil {
			defer c.Close()
			fmt.Fprintf(os.Stderr, "decoys: a silent server holds UDP %s\n", addr)
		} else {
			fmt.Fprintf(os.Stderr, "decoys: UDP %s is held already (%v): left to it\n", addr, err)
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		fmt.Fprintln(os.Stderr, "decoys:", err)
		return 1
	}
}
