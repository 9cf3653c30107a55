package args

import (
	"path/filepath"
	"strings"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// LXC runs a container's hooks (lxc.container.conf(5)) with LXC_NAME,
// LXC_CONFIG_FILE and LXC_ROOTFS_PATH in the environment, and either the
// operands "NAME lxc HOOKTYPE" (lxc.hook.version = 0, the default) or none,
// with LXC_HOOK_TYPE and LXC_HOOK_SECTION set instead (lxc.hook.version =
// 1). The hook line may carry flags of its own before them
// (lxc.hook.pre-start = /usr/local/bin/mnt-start -c /etc/envhooks-lxc.conf):
// LXC runs it through sh -c and appends the operands.
//
// A container maps onto the hook protocol as: -j its name, -d its root file
// system (the directory lxc.rootfs.path names), -s the directory "system"
// beside its config file (<lxcpath>/<name>/system), which holds what
// travels with the container besides its root: envctl's copy of the config
// and any data directory the config bind-mounts from there. Flags given on
// the hook line win over what LXC says.

// LXC's environment variables.
const (
	lxcName        = "LXC_NAME"
	lxcConfigFile  = "LXC_CONFIG_FILE"
	lxcRootfsPath  = "LXC_ROOTFS_PATH"
	lxcHookType    = "LXC_HOOK_TYPE"
	lxcHookSection = "LXC_HOOK_SECTION"
)

// LXCSystemDir is the system directory of a container whose config file is
// configFile.
func LXCSystemDir(configFile string) string {
	return filepath.Join(filepath.Dir(configFile), "system")
}

// lxcRootfsTypes are the storage types lxc.rootfs.path may name with a
// "TYPE:" prefix; only dir (a directory) is something envhooks can attach.
var lxcRootfsTypes = []string{"btrfs", "zfs", "lvm", "overlay", "overlayfs", "loop", "nbd", "rbd"}

// isLXCCall reports whether the run is an LXC hook: LXC_NAME is set and the
// flags name no jname.
func isLXCCall(jnameGiven bool, getenv func(string) (string, bool)) bool {
	_, ok := getenv(lxcName)
	return ok && !jnameGiven
}

// fromLXC fills the options from LXC's hook call. operands are what follow
// the flags.
func (o *Options) fromLXC(operands []string, req Required, dirsGiven map[rune]bool, getenv func(string) (string, bool)) error {
	env := func(k string) string { v, _ := getenv(k); return v }
	name := env(lxcName)
	var section, hookType string
	switch len(operands) {
	case 3:
		if operands[0] != name {
			return o.usageError("called as an LXC hook for %q, but LXC_NAME is %q", operands[0], name)
		}
		section, hookType = operands[1], operands[2]
	case 0:
		section, hookType = env(lxcHookSection), env(lxcHookType)
		if hookType == "" {
			return o.usageError("called as an LXC hook (LXC_NAME=%s) without NAME lxc HOOKTYPE operands or LXC_HOOK_TYPE", name)
		}
	default:
		return o.usageError("called as an LXC hook (LXC_NAME=%s) with operands %q: want NAME lxc HOOKTYPE, or none with lxc.hook.version = 1", name, strings.Join(operands, " "))
	}
	if section != "lxc" {
		return o.usageError("called for LXC's %q section: envhooks is a container hook (section lxc)", section)
	}
	if req.LXCHook == "" || hookType != req.LXCHook {
		return o.usageError("%s is not LXC's %s hook: use lxc.hook.pre-start = mnt-start and lxc.hook.post-stop = mnt-stop", o.set.Program(), hookType)
	}
	o.JName = name
	if !req.DataAndSystem {
		return nil
	}
	if !dirsGiven['d'] {
		rootfs, err := lxcRootfs(name, env(lxcRootfsPath))
		if err != nil {
			return err
		}
		o.Data = rootfs
	}
	if !dirsGiven['s'] {
		cfg := env(lxcConfigFile)
		if cfg == "" {
			return sysexits.New(sysexits.Config, "LXC did not say where the config file of container %s is (LXC_CONFIG_FILE): give -s SYSDATA on the hook line", name)
		}
		o.System = LXCSystemDir(cfg)
	}
	return nil
}

// lxcRootfs returns the directory lxc.rootfs.path names, refusing storage
// types that are not a directory: the backend provides the directory, LXC
// must only use it.
func lxcRootfs(name, path string) (string, error) {
	if path == "" {
		return "", sysexits.New(sysexits.Config, "container %s has no lxc.rootfs.path: envhooks attaches the root file system, so the container needs one (dir:/var/lib/lxc/%s/rootfs)", name, name)
	}
	if rest, ok := strings.CutPrefix(path, "dir:"); ok {
		return rest, nil
	}
	for _, t := range lxcRootfsTypes {
		if strings.HasPrefix(path, t+":") {
			return "", sysexits.New(sysexits.Config, "container %s: lxc.rootfs.path %q is a %s root file system: envhooks attaches directories, so use a dir: path and let BACKEND provide it", name, path, t)
		}
	}
	return path, nil
}
