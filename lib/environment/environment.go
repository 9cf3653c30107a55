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

// validName is [A-Za-z0-9][A-Za-z0-9_.-]*, checked by hand: it runs in
// every hook start, where compiling a regexp would cost more than the check.
func validName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
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
	case name == "." || name == "..":
		return sysexits.New(sysexits.DataErr, "jname %q is not allowed", name)
	case !validName(name):
		return sysexits.New(sysexits.DataErr, "jname %q is invalid: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
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
