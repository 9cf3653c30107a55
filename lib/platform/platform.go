// Package platform says whether envhooks runs on this system. It runs on
// FreeBSD and Linux; everywhere else the tree still builds (each
// OS-specific file has an _unsupported.go counterpart), and the programs
// exit 69 saying so before they touch anything.
package platform

import (
	"runtime"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// Check returns nil on a supported system, and otherwise the one error the
// programs exit with.
func Check() error { return check(runtime.GOOS) }

func check(goos string) error {
	switch goos {
	case "linux", "freebsd":
		return nil
	}
	return sysexits.New(sysexits.Unavailable, "unsupported on this system (%s): envhooks runs on FreeBSD and Linux", goos)
}
