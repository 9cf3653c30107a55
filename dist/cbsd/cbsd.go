// Package cbsd holds the hook script CBSD runs after an environment stops
// (master_poststop.d), embedded so that envctl install-hook can write it.
package cbsd

import (
	"bytes"
	_ "embed"

	"github.com/envhooks/envhooks/lib/envctl"
)

//go:embed master_poststop.d/envhooks-mnt-stop
var poststop []byte

// kindLine is the script's one line that differs between a jail and a VM.
const kindLine = "\nkind=jail\n"

// Poststop is the script that detaches an environment after CBSD stopped
// it: CBSD runs every executable in <sysdir>/master_poststop.d/. A VM's copy
// keeps the storage attached (see the script).
func Poststop() envctl.HookScript {
	if bytes.Count(poststop, []byte(kindLine)) != 1 {
		panic("dist/cbsd: the poststop script must hold exactly one kind=jail line")
	}
	return envctl.HookScript{Dir: "master_poststop.d", Name: "envhooks-mnt-stop",
		Text:   append([]byte(nil), poststop...),
		VMText: bytes.Replace(poststop, []byte(kindLine), []byte("\nkind=vm\n"), 1)}
}
