//go:build !linux && !freebsd

package nfs

import "github.com/envhooks/envhooks/lib/mounttab"

// Where envhooks does not run (lib/platform stops the programs first), the
// BSD forms stand in so the tree builds.
func mountArgv(words []string, src, target string) ([]string, error) {
	return FreeBSDMountArgv(words, src, target), nil
}

func want(src string, _ int) mounttab.Want { return FreeBSDWant(src) }

func forceUnmountArgv(target string) []string { return []string{"umount", "-f", target} }
