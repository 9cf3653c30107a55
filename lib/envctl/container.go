package envctl

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/attach"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/crashpoint"
	"github.com/envhooks/envhooks/lib/descriptor"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/inventory"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/lxcconf"
	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Container is the kind of an LXC container. It lives in LXC_PATH/<name>
// as lxc-create makes it: the root file system rootfs/ is its data, the
// directory system/ beside it (the same one the hooks derive from
// LXC_CONFIG_FILE) its system directory, and LXC's config file is its
// descriptor: cunregister leaves a copy in system/ on the shared storage,
// cregister installs that copy as the container's config on the new node,
// with the paths moved to this node's LXC_PATH. The config stays on the
// node that gave the container up: the pre-start hook refuses to start it
// there (77).
const Container = "container"

// containerDir is where LXC keeps container jname on this node.
func (n *Node) containerDir(jname string) string {
	return filepath.Join(n.Config.Get(config.LXCPath), jname)
}

func (n *Node) containerDirs(jname string) map[environment.Role]string {
	dir := n.containerDir(jname)
	return map[environment.Role]string{
		environment.Data:   filepath.Join(dir, "rootfs"),
		environment.System: args.LXCSystemDir(filepath.Join(dir, lxcconf.FileName)),
	}
}

// descriptorName is the descriptor's file name in the system directory.
func descriptorName(jname, kind string) string {
	if kind == Container {
		return lxcconf.FileName
	}
	return descriptor.FileName(jname)
}

// adoptContainer is the rest of cregister once the storage is attached:
// take the config (an explicit rcfile=, the copy on the shared storage, or
// the container's own config where it was created), check it, give this
// node's LXC the relocated config, keep a copy with the data, and record
// the registration.
func (n *Node) adoptContainer(jname, rcfile string, l *lease.Lease) error {
	dir := n.containerDir(jname)
	local := filepath.Join(dir, lxcconf.FileName)
	shared := filepath.Join(n.containerDirs(jname)[environment.System], lxcconf.FileName)
	candidates := []string{shared, local}
	if rcfile != "" {
		candidates = []string{rcfile}
	}
	raw, from, err := readFirst(jname, candidates)
	if err != nil {
		return err
	}
	cfg, err := lxcconf.Parse(raw, from)
	if err != nil {
		return err
	}
	root, err := cfg.Rootfs(from)
	if err != nil {
		return err
	}
	if filepath.Base(root) != "rootfs" {
		return sysexits.New(sysexits.DataErr, "%s: %s = %s: envctl moves containers whose root is <lxcpath>/<name>/rootfs, where it attaches the data", from, lxcconf.RootfsKey, root)
	}
	raw = lxcconf.Relocate(raw, filepath.Dir(root), dir)
	if from != shared {
		if err := safefile.WriteAtomic(shared, raw, 0o640); err != nil {
			return sysexits.New(sysexits.CantCreat, "cannot keep the container's config in the shared system directory: %v", err)
		}
	}
	crashpoint.Here("register:descriptor")
	if cur, err := safefile.Read(local, maxDescriptor); err != nil || !bytes.Equal(cur, raw) {
		if err := safefile.WriteAtomic(local, raw, 0o640); err != nil {
			return sysexits.New(sysexits.CantCreat, "cannot install the container's config for LXC: %v", err)
		}
	}
	if !cfg.Runs(lxcconf.PreStartKey, "mnt-start") {
		n.Log.Warn("%s runs no mnt-start as lxc.hook.pre-start: lxc-start %s will neither attach its storage nor check that this node owns it", local, jname)
	}
	if err := n.Inv.Save(&inventory.Record{JName: jname, Kind: Container, Node: n.Name, Registered: time.Now().UTC().Truncate(time.Second),
		Generation: l.Generation, Descriptor: string(raw)}); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot write the inventory record: %v", err)
	}
	crashpoint.Here("register:record")
	n.Log.Action("registered container %s on %s (generation %d)", jname, n.Name, l.Generation)
	return nil
}

// leaveContainerConfig puts the container's config, as LXC has it now (or
// as it was registered, if it is gone), into the shared system directory
// of s, which is attached.
func (n *Node) leaveContainerConfig(s *attach.Session, rec *inventory.Record) error {
	raw, err := safefile.Read(filepath.Join(n.containerDir(s.Env.Name), lxcconf.FileName), maxDescriptor)
	if errors.Is(err, os.ErrNotExist) {
		raw, err = []byte(rec.Descriptor), nil
	}
	if err != nil {
		return sysexits.New(sysexits.DataErr, "cannot read the config of container %s: %v", s.Env.Name, err)
	}
	shared := filepath.Join(s.Env.Dir(environment.System), lxcconf.FileName)
	if err := safefile.WriteAtomic(shared, raw, 0o640); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot write the container's config into the shared system directory: %v", err)
	}
	crashpoint.Here("unregister:descriptor")
	return nil
}

// readFirst reads the first of candidates that exists.
func readFirst(jname string, candidates []string) ([]byte, string, error) {
	for _, p := range candidates {
		raw, err := safefile.Read(p, maxDescriptor)
		if err == nil {
			return raw, p, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, p, sysexits.New(sysexits.DataErr, "cannot read %s: %v", p, err)
		}
	}
	return nil, "", sysexits.New(sysexits.DataErr, "no descriptor for %s: looked for %v", jname, candidates)
}
