// Package cbsdlock handles the one CBSD file that must not travel with an
// environment's shared system directory: jails-system/<jname>/locked. CBSD's
// jstart writes the node's name into it once the jail runs (sudoexec/jstart,
// "make shared lock"), cbsdd touches it every few minutes while it runs
// (tools/cbsdd, update_jaillock), jstop removes it only after its
// master_poststop.d scripts ran (sudoexec/jstop), and jstart on any other node
// refuses to start the jail while the file names another node and is less
// than 30 minutes old. A system directory detached with the file still in it
// carries this node's name to the next node, which then cannot start the
// jail for half an hour: so it is cleared, while it names this node, before
// the system directory is detached.
package cbsdlock

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"

	"github.com/envhooks/envhooks/lib/safefile"
)

// FileName is the lock's name inside the system directory.
const FileName = "locked"

// maxLock bounds what is read: the file holds one node name.
const maxLock = 4096

// NodeNames returns the names this node is known by to CBSD: the first word
// of <workdir>/nodename (cbsd.conf reads nodenamefile="${workdir}/nodename"
// with awk '{printf $1}'), and the names given (NODE_NAME, the host name).
func NodeNames(workdir string, names ...string) []string {
	var out []string
	if workdir != "" {
		if raw, err := safefile.Read(filepath.Join(workdir, "nodename"), maxLock); err == nil {
			if f := bytes.Fields(raw); len(f) > 0 {
				out = append(out, string(f[0]))
			}
		}
	}
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ClearIfMine removes sysdir/locked when its content names one of names,
// the way jstart reads it (the whole file, compared with the node name).
// It returns what it found in the file ("" when there was none), and
// whether it removed it. An empty file is left alone: jstart treats it as
// stale and removes it itself.
func ClearIfMine(sysdir string, names []string) (holder string, removed bool, err error) {
	path := filepath.Join(sysdir, FileName)
	raw, err := safefile.Read(path, maxLock)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	holder = string(bytes.TrimSpace(raw))
	for _, n := range names {
		if holder != "" && holder == n {
			if err := safefile.Remove(path); err != nil {
				return holder, false, err
			}
			return holder, true, nil
		}
	}
	return holder, false, nil
}
