package nfs

import "github.com/envhooks/envhooks/lib/mounttab"

// mount_nfs takes MOUNT_NFS_OPT as it is: the words were written for it.
func mountArgv(words []string, src, target string) ([]string, error) {
	return FreeBSDMountArgv(words, src, target), nil
}

// FreeBSD's mount table says nfs for every NFS version.
func want(src string, _ int) mounttab.Want { return FreeBSDWant(src) }

var forceUnmountArgv = FreeBSDForceUnmountArgv
