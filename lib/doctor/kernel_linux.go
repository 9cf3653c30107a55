package doctor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// FileSystem reports whether the kernel can mount fstype: registered now
// (/proc/filesystems), or built as one of modules (default: fstype), which
// the kernel loads on the first mount.
func FileSystem(fstype string, modules ...string) (bool, string) {
	if raw, err := os.ReadFile("/proc/filesystems"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == fstype {
				return true, fstype + " is in /proc/filesystems"
			}
		}
	}
	if len(modules) == 0 {
		modules = []string{fstype}
	}
	if ok, how := installed(modules); ok {
		return true, how
	}
	return false, fmt.Sprintf("%s is not in /proc/filesystems, and no module %s is installed for this kernel", fstype, strings.Join(modules, " or "))
}

// Module reports whether a kernel module is loaded (/sys/module/<name>) or
// installed for this kernel.
func Module(name string) (bool, string) {
	if _, err := os.Stat(filepath.Join("/sys/module", name)); err == nil {
		return true, "module " + name + " is loaded"
	}
	if ok, how := installed([]string{name}); ok {
		return true, how
	}
	return false, "module " + name + " is neither loaded nor installed for this kernel"
}

// installed looks the modules up in modules.dep of the running kernel.
func installed(modules []string) (bool, string) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return false, err.Error()
	}
	release := string(bytes.TrimRight(uts.Release[:], "\x00"))
	raw, err := os.ReadFile(filepath.Join("/lib/modules", release, "modules.dep"))
	if err != nil {
		return false, ""
	}
	for _, line := range strings.Split(string(raw), "\n") {
		mod, _, _ := strings.Cut(line, ":")
		base := filepath.Base(mod)
		for _, m := range modules {
			if strings.HasPrefix(base, m+".ko") {
				return true, fmt.Sprintf("module %s of kernel %s loads on the first use", m, release)
			}
		}
	}
	return false, ""
}
