//go:build !linux && !freebsd

package nullfs

import "github.com/envhooks/envhooks/lib/mounttab"

// Where envhooks does not run (lib/platform stops the programs first), the
// BSD forms stand in so the tree builds.
var mountArgv = FreeBSDMountArgv

func want(src string) mounttab.Want { return mounttab.Want{FSType: "nullfs", BindOf: src} }

const directBind = false
