package config

import "strings"

// The defaults that differ between FreeBSD and Linux, kept on every OS so
// that the documentation can show both.
const (
	FreeBSDStateDir = "/var/db/envhooks"
	LinuxStateDir   = "/var/lib/envhooks"
)

// OSDefaults returns the FreeBSD and the Linux form of a default value that
// differs between them (the state directory and what lies in it).
func OSDefaults(v string) (freebsd, linux string, ok bool) {
	if rest, found := strings.CutPrefix(v, DefaultStateDir); found && v != "" {
		return FreeBSDStateDir + rest, LinuxStateDir + rest, true
	}
	return "", "", false
}
