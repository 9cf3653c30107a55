// Package iscsi attaches an environment whose storage is an iSCSI LUN. Only
// the owning node logs in: mnt-start asks the portal (in Go, under a short
// deadline) whether it offers the target, logs in with the OS initiator
// (iscsictl on FreeBSD, iscsiadm on Linux), waits for the LUN's device under
// a deadline, checks and mounts its filesystem (or imports the ZFS pool on
// it) on ISCSI_MOUNT_ROOT/<jname>, and bind/nullfs-mounts the role folders
// of that filesystem (data/ system/ fstab/ rcconf/) on CBSD's directories.
// The session is recorded before anything is mounted on it, so mnt-stop
// logs out exactly what mnt-start logged in.
package iscsi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/joho/godotenv"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/fileowner"
	"github.com/envhooks/envhooks/lib/iscsi"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/sysexits"
)

var (
	portalKey  = config.Define(config.Key{Name: "ISCSI_PORTAL", Doc: "iscsi backend: portal(s) as host[:port] (port 3260 by default), separated by spaces; the first that offers the target is used", Check: checkPortals})
	targetKey  = config.Define(config.Key{Name: "ISCSI_TARGET", Doc: "iscsi backend: the target's IQN; %j is replaced by the jname (iqn.2026-01.org.example:%j)", Check: checkTargetTemplate})
	lunKey     = config.Define(config.Key{Name: "ISCSI_LUN", Default: "0", Doc: "iscsi backend: the LUN of the target that holds the environment", Check: config.IsInt})
	fstypeKey  = config.Define(config.Key{Name: "ISCSI_FSTYPE", Doc: "iscsi backend: what the LUN holds: ufs (FreeBSD default), ext4 (Linux default), xfs, or zfs (a pool)", Check: config.OneOf("", "ufs", "ext4", "xfs", "zfs")})
	chapKey    = config.Define(config.Key{Name: "ISCSI_CHAP_FILE", Doc: "iscsi backend: a root-owned mode 0600 file with CHAP_USER= and CHAP_SECRET= lines, used for discovery and login", Check: config.IsAbsPath})
	devTOKey   = config.Define(config.Key{Name: "ISCSI_DEVICE_TIMEOUT", Default: "30", Doc: "iscsi backend: seconds to wait for the LUN's device after login before logging out again with 69", Check: config.IsSeconds})
	rootKey    = config.Define(config.Key{Name: "ISCSI_MOUNT_ROOT", Default: "/mnt/envhooks-iscsi", Doc: "iscsi backend: the LUN's filesystem (or pool altroot) of <jname> is mounted on ISCSI_MOUNT_ROOT/<jname>", Check: config.IsAbsPath})
	poolKey    = config.Define(config.Key{Name: "ISCSI_ZPOOL", Default: "%j", Doc: "iscsi backend with ISCSI_FSTYPE=zfs: the pool on the LUN; %j is replaced by the jname", Check: checkPoolTemplate})
	devDirKey  = config.Define(config.Key{Name: "ISCSI_DEVICE_DIR", Doc: "iscsi backend: where LUN devices appear (Linux: /dev/disk/by-path, FreeBSD: /dev); change only for tests", Check: config.IsAbsPath})
	reserveKey = config.Define(config.Key{Name: "ISCSI_RESERVE", Default: "1", Doc: "iscsi backend with leases: 1: the owner holds a SCSI-3 persistent reservation (write exclusive, registrants only) on the LUN and a node that takes over preempts the old owner's key before it touches the filesystem, so the old owner's writes fail at the target (needs sg_persist from sg3-utils on Linux, camcontrol on FreeBSD); 0: no reservation", Check: config.IsBool})
	nameKey    = config.Define(config.Key{Name: "ISCSI_INITIATOR_NAME", Doc: "iscsi backend: the initiator IQN the preflight logs in with (default: the OS initiator's own name)", Check: checkIQN})
)

// OS selects an initiator's syntax. Both are built on every OS so tests
// cover both.
type OS int

const (
	Linux OS = iota
	FreeBSD
)

// Backend is the iSCSI backend. Its fields are exported so tests can build
// one directly (a fake device directory, the other OS's syntax).
type Backend struct {
	OS               OS
	Portals          []string // host:port, in order of preference
	Target           string   // IQN template with %j
	LUN              int
	FSType           string
	Pool             string // pool template with %j (FSType zfs)
	CHAP             *iscsi.Credentials
	CHAPFile         string // where CHAP came from, for messages
	InitiatorName    string
	MountRoot        string
	DeviceDir        string
	DeviceTimeout    time.Duration
	PreflightTimeout time.Duration
	Poll             time.Duration // how often to look for the device
	Reserve          bool          // hold a SCSI-3 reservation under a lease (reserve.go)
}

// New reads the iSCSI keys and the CHAP file.
func New(cfg *config.Config) (plan.Backend, error) {
	b := &Backend{
		OS:               nativeOS,
		Target:           cfg.Get(targetKey),
		LUN:              cfg.Int(lunKey),
		FSType:           cfg.Get(fstypeKey),
		Pool:             cfg.Get(poolKey),
		InitiatorName:    cfg.Get(nameKey),
		MountRoot:        filepath.Clean(cfg.Get(rootKey)),
		DeviceDir:        cfg.Get(devDirKey),
		DeviceTimeout:    cfg.Seconds(devTOKey),
		PreflightTimeout: cfg.Seconds(config.PreflightTimeout),
		Poll:             250 * time.Millisecond,
		Reserve:          cfg.Bool(reserveKey),
	}
	for _, p := range cfg.Words(portalKey) {
		addr, _ := iscsi.Portal(p) // checked when loaded
		b.Portals = append(b.Portals, addr)
	}
	if len(b.Portals) == 0 {
		return nil, sysexits.New(sysexits.Config, "BACKEND=iscsi needs ISCSI_PORTAL, the portal(s) that export the environment's LUN")
	}
	if b.Target == "" {
		return nil, sysexits.New(sysexits.Config, "BACKEND=iscsi needs ISCSI_TARGET, the target IQN (%%j stands for the jname)")
	}
	if b.FSType == "" {
		b.FSType = defaultFSType
	}
	if !supportedFSType(b.OS, b.FSType) {
		return nil, cfg.Errorf(fstypeKey, "%s cannot be mounted on this OS; use %s", b.FSType, strings.Join(fsTypes(b.OS), ", "))
	}
	if b.DeviceDir == "" {
		b.DeviceDir = defaultDeviceDir
	}
	if b.InitiatorName == "" {
		b.InitiatorName = defaultInitiatorName()
	}
	if path := cfg.Get(chapKey); path != "" {
		c, err := ReadCHAPFile(path)
		if err != nil {
			return nil, cfg.Errorf(chapKey, "%v", err)
		}
		b.CHAP, b.CHAPFile = c, path
	}
	return b, nil
}

// ReadCHAPFile reads CHAP_USER and CHAP_SECRET from a file that only root
// can read. Its errors never quote the file's contents.
func ReadCHAPFile(path string) (*iscsi.Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: it holds a secret, so only its owner may read it (chmod 600 %s)", path, perm, path)
	}
	if uid, ok := fileowner.UID(fi); ok && uid != 0 {
		return nil, fmt.Errorf("%s is owned by uid %d, not root (chown root %s)", path, uid, path)
	}
	kv, err := godotenv.Parse(f)
	if err != nil {
		// godotenv's message may quote the line, which may be the secret.
		return nil, fmt.Errorf("%s is not a list of KEY=value lines", path)
	}
	c := &iscsi.Credentials{User: kv["CHAP_USER"], Secret: kv["CHAP_SECRET"]}
	if c.User == "" || c.Secret == "" {
		return nil, fmt.Errorf("%s must set both CHAP_USER and CHAP_SECRET", path)
	}
	if strings.ContainsAny(c.User+c.Secret, "\x00\n") {
		return nil, fmt.Errorf("%s: CHAP_USER and CHAP_SECRET may not contain NUL or newline", path)
	}
	return c, nil
}

func supportedFSType(o OS, t string) bool {
	for _, s := range fsTypes(o) {
		if s == t {
			return true
		}
	}
	return false
}

func fsTypes(o OS) []string {
	if o == FreeBSD {
		return []string{"ufs", "zfs"}
	}
	return []string{"ext4", "xfs", "zfs"}
}

func checkPortals(v string) error {
	for _, p := range strings.Fields(v) {
		if _, err := iscsi.Portal(p); err != nil {
			return err
		}
	}
	return nil
}

var iqnPattern = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(iqn\.[0-9]{4}-[0-9]{2}\.[A-Za-z0-9.-]+(:[A-Za-z0-9._:%-]*)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$`)
})

// checkTargetTemplate accepts an IQN (or eui./naa. name) that may hold %j;
// jnames are checked on their own, so any jname keeps it valid.
func checkTargetTemplate(v string) error {
	if v == "" {
		return nil
	}
	if !iqnPattern().MatchString(v) {
		return errors.New("want an iSCSI name such as iqn.2026-01.org.example:%j")
	}
	return nil
}

func checkIQN(v string) error {
	if v == "" || iqnPattern().MatchString(v) && !strings.Contains(v, "%") {
		return nil
	}
	return errors.New("want an iSCSI name such as iqn.2026-01.org.example:node1")
}

var poolPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z%][A-Za-z0-9_.:%-]*$`) })

func checkPoolTemplate(v string) error {
	if !poolPattern().MatchString(v) {
		return errors.New("want a pool name (letters, digits, '_', '.', ':', '-'; %j for the jname)")
	}
	return nil
}

// expand replaces %j with the jname.
func expand(template, jname string) string { return strings.ReplaceAll(template, "%j", jname) }

// Steps builds the attach plan; see the package comment for its shape.
func (b *Backend) Steps(env *environment.Env, roles []environment.Role) ([]plan.Step, error) {
	a := &attachment{b: b, jname: env.Name, target: expand(b.Target, env.Name), lunRoot: filepath.Join(b.MountRoot, env.Name)}
	steps := []plan.Step{a.preflight(), &loginStep{a: a}, &waitDevice{a: a}}
	if b.Reserve {
		// Before anything reads or writes the LUN: a node taking over
		// fences the old owner here, ahead of its own fsck.
		steps = append(steps, &reserveStep{a: a})
	}
	rolesRoot := a.lunRoot
	if b.FSType == "zfs" {
		pool := expand(b.Pool, env.Name)
		imp := &zpoolImport{a: a, pool: pool}
		steps = append(steps, &probeStep{a: a, pool: pool, guard: imp}, imp)
		// The pool's root dataset keeps its default mountpoint /<pool>,
		// which the altroot puts under lunRoot.
		rolesRoot = filepath.Join(a.lunRoot, pool)
	} else {
		lm := &lunMount{a: a}
		steps = append(steps, &probeStep{a: a, guard: lm})
		if b.fsckArgv("x") != nil {
			steps = append(steps, &fsckStep{a: a, mount: lm})
		}
		steps = append(steps, lm)
	}
	var binds []plan.Step
	var dirs []string
	for _, role := range roles {
		target := env.Dir(role)
		if target == "" {
			continue
		}
		src := filepath.Join(rolesRoot, string(role))
		dirs = append(dirs, src)
		binds = append(binds, &plan.Mount{
			Target:      target,
			Want:        b.bindWant(src),
			Argv:        b.bindArgv(src, target),
			UnmountArgv: []string{"umount", target},
			ForceArgv:   b.forceUnmountArgv(target),
			What:        plan.Describe("bind", src, target),
		})
	}
	steps = append(steps, roleDirs(dirs))
	return append(steps, binds...), nil
}
