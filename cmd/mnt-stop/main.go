// mnt-stop undoes exactly what mnt-start attached for an environment; the
// master_poststop.d script in dist/cbsd runs it. See mnt-stop(8).
package main

import (
	"os"

	"github.com/envhooks/envhooks/hooks"
	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/hookcli"
)

func main() {
	os.Exit(hookcli.Main(os.Args, args.Stop, hookcli.Stop, hooks.Registry(), os.Stdout, os.Stderr))
}
