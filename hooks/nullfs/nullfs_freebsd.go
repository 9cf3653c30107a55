package nullfs

import "github.com/envhooks/envhooks/lib/mounttab"

var mountArgv = FreeBSDMountArgv

func want(src string) mounttab.Want { return mounttab.Want{FSType: "nullfs", BindOf: src} }

// nullfs mounts go through mount(8), which builds the nmount(2) arguments.
const directBind = false
