// Package state keeps, per environment, the record of what mnt-start
// attached (mounts, sessions, imported pools) and how to undo each, so that
// mnt-stop undoes exactly that, in reverse, even after a crash or a reboot.
package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/safefile"
)

// Action is one thing that was attached, with what undoes it.
type Action struct {
	ID   string // unique within a record, e.g. "mount:/usr/jails/jails-data/web1-data"
	What string // what an operator reads: "bind /dfs/data/web1 on /usr/jails/jails-data/web1-data"
	Kind string // KindUnmount or KindCommand

	// KindUnmount: the mount point and what must be mounted there; the
	// engine unmounts only a mount that still matches.
	Target string
	Want   mounttab.Want
	// Force is the command that forces the unmount when FORCE_UNMOUNT=1.
	Force []string
	// Direct: unmount with umount(2) itself; Argv only describes it.
	Direct bool

	// The undo command, and which exits mean "already undone".
	Argv     []string
	OKExit   []int
	OKStderr []string
	// KindCommand: the undo command's deadline (0: COMMAND_TIMEOUT), and
	// whether Argv[0] is an executable the configuration names (an exec
	// hook), which runs only after the runner's checks (run.Cmd.Configured).
	Timeout    time.Duration
	Configured bool
}

// Kinds of action.
const (
	KindUnmount = "unmount" // undo by unmounting Target (not mounted is success)
	KindCommand = "command" // undo by running Argv
)

// Record is everything attached for one environment.
type Record struct {
	JName   string
	Backend string
	Node    string
	Updated time.Time
	// Generation is the ownership lease generation this node held when it
	// attached (the fencing token); 0 without a lease.
	Generation uint64
	Actions    []Action
}

// Has reports whether an action with this ID is recorded.
func (r *Record) Has(id string) bool {
	for _, a := range r.Actions {
		if a.ID == id {
			return true
		}
	}
	return false
}

// Remove drops the action with this ID.
func (r *Record) Remove(id string) {
	kept := r.Actions[:0]
	for _, a := range r.Actions {
		if a.ID != id {
			kept = append(kept, a)
		}
	}
	r.Actions = kept
}

// Store keeps records as one file per environment in a directory.
type Store struct {
	Dir string
}

// Path is the record file of jname.
func (s Store) Path(jname string) string { return filepath.Join(s.Dir, jname+".state") }

// Load returns the record for jname, or nil when there is none.
func (s Store) Load(jname string) (*Record, error) {
	raw, err := os.ReadFile(s.Path(jname))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := decode(raw)
	if err != nil {
		return nil, fmt.Errorf("state file %s is damaged: %v", s.Path(jname), err)
	}
	return r, nil
}

// Save writes the record atomically; a record with no actions is removed.
func (s Store) Save(r *Record) error {
	if len(r.Actions) == 0 {
		return s.Remove(r.JName)
	}
	r.Updated = time.Now().UTC().Truncate(time.Second)
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	return safefile.WriteAtomic(s.Path(r.JName), encode(r), 0o600)
}

// Remove deletes the record for jname; a missing one is not an error.
func (s Store) Remove(jname string) error { return safefile.Remove(s.Path(jname)) }
