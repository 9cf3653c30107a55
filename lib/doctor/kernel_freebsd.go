package doctor

import (
	"context"
	"os"
	"time"

	"github.com/envhooks/envhooks/lib/run"
)

// FileSystem reports whether the kernel has one of fstype's modules
// (default: fstype), or can load it from /boot/kernel.
func FileSystem(fstype string, modules ...string) (bool, string) {
	if len(modules) == 0 {
		modules = []string{fstype}
	}
	for _, m := range modules {
		if ok, how := Module(m); ok {
			return true, how
		}
	}
	return false, "the kernel has no " + fstype + " and /boot/kernel has no module for it"
}

// Module reports whether a kernel module is loaded (kldstat -q -m answers
// for compiled-in ones too) or loadable from /boot/kernel.
func Module(name string) (bool, string) {
	if _, err := run.New(false, nil).Run(context.Background(), run.Cmd{Argv: KldstatArgv(name), Timeout: 5 * time.Second, ReadOnly: true}); err == nil {
		return true, "kldstat -m " + name + ": loaded"
	}
	if _, err := os.Stat("/boot/kernel/" + name + ".ko"); err == nil {
		return true, "/boot/kernel/" + name + ".ko loads on the first use (or kldload " + name + ")"
	}
	return false, "module " + name + " is neither loaded nor in /boot/kernel"
}
