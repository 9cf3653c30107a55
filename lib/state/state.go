// Package state keeps, per environment, the record of what mnt-start
// attached (mounts, sessions, imported pools) and how to undo each, so that
// mnt-stop undoes exactly that, in reverse, even after a crash or a reboot.
package state

import (
	"os"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/mounttab"
)

// Action is one thing that was attached, with what undoes it.
type Action struct {
	ID   string `json:"id"`   // unique within a record, e.g. "mount:/usr/jails/jails-data/web1-data"
	What string `json:"what"` // what an operator reads: "bind /dfs/data/web1 on /usr/jails/jails-data/web1-data"
	Kind string `json:"kind"` // KindUnmount or KindCommand

	// KindUnmount: the mount point and what must be mounted there; the
	// engine unmounts only a mount that still matches.
	Target string        `json:"target,omitempty"`
	Want   mounttab.Want `json:"want,omitempty"`
	// Force is the command that forces the unmount when FORCE_UNMOUNT=1.
	Force []string `json:"force,omitempty"`
	// Direct: unmount with umount(2) itself; Argv only describes it.
	Direct bool `json:"direct,omitempty"`

	// The undo command, and which exits mean "already undone".
	Argv     []string `json:"argv"`
	OKExit   []int    `json:"ok_exit,omitempty"`
	OKStderr []string `json:"ok_stderr,omitempty"`
}

// Kinds of action.
const (
	KindUnmount = "unmount" // undo by unmounting Target (not mounted is success)
	KindCommand = "command" // undo by running Argv
)

// Record is everything attached for one environment.
type Record struct {
	JName   string    `json:"jname"`
	Backend string    `json:"backend"`
	Node    string    `json:"node,omitempty"`
	Updated time.Time `json:"updated"`
	// Generation is the ownership lease generation this node held when it
	// attached (the fencing token); 0 without a lease.
	Generation uint64   `json:"generation,omitempty"`
	Actions    []Action `json:"actions"`
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

// Store keeps records as one JSON file per environment in a directory.
type Store struct {
	Dir string
}

func (s Store) path(jname string) string { return filepath.Join(s.Dir, jname+".json") }

// Load returns the record for jname, or nil when there is none.
func (s Store) Load(jname string) (*Record, error) {
	var r Record
	if found, err := ReadJSON(s.path(jname), "state file", &r); !found || err != nil {
		return nil, err
	}
	return &r, nil
}

// Save writes the record atomically; a record with no actions is removed.
func (s Store) Save(r *Record) error {
	if len(r.Actions) == 0 {
		return s.Remove(r.JName)
	}
	r.Updated = time.Now().UTC().Truncate(time.Second)
	return WriteJSON(s.path(r.JName), r, 0o600, 0o700)
}

// Remove deletes the record for jname; a missing one is not an error.
func (s Store) Remove(jname string) error { return RemoveFile(s.path(jname)) }

// WriteFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, never a torn one: temp file, fsync, rename, and
// fsync of the directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this finds nothing
	if _, err = f.Write(data); err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
