//go:build linux

package testnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

const isolatedMarker = "ENVHOOKS_TEST_NETNS"

// Isolate re-executes the running program (a test binary or a benchmark)
// inside new network and mount namespaces and exits with its code; in the
// re-executed copy it brings loopback up and returns. Every test that
// needs a port or a daemon of its own calls it first (in TestMain), so its
// servers (rpcbind on 111, ganesha on 2049, tgtd on 3260, etcd, the lab's
// forwarded ports) never meet what the machine already runs, and the
// tests send nothing to the machine's own network. Without root it
// returns at once and leaves the verdict to the caller (testenv.Main
// skips, or fails under CI).
func Isolate() {
	if Isolated() {
		if err := loopbackUp(); err != nil {
			fmt.Fprintln(os.Stderr, "cannot bring up loopback in the test network namespace:", err)
			os.Exit(1)
		}
		return
	}
	if os.Geteuid() != 0 {
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests with servers of their own need unshare(1) from util-linux:", err)
		os.Exit(1)
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command(unshare, append([]string{"--net", "--mount", "--propagation", "private", "--", exe}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), isolatedMarker+"=1")
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Isolated reports whether this process runs in the namespaces Isolate made.
func Isolated() bool { return os.Getenv(isolatedMarker) != "" }

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
