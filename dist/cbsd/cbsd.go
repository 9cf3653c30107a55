// Package cbsd holds the hook script CBSD runs after an environment stops
// (master_poststop.d), embedded so that envctl install-hook can write it.
package cbsd

import (
	_ "embed"

	"github.com/envhooks/envhooks/lib/envctl"
)

//go:embed master_poststop.d/envhooks-mnt-stop
var poststop []byte

// Poststop is the script that detaches an environment after CBSD stopped
// it: CBSD runs every executable in <sysdir>/master_poststop.d/.
func Poststop() envctl.HookScript {
	return envctl.HookScript{Dir: "master_poststop.d", Name: "envhooks-mnt-stop", Text: append([]byte(nil), poststop...)}
}
