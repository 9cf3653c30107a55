package nullfs

import "github.com/envhooks/envhooks/lib/mounttab"

var mountArgv = FreeBSDMountArgv

func want(src string) mounttab.Want { return mounttab.Want{FSType: "nullfs", BindOf: src} }
