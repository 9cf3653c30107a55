//go:build linux

// Package fbsd is a model of the FreeBSD kernel's mount rules where they
// differ from Linux's, for replaying CBSD on a machine that runs Linux.
// Each rule names the FreeBSD source or manual page it follows:
//
//   - The mount table is getfsstat(2)'s list, in mount order; a nullfs
//     mount names its source directory as what it is mounted from
//     (f_mntfromname), an NFS mount its server:/path.
//   - A nullfs mount registers itself as an upper of the mount that holds
//     its source (sys/fs/nullfs/null_vfsops.c, nullfs_mount, through
//     vfs_register_upper_from_vp); dounmount() in sys/kern/vfs_mount.c
//     answers EBUSY while that mount's mnt_uppers list is not empty, forced
//     or not (forced unmounts recurse into the uppers only with the sysctl
//     vfs.recursive_forced_unmount=1, whose default is 0).
//   - A mount with another mount inside it is busy: the inner mount holds a
//     reference on the vnode it covers, and vflush() (sys/kern/vfs_subr.c)
//     counts a vnode in use as busy, EBUSY, unless FORCECLOSE (umount -f,
//     MNT_FORCE) reclaims it; the inner mount then stays in the list.
//   - Open files make a mount busy the same way (unmount(2): EBUSY), and
//     umount -f unmounts it anyway.
//   - umount(8): against an NFS server that does not answer, umount and
//     umount -f wait ("a forced dismount can take up to 1 minute or more to
//     complete against an unresponsive server"); umount -N dismounts an NFS
//     mount without asking the server.
//
// It serves as the replay's Kernel, as the engine's plan.Kernel and
// mount table, and as the runner of mount_nfs, umount and jls. With Real
// set, a nullfs mount is also made as a real bind mount (run it in a
// private mount namespace), so that files written through it land where
// they would on FreeBSD; the rules above still decide every unmount before
// the real one is done.
package fbsd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/run"
)

type mount struct {
	from, on, fstype string
	lower            *mount // the mount a nullfs mount's source lies in
	id               int
}

// Kernel is the model. Its zero value has only the root filesystem.
type Kernel struct {
	mu      sync.Mutex
	mounts  []*mount
	next    int
	busy    map[string]bool // mount points with open files
	hung    map[string]bool // NFS servers that do not answer
	running map[string]bool // jails jls finds
	// Calls lists every mount-changing call, for the tests.
	Calls []string
	// Real makes nullfs mounts real bind mounts as well.
	Real bool
	// RunDir, if set, holds a file per running jail for jls.
	RunDir string
}

// New returns a kernel with / mounted.
func New() *Kernel {
	k := &Kernel{busy: map[string]bool{}, hung: map[string]bool{}, running: map[string]bool{}}
	k.mounts = []*mount{{from: "/dev/ada0p2", on: "/", fstype: "ufs", id: 0}}
	k.next = 1
	return k
}

// Busy marks target as having open files (or not).
func (k *Kernel) Busy(target string, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.busy[filepath.Clean(target)] = on
}

// Hang makes the NFS server stop answering (or answer again).
func (k *Kernel) Hang(server string, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.hung[server] = on
}

// SetRunning is what jls -j NAME finds.
func (k *Kernel) SetRunning(jname string, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.running[jname] = on
}

// holder is the mount that holds path (the top one at the longest prefix).
func (k *Kernel) holder(path string) *mount {
	var best *mount
	for _, m := range k.mounts {
		if mounttab.Within(path, m.on) && (best == nil || len(m.on) >= len(best.on)) {
			best = m
		}
	}
	return best
}

// Nullfs is mount_nullfs SRC TARGET.
func (k *Kernel) Nullfs(src, target string, _ bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	src, target = filepath.Clean(src), filepath.Clean(target)
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return syscall.ENOENT
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		return syscall.ENOENT
	}
	if k.Real {
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return err
		}
	}
	k.Calls = append(k.Calls, "mount -t nullfs "+src+" "+target)
	k.mounts = append(k.mounts, &mount{from: src, on: target, fstype: "nullfs", lower: k.holder(src), id: k.next})
	k.next++
	return nil
}

// Bind is plan.Kernel's mount: a nullfs mount.
func (k *Kernel) Bind(src, target string) error { return k.Nullfs(src, target, false) }

// Unmount is unmount(2) by path, MNT_FORCE with force.
func (k *Kernel) Unmount(target string, force bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.unmount(filepath.Clean(target), force)
}

func (k *Kernel) unmount(target string, force bool) error {
	i := -1
	for j, m := range k.mounts {
		if m.on == target {
			i = j
		}
	}
	if i <= 0 {
		return syscall.EINVAL // not a mount point (or the root)
	}
	m := k.mounts[i]
	for _, o := range k.mounts {
		if o.lower == m {
			return syscall.EBUSY // mnt_uppers is not empty
		}
	}
	nested := false
	for _, o := range k.mounts[i+1:] {
		if o.on != m.on && mounttab.Within(o.on, m.on) {
			nested = true
		}
	}
	if (nested || k.busy[target]) && !force {
		return syscall.EBUSY
	}
	if k.Real && m.fstype == "nullfs" {
		// A forced unmount leaves the inner mounts in place, as
		// FreeBSD does; Linux needs MNT_DETACH to let them stay.
		flags := 0
		if nested {
			flags = unix.MNT_DETACH
		}
		if err := unix.Unmount(target, flags); err != nil {
			return err
		}
	}
	k.Calls = append(k.Calls, fmt.Sprintf("umount%s %s", map[bool]string{true: " -f", false: ""}[force], target))
	k.mounts = append(k.mounts[:i], k.mounts[i+1:]...)
	delete(k.busy, target)
	return nil
}

// Table is getfsstat(MNT_NOWAIT), in the shape the engine reads on the
// machine it runs on: a nullfs mount also carries the filesystem and
// directory it shows (Dev, Root), which is how a Linux build of the
// engine recognises it.
func (k *Kernel) Table() (mounttab.Table, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := make(mounttab.Table, 0, len(k.mounts))
	for _, m := range k.mounts {
		dev, root := strconv.Itoa(m.id), "/"
		if m.fstype == "nullfs" && m.lower != nil {
			base := m.lower
			for base.fstype == "nullfs" && base.lower != nil {
				base = base.lower
			}
			rel, _ := filepath.Rel(m.lower.on, m.from)
			dev = strconv.Itoa(base.id)
			root = filepath.Join(rootOf(m.lower), rel)
		}
		t = append(t, mounttab.Mount{Source: m.from, Target: m.on, FSType: m.fstype, Dev: dev, Root: root})
	}
	return t, nil
}

// rootOf is the directory of its filesystem that mount m shows.
func rootOf(m *mount) string {
	if m.fstype != "nullfs" || m.lower == nil {
		return "/"
	}
	rel, _ := filepath.Rel(m.lower.on, m.from)
	return filepath.Join(rootOf(m.lower), rel)
}

// ReadMounts is Table as the engine's mount-table reader.
func (k *Kernel) ReadMounts() (mounttab.Table, error) { return k.Table() }

// Run answers the commands the FreeBSD side of envhooks runs for NFS and
// the running check: mount_nfs [-o...] SERVER:/PATH TARGET, umount [-f|-N]
// TARGET, jls -j NAME jid.
func (k *Kernel) Run(ctx context.Context, c run.Cmd) (run.Result, error) {
	a := c.Argv
	fail := func(code int, msg string) (run.Result, error) {
		return run.Result{Stderr: []byte(msg)}, &run.Error{Cmd: c, ExitCode: code, Stderr: msg}
	}
	hang := func() (run.Result, error) {
		wait := c.Timeout
		if wait == 0 {
			wait = time.Hour
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		return run.Result{}, &run.Error{Cmd: c, ExitCode: -1, TimedOut: true, Err: errors.New("killed at its deadline")}
	}
	switch {
	case len(a) == 4 && a[0] == "jls" && a[1] == "-j":
		k.mu.Lock()
		on := k.running[a[2]]
		k.mu.Unlock()
		if k.RunDir != "" {
			if _, err := os.Stat(filepath.Join(k.RunDir, a[2])); err == nil {
				on = true
			}
		}
		if on {
			return run.Result{Stdout: []byte("1\n")}, nil
		}
		return fail(1, "jls: jail \""+a[2]+"\" not found")
	case len(a) >= 3 && a[0] == "mount_nfs":
		src, target := a[len(a)-2], filepath.Clean(a[len(a)-1])
		server, _, _ := strings.Cut(src, ":")
		k.mu.Lock()
		hung := k.hung[server]
		k.mu.Unlock()
		if hung {
			return hang()
		}
		k.mu.Lock()
		k.Calls = append(k.Calls, "mount_nfs "+src+" "+target)
		k.mounts = append(k.mounts, &mount{from: src, on: target, fstype: "nfs", id: k.next})
		k.next++
		k.mu.Unlock()
		return run.Result{}, nil
	case len(a) >= 2 && a[0] == "umount":
		target := filepath.Clean(a[len(a)-1])
		flag := ""
		if len(a) == 3 {
			flag = a[1]
		}
		k.mu.Lock()
		var m *mount
		for _, o := range k.mounts {
			if o.on == target {
				m = o
			}
		}
		hung := m != nil && m.fstype == "nfs" && k.hung[strings.SplitN(m.from, ":", 2)[0]]
		k.mu.Unlock()
		if hung && flag != "-N" {
			return hang()
		}
		if flag == "-N" && (m == nil || m.fstype != "nfs") {
			return fail(1, "umount: -N is only for NFS mounts")
		}
		if err := k.Unmount(target, flag != ""); err != nil {
			if errors.Is(err, syscall.EBUSY) {
				return fail(1, "umount: unmount of "+target+" failed: Device busy")
			}
			return fail(1, "umount: "+target+": not a file system root directory")
		}
		return run.Result{}, nil
	}
	return fail(127, a[0]+": not modelled by the FreeBSD kernel model")
}
