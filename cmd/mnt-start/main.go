// mnt-start attaches an environment's shared storage before it starts; CBSD
// runs it as the mnt_start hook. See mnt-start(8).
package main

import (
	"os"

	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/hookcli"
)

func main() {
	os.Exit(hookcli.Main(os.Args, args.Required{DataAndSystem: true}, hookcli.Start, os.Stdout, os.Stderr))
}
