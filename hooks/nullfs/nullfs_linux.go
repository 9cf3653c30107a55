package nullfs

import "github.com/envhooks/envhooks/lib/mounttab"

var mountArgv = LinuxMountArgv

// want matches a bind mount by the directory it shows: mountinfo records
// the underlying filesystem's type, so no type is required.
func want(src string) mounttab.Want { return mounttab.Want{BindOf: src} }

// A bind mount needs no helper program: mount(2) does it, without
// mount(8)'s re-reading of the whole mount table.
const directBind = true
