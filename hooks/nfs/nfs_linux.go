package nfs

import "github.com/envhooks/envhooks/lib/mounttab"

func mountArgv(words []string, src, target string) ([]string, error) {
	return LinuxMountArgv(words, src, target)
}

func want(src string, version int) mounttab.Want { return LinuxWant(src, version) }

// forceUnmountArgv detaches the mount as well as forcing it: Linux refuses
// umount -f alone while the mount is in use, which is when FORCE_UNMOUNT=1
// is asked for. -f still aborts the calls in flight to a dead server; the
// processes that hold files in the mount keep them until they close them.
func forceUnmountArgv(target string) []string { return []string{"umount", "-f", "-l", target} }
