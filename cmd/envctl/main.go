// envctl moves environments between nodes that share storage, without
// copying their data, guarded by an ownership lease. See envctl(8).
package main

import (
	"os"

	"github.com/envhooks/envhooks/dist/cbsd"
	"github.com/envhooks/envhooks/hooks"
	"github.com/envhooks/envhooks/lib/envctl"
)

func main() {
	w := envctl.Wiring{Backends: hooks.Registry(), Poststop: cbsd.Poststop()}
	os.Exit(envctl.Main(os.Args, w, os.Stdout, os.Stderr))
}
