// envhooks-attach is the full mnt-start: it loads the configuration and the
// storage backend and attaches whatever is missing. mnt-start runs it with
// its own arguments whenever its quick check cannot prove everything is
// already in place; operators run mnt-start. See mnt-start(8).
package main

import (
	"os"

	"github.com/envhooks/envhooks/hooks"
	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/hookcli"
)

func main() {
	os.Exit(hookcli.Main(os.Args, args.Start, hookcli.Start, hooks.Registry(), os.Stdout, os.Stderr))
}
