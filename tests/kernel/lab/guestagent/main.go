//go:build linux

// Command guestagent is the lab guest's init and its remote hands. The
// initramfs mounts the host's root (read-only, under a tmpfs overlay) and
// switches to it running this program as PID 1. It mounts what a system
// needs, loads the modules the host asked for, configures the guest's
// address, then starts itself again as the server of the lab's RPC calls
// (run a command, write a file, list processes, power off) on a
// virtio-serial port, and reaps every orphan while that server lives. When
// the server ends, the guest powers off.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serve(); err != nil {
			fmt.Fprintln(os.Stderr, "guestagent:", err)
			os.Exit(1)
		}
		return
	}
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "guestagent: setup:", err)
		powerOff()
	}
	initLoop()
}

const path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// setup makes the switched root a usable system. /tmp stays the overlay's:
// the guest sees what the host's tests put there (their freshly built
// binaries), and what it writes there stays its own. Its inputs come from the
// kernel command line, which the kernel hands to init as environment.
func setup() error {
	os.Setenv("PATH", path)
	os.Setenv("HOME", "/root")
	for _, m := range []struct{ src, dst, fstype, opts string }{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devpts", "/dev/pts", "devpts", "gid=5,mode=620,ptmxmode=666"},
		{"tmpfs", "/dev/shm", "tmpfs", "mode=1777"},
		{"tmpfs", "/run", "tmpfs", "mode=755"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fstype, 0, m.opts); err != nil {
			return fmt.Errorf("mount %s: %v", m.dst, err)
		}
	}
	os.MkdirAll("/run/lock", 0o1777)
	if h := os.Getenv("LAB_HOSTNAME"); h != "" {
		if err := unix.Sethostname([]byte(h)); err != nil {
			return err
		}
		os.WriteFile("/etc/hostname", []byte(h+"\n"), 0o644)
	}
	modules := []string{"virtio_console", "virtio_net"}
	if m := os.Getenv("LAB_MODULES"); m != "" {
		modules = append(modules, strings.Split(m, ",")...)
	}
	if err := sh(append([]string{"modprobe", "-a"}, modules...)...); err != nil {
		return err
	}
	addr := os.Getenv("LAB_ADDR")
	if addr == "" {
		addr = "10.0.2.15/24"
	}
	for _, argv := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", addr, "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"},
	} {
		if err := sh(argv...); err != nil {
			return err
		}
	}
	return nil
}

func sh(argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v", strings.Join(argv, " "), err)
	}
	return nil
}

// initLoop starts the server and reaps children until the server is gone.
func initLoop() {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "guestagent:", err)
		powerOff()
	}
	server := exec.Command(self, "serve")
	server.Stdout, server.Stderr = os.Stderr, os.Stderr
	server.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := server.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "guestagent: start server:", err)
		powerOff()
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid == server.Process.Pid {
			fmt.Fprintln(os.Stderr, "guestagent: server ended:", ws, err)
			powerOff()
		}
	}
}

func powerOff() {
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
