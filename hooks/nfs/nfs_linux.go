package nfs

import "github.com/envhooks/envhooks/lib/mounttab"

func mountArgv(words []string, src, target string) ([]string, error) {
	return LinuxMountArgv(words, src, target)
}

func want(src string, version int) mounttab.Want { return LinuxWant(src, version) }

var forceUnmountArgv = LinuxForceUnmountArgv
