//go:build !linux && !freebsd

package doctor

// Where envhooks does not run (lib/platform stops the programs first),
// nothing is supported; these keep the tree building.

// FileSystem reports that no filesystem is supported here.
func FileSystem(fstype string, modules ...string) (bool, string) {
	return false, "unsupported on this system"
}

// Module reports that no kernel module is supported here.
func Module(name string) (bool, string) { return false, "unsupported on this system" }
