// Package environment describes one jail, VM or container as the hooks see
// it: a validated name and the local directories CBSD passes for it.
package environment

import (
	"fmt"
	"path/filepath"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// Role names one of an environment's directories. The names are also the
// folder names of the shared layout: <root>/<role>/<jname>.
type Role string

const (
	Data   Role = "data"
	System Role = "system"
	RCConf Role = "rcconf"
	Fstab  Role = "fstab"
)

// Roles lists every role in the order the hooks attach them: data and
// system first because every environment has them.
var Roles = []Role{Data, System, Fstab, RCConf}

// MaxNameLen bounds a jname: long enough for any CBSD name, short enough to
// keep every derived path and lease key well inside system limits.
const MaxNameLen = 64

// validName accepts what CBSD's validate_jname (subr/nc.subr) accepts,
// [a-zA-Z0-9_@%:][-a-zA-Z0-9_@%:]*, plus '.' after the first character,
// which envhooks has always allowed. No '/', no blank, no name that is "."
// or "..": a jname becomes a path element. It is checked by hand because it
// runs in every hook start, where compiling a regexp would cost more.
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '@' || c == '%' || c == ':'
		if !ok && (i == 0 || c != '.' && c != '-') {
			return false
		}
	}
	return name != ""
}

// CheckName refuses anything that is not a plain, safe jname, before any path
// is built from it.
func CheckName(name string) error {
	switch {
	case name == "":
		return sysexits.New(sysexits.DataErr, "jname is empty")
	case len(name) > MaxNameLen:
		return sysexits.New(sysexits.DataErr, "jname %.20q... is %d bytes long; at most %d are allowed", name, len(name), MaxNameLen)
	case !validName(name):
		return sysexits.New(sysexits.DataErr, "jname %q is invalid: use letters, digits and _ @ %% : (as CBSD does), '.' and '-' after the first character", name)
	}
	return nil
}

// Env is one environment: its name and the local directory for each role
// (a role CBSD did not pass is absent).
type Env struct {
	Name string
	Dirs map[Role]string
}

// Dir returns the local directory of role, or "" when it was not given.
func (e *Env) Dir(r Role) string { return e.Dirs[r] }

// String names the environment in messages.
func (e *Env) String() string { return fmt.Sprintf("environment %s", e.Name) }

// CBSDDirs derives an environment's four directories from CBSD's workdir
// the way CBSD does: jails-data/<j>-data, jails-system/<j>, jails-fstab/<j>,
// and the node-wide jails-rcconf.
func CBSDDirs(workdir, jname string) map[Role]string {
	return map[Role]string{
		Data:   filepath.Join(workdir, "jails-data", jname+"-data"),
		System: filepath.Join(workdir, "jails-system", jname),
		Fstab:  filepath.Join(workdir, "jails-fstab", jname),
		RCConf: filepath.Join(workdir, "jails-rcconf"),
	}
}

// CBSDWorkdir recovers CBSD's workdir from the system directory CBSD passes
// for jname (-s <workdir>/jails-system/<jname>), or "" when dir is not laid
// out that way.
func CBSDWorkdir(sysdir, jname string) string {
	sysdir = filepath.Clean(sysdir)
	parent := filepath.Dir(sysdir)
	if sysdir == "." || filepath.Base(sysdir) != jname || filepath.Base(parent) != "jails-system" {
		return ""
	}
	return filepath.Dir(parent)
}

// CBSDJailRoot is where CBSD builds a jail's root by default:
// path="${jaildir}/${jname}" with jaildir=${workdir}/jails. With baserw=0
// its base and the jail's fstab entries are mounted there.
func CBSDJailRoot(workdir, jname string) string { return filepath.Join(workdir, "jails", jname) }
