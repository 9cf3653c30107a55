//go:build linux || freebsd

// Package zfsfuse starts a private zfs-fuse daemon for the ZFS tests and the
// ZFS benchmark: real ZFS in user space, on machines without the OpenZFS
// kernel module. The caller must already run as root in a private mount
// namespace (testenv.Main, benchenv.PrivateNamespace).
package zfsfuse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Deadline bounds every zfs/zpool call made through Run.
const Deadline = 60 * time.Second

// Run runs a command under Deadline and returns its combined output.
func Run(argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	var b bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%v: %v: %s", argv, err, bytes.TrimSpace(b.Bytes()))
	}
	return b.String(), err
}

// Start starts a zfs-fuse daemon of the caller's own and waits until it
// answers. zfs-fuse has fixed paths (/var/run/zfs/zfs_socket, /var/lock/zfs,
// /var/lib/zfs); fresh tmpfs mounts over /run and /var/lib/zfs in the
// caller's private namespace give this daemon its own socket, lock and pool
// cache, so a daemon already running on the host is neither used nor
// disturbed. stop ends the daemon (only this one) and waits for it.
func Start() (stop func(), err error) {
	for _, dir := range []string{"/run", "/var/lib/zfs"} {
		if _, err := Run("mount", "-t", "tmpfs", "-o", "mode=0755", "envhooks-zfs", dir); err != nil {
			return nil, err
		}
	}
	for _, dir := range []string{"/run/zfs", "/run/lock/zfs"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	d := exec.Command("zfs-fuse", "--no-daemon", "--no-kstat-mount")
	var logbuf bytes.Buffer
	d.Stdout, d.Stderr = &logbuf, &logbuf
	// If the caller dies without stopping it, the daemon must not outlive
	// it (it would keep the namespace and its mounts alive).
	d.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	stop = func() {
		d.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			d.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := Run("zpool", "list"); err == nil {
			return stop, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("zfs-fuse exited: %v\n%s", err, logbuf.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("zfs-fuse did not answer within 20s\n" + logbuf.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
