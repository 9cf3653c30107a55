// mnt-start attaches an environment's shared storage before it starts; CBSD
// runs it as the mnt_start hook. It answers "already attached" itself and
// runs envhooks-attach, installed beside it, for everything else. See
// mnt-start(8).
package main

import (
	"os"

	"github.com/envhooks/envhooks/lib/quick"
)

func main() {
	os.Exit(quick.Main(os.Args, os.Stdout, os.Stderr))
}
