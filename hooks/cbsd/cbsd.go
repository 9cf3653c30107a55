// Package cbsd holds the hook script CBSD runs after an environment stops
// (master_poststop.d), embedded so envctl can install it, and the layout CBSD
// derives from its workdir.
package cbsd

import (
	_ "embed"
	"os"
	"path/filepath"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/safefile"
)

// PoststopName is the script's file name inside master_poststop.d.
const PoststopName = "envhooks-mnt-stop"

//go:embed master_poststop.d/envhooks-mnt-stop
var poststop []byte

// Poststop returns the script's text.
func Poststop() []byte { return append([]byte(nil), poststop...) }

// Dirs derives an environment's four directories from CBSD's workdir the
// way CBSD does: jails-data/<j>-data, jails-system/<j>, jails-fstab/<j>, and
// the node-wide jails-rcconf.
func Dirs(workdir, jname string) map[environment.Role]string {
	return map[environment.Role]string{
		environment.Data:   filepath.Join(workdir, "jails-data", jname+"-data"),
		environment.System: filepath.Join(workdir, "jails-system", jname),
		environment.Fstab:  filepath.Join(workdir, "jails-fstab", jname),
		environment.RCConf: filepath.Join(workdir, "jails-rcconf"),
	}
}

// PoststopPath is where the script goes for an environment.
func PoststopPath(workdir, jname string) string {
	return filepath.Join(workdir, "jails-system", jname, "master_poststop.d", PoststopName)
}

// InstallPoststop writes the script into the environment's system
// directory (it travels with the environment on shared storage), atomically
// and executable by root only.
func InstallPoststop(workdir, jname string) (string, error) {
	path := PoststopPath(workdir, jname)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, safefile.WriteAtomic(path, poststop, 0o755)
}
