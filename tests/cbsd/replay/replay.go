// Package replay plays CBSD's jail and bhyve commands the way CBSD's own
// scripts run them, step by step and in their order, so that envhooks' hooks
// meet what they meet under CBSD: jcreate, jstart, jstop, jcleanup, bcreate,
// bstart, bstop, jregister and junregister. Each step names the CBSD file it
// follows (github.com/cbsd/cbsd, sudoexec/ and jailctl/ and subr/). Only what
// touches files, mounts and the hooks is played; networking, rctl, devfs
// rules and the like are left out.
//
// Mounts go through a Kernel: real bind mounts on Linux (the mount rules the
// two kernels share), or a model of FreeBSD's rules where they differ
// (tests/cbsd/fbsd). The hooks go through Hooks: the real mnt-start and
// master_poststop.d scripts as programs, or the same code in-process when
// the kernel is a model.
package replay

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/envhooks/envhooks/lib/mounttab"
)

// Kernel is the part of the OS the replay mounts with.
type Kernel interface {
	// Nullfs is mount_nullfs [-o ro] SRC TARGET (a bind mount on Linux).
	Nullfs(src, target string, readOnly bool) error
	// Unmount is umount [-f] TARGET; CBSD ignores its failures.
	Unmount(target string, force bool) error
	// Table is the mount table as mount(8) prints it.
	Table() (mounttab.Table, error)
}

// Hooks runs what CBSD runs that is not CBSD's.
type Hooks interface {
	// MntStart runs the jail's mnt_start program with CBSD's flags.
	MntStart(program string, argv []string) error
	// MasterScripts runs every executable in dir, with no arguments, as
	// subr/jcreate.subr's external_exec_master_script does.
	MasterScripts(dir string) error
}

// Node is one CBSD node.
type Node struct {
	Name    string // CBSD's nodename: ${workdir}/nodename
	Workdir string
	Kernel  Kernel
	Hooks   Hooks
	// Base stands for the FreeBSD base a baserw=0 jail mounts read-only on
	// its root (${BASE_DIR}); Ports for /usr/ports.
	Base, Ports string
	// RunDir holds one file per running environment, named after it: the
	// jail's jid or the VM's /dev/vmm entry, as RUNNING_CHECK sees them.
	RunDir string
}

// New lays a node out: the workdir's directories and its nodename file.
func New(name, workdir, base, ports, runDir string, k Kernel, h Hooks) (*Node, error) {
	n := &Node{Name: name, Workdir: workdir, Kernel: k, Hooks: h, Base: base, Ports: ports, RunDir: runDir}
	for _, d := range []string{"jails", "jails-data", "jails-system", "jails-fstab", "jails-rcconf", "vm", "var/db/jails"} {
		if err := os.MkdirAll(filepath.Join(workdir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// The base has every directory the jail's mounts go on: it is mounted
	// read-only on the jail root before them.
	for _, d := range []string{base + "/bin", base + "/etc", base + "/root", base + "/tmp", base + "/usr/local", base + "/usr/ports/distfiles",
		base + "/var", base + "/dev", ports, runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(base, "bin", "sh"), []byte("base\n"), 0o755); err != nil {
		return nil, err
	}
	return n, os.WriteFile(filepath.Join(workdir, "nodename"), []byte(name+"\n"), 0o644)
}

// Paths CBSD derives for jname (cbsd.conf and rcconf.subr's init_jail_path).
func (n *Node) path(j string) string     { return filepath.Join(n.Workdir, "jails", j) }
func (n *Node) data(j string) string     { return filepath.Join(n.Workdir, "jails-data", j+"-data") }
func (n *Node) sysdir(j string) string   { return filepath.Join(n.Workdir, "jails-system", j) }
func (n *Node) fstabdir(j string) string { return filepath.Join(n.Workdir, "jails-fstab", j) }
func (n *Node) rcconfdir() string        { return filepath.Join(n.Workdir, "jails-rcconf") }

// Lock is jails-system/<j>/locked.
func (n *Node) Lock(j string) string { return filepath.Join(n.sysdir(j), "locked") }

// Running reports whether CBSD's kernel state says jname runs.
func (n *Node) Running(j string) bool {
	_, err := os.Stat(filepath.Join(n.RunDir, j))
	return err == nil
}

func (n *Node) setRunning(j string, on bool) error {
	p := filepath.Join(n.RunDir, j)
	if on {
		return os.WriteFile(p, []byte("1\n"), 0o644)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// JailOptions are jcreate's settings the lifecycle depends on.
type JailOptions struct {
	BaseRW     bool   // baserw=1: the jail's root is its data directory
	MountPorts bool   // mount_ports=1: /usr/ports and distfiles in the jail
	MntStart   string // the mnt_start program ("" for none)
}

// JCreate follows sudoexec/jcreate: the jail root and system directory,
// mnt_start (before the environment exists anywhere), the data directory,
// the system skeleton directories (master_*.d), mkfstab, and the row in the
// database.
func (n *Node) JCreate(j string, o JailOptions) error {
	s := Settings{"jname": j, "path": n.path(j), "data": n.data(j), "mount_fstab": filepath.Join(n.fstabdir(j), "fstab"),
		"emulator": "jail", "baserw": bit(o.BaseRW), "mount_ports": bit(o.MountPorts), "ver": "14.1",
		"host_hostname": j + ".example.org", "jid": "0"}
	if o.MntStart != "" {
		s["mnt_start"] = o.MntStart
	}
	if !o.BaseRW {
		if err := os.MkdirAll(n.path(j), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(n.sysdir(j), 0o755); err != nil {
		return err
	}
	if err := n.mntStart(j, s, true); err != nil {
		return err
	}
	// create_fs / populate: the jail's own part of the tree.
	for _, d := range []string{"etc", "root", "tmp", "var/cache/distfiles", "usr/local"} {
		if err := os.MkdirAll(filepath.Join(n.data(j), d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(n.data(j), "etc", "rc.conf"), []byte("hostname=\""+j+"\"\n"), 0o644); err != nil {
		return err
	}
	if o.BaseRW {
		if err := os.MkdirAll(filepath.Join(n.data(j), "bin"), 0o755); err != nil {
			return err
		}
	}
	// The system skeleton: master_*.d and friends (rsync of systemskeldir).
	for _, d := range []string{"master_create.d", "master_poststart.d", "master_poststop.d", "master_prestart.d", "master_prestop.d", "start.d", "stop.d"} {
		if err := os.MkdirAll(filepath.Join(n.sysdir(j), d), 0o775); err != nil {
			return err
		}
	}
	if err := n.mkfstab(j, o.BaseRW); err != nil {
		return err
	}
	return n.save(j, s)
}

// mkfstab is jcreate's: with baserw=0 the jail's writable directories come
// from its data directory by nullfs; an empty fstab.local is touched.
func (n *Node) mkfstab(j string, baserw bool) error {
	fstab := filepath.Join(n.fstabdir(j), "fstab")
	if err := os.MkdirAll(n.fstabdir(j), 0o755); err != nil {
		return err
	}
	if !baserw {
		var b strings.Builder
		b.WriteString("# Please do not edit this file for additional fstabs\n# Use " + fstab + ".local instead\n")
		for _, d := range []string{"etc", "root", "tmp", "usr/local"} {
			fmt.Fprintf(&b, "%s/%s /%s nullfs rw 0 0\n", n.data(j), d, d)
		}
		b.WriteString("#\n")
		if err := os.WriteFile(fstab, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(fstab+".local", os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// mntStart is the block jstart, jcreate, bstart and bcreate share: make the
// directories, run mnt_start -d DATA [-f FSTAB] -j J -r RCCONF -s SYSDIR
// (jails pass -f, bhyve does not), and fail the command if it fails.
func (n *Node) mntStart(j string, s Settings, jail bool) error {
	prog := s["mnt_start"]
	if prog == "" || prog == "0" {
		return nil
	}
	dirs := []string{n.data(j), n.sysdir(j)}
	if jail {
		dirs = append(dirs, n.fstabdir(j))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	argv := []string{"-d", n.data(j)}
	if jail {
		argv = append(argv, "-f", n.fstabdir(j))
	}
	argv = append(argv, "-j", j, "-r", n.rcconfdir(), "-s", n.sysdir(j))
	if err := n.Hooks.MntStart(prog, argv); err != nil {
		return fmt.Errorf("error: mnt_start script failed: %s %s: %w", prog, j, err)
	}
	return nil
}

// LockAge is how old a lock of another node must be before jstart removes
// it anyway (sudoexec/jstart: "30 minutes outdated lock").
const LockAge = 30 * time.Minute

// JStart follows sudoexec/jstart for one jail: the row (rcconf.subr), the
// shared lock check, jcleanup, mnt_start, the data check, mountbase,
// mount_jail_fstab, the jail itself, and the lock written with this node's
// name.
func (n *Node) JStart(j string) error {
	s, err := n.load(j)
	if err != nil {
		return err
	}
	if s["emulator"] == "bhyve" {
		return n.BStart(j)
	}
	if n.Running(j) {
		return fmt.Errorf("Jail %s already running", j)
	}
	// "Check for shared lock": read before mnt_start, so it is read from
	// whatever the system directory shows at this moment.
	if raw, err := os.ReadFile(n.Lock(j)); err == nil {
		holder := strings.TrimSpace(string(raw))
		fi, _ := os.Stat(n.Lock(j))
		switch {
		case holder == n.Name || holder == "":
			os.Remove(n.Lock(j)) // "Remove my stale lock file"
		case time.Since(fi.ModTime()) > LockAge:
			os.Remove(n.Lock(j))
		default:
			return fmt.Errorf("Jail %s locked by %s node, lock age: %d min.", j, holder, int(time.Since(fi.ModTime()).Minutes()))
		}
	}
	if err := n.JCleanup(j); err != nil {
		return err
	}
	if err := os.MkdirAll(s["path"], 0o755); err != nil {
		return err
	}
	if err := n.mntStart(j, s, true); err != nil {
		return err
	}
	if !isDir(filepath.Join(s["data"], "etc")) && !isDir(filepath.Join(s["data"], "bin")) {
		return fmt.Errorf("No such data structure: %s", s["data"])
	}
	root := s["path"]
	if s["baserw"] == "1" {
		root = s["data"]
	}
	if err := n.mountbase(j, s, root); err != nil {
		return err
	}
	if err := n.mountJailFstab(s, root); err != nil {
		return err
	}
	n.Hooks.MasterScripts(filepath.Join(n.sysdir(j), "master_prestart.d"))
	if err := n.setRunning(j, true); err != nil { // jail -c
		return err
	}
	s["jid"] = "1"
	if err := n.save(j, s); err != nil {
		return err
	}
	n.Hooks.MasterScripts(filepath.Join(n.sysdir(j), "master_poststart.d"))
	// "make shared lock"
	return os.WriteFile(n.Lock(j), []byte(n.Name+"\n"), 0o644)
}

// mountbase follows subr/system.subr's mountbase as jstart calls it: the
// base read-only on the jail root (baserw=0, unless already mounted), then
// with mount_ports /usr/ports read-only and ${data}/var/cache/distfiles
// read-write under it.
func (n *Node) mountbase(j string, s Settings, root string) error {
	if s["baserw"] != "1" {
		mounted, err := n.isMounted(root)
		if err != nil {
			return err
		}
		if !mounted {
			if err := n.Kernel.Nullfs(n.Base, root, true); err != nil {
				return fmt.Errorf("mount_nullfs -oro %s %s: %w", n.Base, root, err)
			}
		}
	}
	if s["mount_ports"] != "1" {
		return nil
	}
	ports := filepath.Join(root, "usr", "ports")
	distfiles := filepath.Join(ports, "distfiles")
	if err := mkdirs(ports, distfiles, filepath.Join(n.Ports, "distfiles")); err != nil {
		return err
	}
	if err := n.Kernel.Nullfs(n.Ports, ports, true); err != nil {
		return fmt.Errorf("mount_nullfs -oro %s %s: %w", n.Ports, ports, err)
	}
	if err := mkdirs(distfiles); err != nil {
		return err
	}
	return n.Kernel.Nullfs(filepath.Join(s["data"], "var", "cache", "distfiles"), distfiles, false)
}

// mountJailFstab is subr/system.subr's mount_jail_fstab through
// tools/mountfstab: CBSDROOT in the fstab first becomes this node's workdir
// (replacewdir old=CBSDROOT, in the file itself), then every line is
// mounted under the jail root.
func (n *Node) mountJailFstab(s Settings, root string) error {
	fstab := s["mount_fstab"]
	if _, err := os.Stat(fstab); err != nil {
		return nil
	}
	if err := ReplaceWdir(fstab, "CBSDROOT", n.Workdir); err != nil {
		return err
	}
	raw, err := os.ReadFile(fstab)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		target := filepath.Join(root, f[1])
		if err := mkdirs(target); err != nil {
			return err
		}
		if err := n.Kernel.Nullfs(f[0], target, strings.Contains(f[3], "ro")); err != nil {
			return fmt.Errorf("Invalid fstab file: mount %s on %s: %w", f[0], target, err)
		}
	}
	return nil
}

// JStop follows sudoexec/jstop: jail -r, then the master_poststop.d scripts,
// then the row's jid=0, then the lock is removed, then jcleanup.
func (n *Node) JStop(j string) error {
	s, err := n.load(j)
	if err != nil {
		return err
	}
	if !n.Running(j) {
		return fmt.Errorf("Not Running: %s", j)
	}
	if s["emulator"] == "bhyve" {
		return fmt.Errorf("For bhyve jail use: cbsd bstop %s instead", j)
	}
	n.Hooks.MasterScripts(filepath.Join(n.sysdir(j), "master_prestop.d"))
	if err := n.setRunning(j, false); err != nil { // jail -f conf -r
		return err
	}
	// exec_master_poststop; external_exec_master_script "master_poststop.d"
	n.Hooks.MasterScripts(filepath.Join(n.sysdir(j), "master_poststop.d"))
	s["jid"] = "0"
	if err := n.save(j, s); err != nil {
		return err
	}
	os.Remove(n.Lock(j))
	return n.JCleanup(j)
}

// JCleanup follows jailctl/jcleanup (only for registered jails): with
// umount_cdirs of subr/system.subr it force-unmounts, in the order of
// `mount | sort -r`, every mount below the jail root (the data directory
// with baserw=1), then the root itself if it is a mount point; then it
// removes the lock (sharedfs=0). Failed unmounts are not checked.
func (n *Node) JCleanup(j string) error {
	s, err := n.load(j)
	if err != nil {
		return nil
	}
	root := s["path"]
	if s["baserw"] == "1" {
		root = s["data"]
	}
	t, err := n.Kernel.Table()
	if err != nil {
		return err
	}
	lines := make([]string, 0, len(t))
	byLine := map[string]string{}
	for _, m := range t {
		l := m.Source + " on " + m.Target + " (" + m.FSType + ")"
		lines = append(lines, l)
		byLine[l] = m.Target
	}
	sort.Sort(sort.Reverse(sort.StringSlice(lines)))
	for _, l := range lines {
		if strings.HasPrefix(byLine[l], root+"/") {
			n.Kernel.Unmount(byLine[l], true)
		}
	}
	if mounted, err := n.isMounted(root); err == nil && mounted {
		n.Kernel.Unmount(root, true)
	}
	os.Remove(n.Lock(j))
	return nil
}

// isMounted is system.subr's is_mounted: is dir itself a mount point.
func (n *Node) isMounted(dir string) (bool, error) {
	t, err := n.Kernel.Table()
	if err != nil {
		return false, err
	}
	_, ok := t.Top(dir)
	return ok, nil
}

// BCreate follows sudoexec/bcreate: mnt_start without -f (before the VM
// exists), then the VM's local.sqlite in its system directory and its disk
// image in its data directory, and the row.
func (n *Node) BCreate(j, mntStart string) error {
	s := Settings{"jname": j, "path": filepath.Join(n.Workdir, "vm", j), "data": n.data(j), "emulator": "bhyve",
		"vm_ram": "1073741824", "vm_cpus": "1", "vm_os_type": "freebsd", "jid": "0"}
	if mntStart != "" {
		s["mnt_start"] = mntStart
	}
	if err := n.mntStart(j, s, false); err != nil {
		return err
	}
	if err := mkdirs(n.sysdir(j), filepath.Join(n.sysdir(j), "master_poststop.d")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.sysdir(j), "local.sqlite"), []byte("settings of "+j+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.data(j), "dsk1.vhd"), []byte("disk of "+j+"\n"), 0o644); err != nil {
		return err
	}
	return n.save(j, s)
}

// BStart follows sudoexec/bstart: rcconf.subr reads the VM's settings from
// jails-system/<vm>/local.sqlite (init_bhyve_rcconf: "Unable to fetch vm
// data") before anything else, then mnt_start without -f, then the disk.
func (n *Node) BStart(j string) error {
	s, err := n.load(j)
	if err != nil {
		return fmt.Errorf("No such domain: %s", j)
	}
	if _, err := os.Stat(filepath.Join(n.sysdir(j), "local.sqlite")); err != nil {
		return fmt.Errorf("Unable to fetch vm data from: %s", filepath.Join(n.sysdir(j), "local.sqlite"))
	}
	if n.Running(j) {
		return fmt.Errorf("Jail %s already running", j)
	}
	if err := n.mntStart(j, s, false); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(s["data"], "dsk1.vhd")); err != nil {
		return fmt.Errorf("No such %s/dsk1.vhd", s["data"])
	}
	return n.setRunning(j, true)
}

// BStop follows sudoexec/bstop: the VM is killed, bcleanup, state_time is
// written into local.sqlite, then the master_poststop.d scripts, then
// local.sqlite is read again (the "jailed" setting).
func (n *Node) BStop(j string) error {
	if _, err := n.load(j); err != nil {
		return fmt.Errorf("No such domain: %s", j)
	}
	if err := n.setRunning(j, false); err != nil {
		return err
	}
	sqlite := filepath.Join(n.sysdir(j), "local.sqlite")
	f, err := os.OpenFile(sqlite, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("cbsdsqlrw %s: %w", sqlite, err)
	}
	fmt.Fprintf(f, "state_time=%d\n", time.Now().Unix())
	f.Close()
	n.Hooks.MasterScripts(filepath.Join(n.sysdir(j), "master_poststop.d"))
	if _, err := os.Stat(sqlite); err != nil {
		return fmt.Errorf("cbsdsqlro %s: %w", sqlite, err)
	}
	return nil
}

// JRegister follows sudoexec/jregister: rc.conf_<j> from jails-rcconf (or
// rcfile=) is copied, CBSDROOT in the copy becomes this node's workdir
// (replacewdir), the copy is read into the database, and the rewritten file
// is moved into the system directory.
func (n *Node) JRegister(j, rcfile string) error {
	if rcfile == "" {
		rcfile = filepath.Join(n.rcconfdir(), "rc.conf_"+j)
	}
	if _, err := os.Stat(rcfile); err != nil {
		return fmt.Errorf("no rcconf %s file for jail: %s", rcfile, j)
	}
	raw, err := os.ReadFile(rcfile)
	if err != nil {
		return err
	}
	tmp := filepath.Join(n.Workdir, "var", "db", "rcconf."+j)
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	if err := ReplaceWdir(tmp, "CBSDROOT", n.Workdir); err != nil {
		return err
	}
	if err := mv(tmp, rcfile); err != nil {
		return err
	}
	local, err := os.ReadFile(rcfile)
	if err != nil {
		return err
	}
	// ". ${tmpdir}/rcconf.$$" then register_insert_full.
	if err := os.MkdirAll(filepath.Dir(n.dbPath(j)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(n.dbPath(j), local, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(n.sysdir(j), 0o755); err != nil {
		return err
	}
	return mv(rcfile, filepath.Join(n.sysdir(j), "rc.conf_"+j))
}

// mv is mv(1): a rename, or a copy and an unlink across filesystems.
func mv(from, to string) error {
	err := os.Rename(from, to)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	raw, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.WriteFile(to, raw, 0o644); err != nil {
		return err
	}
	return os.Remove(from)
}

// JUnregister follows sudoexec/junregister: refused for a running jail,
// jcleanup, the row dumped by jmkrcconf to jails-rcconf/rc.conf_<j> with the
// workdir replaced by CBSDROOT, the jail's fstab rewritten the same way (its
// fstab.local is not: the script names it "{mount_fstab}.local", without
// the '$'), and the row deleted.
func (n *Node) JUnregister(j string) error {
	s, err := n.load(j)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(n.rcconfdir(), "rc.conf_"+j)); serr == nil {
			return fmt.Errorf("Already unregistered: %s", j)
		}
		return err
	}
	if n.Running(j) {
		return fmt.Errorf("Jail is active. Please stop them first: %s", j)
	}
	if err := n.JCleanup(j); err != nil {
		return err
	}
	out := filepath.Join(n.rcconfdir(), "rc.conf_"+j)
	delete(s, "jid")
	if err := os.WriteFile(out, s.rcconf(j), 0o644); err != nil {
		return err
	}
	if err := ReplaceWdir(out, regexp.QuoteMeta(n.Workdir), "CBSDROOT"); err != nil {
		return err
	}
	if fstab := s["mount_fstab"]; fstab != "" {
		if _, err := os.Stat(fstab); err == nil {
			if err := ReplaceWdir(fstab, regexp.QuoteMeta(n.Workdir), "CBSDROOT"); err != nil {
				return err
			}
		}
	}
	return os.Remove(n.dbPath(j))
}

// ReplaceWdir is tools/replacewdir: sed -i ” s:OLD:NEW: on the file, the
// first match of the pattern OLD on each line.
func ReplaceWdir(file, old, new string) error {
	re, err := regexp.Compile(old)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(raw), "\n")
	for i, l := range lines {
		if loc := re.FindStringIndex(l); loc != nil {
			lines[i] = l[:loc[0]] + new + l[loc[1]:]
		}
	}
	return os.WriteFile(file, []byte(strings.Join(lines, "")), 0o644)
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
