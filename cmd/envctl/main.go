// envctl moves environments between nodes that share storage, without
// copying their data, guarded by an ownership lease. See envctl(8).
package main

import (
	"os"

	"github.com/envhooks/envhooks/lib/envctl"
)

func main() {
	os.Exit(envctl.Main(os.Args, os.Stdout, os.Stderr))
}
