// Package state keeps, per environment, the record of what mnt-start
// attached (mounts, sessions, imported pools) and how to undo each, so that
// mnt-stop undoes exactly that, in reverse, even after a crash or a reboot.
//
// The record is written ahead: an action is recorded as pending before the
// step that attaches it runs, and marked done after, so a run killed at any
// point leaves a record naming everything it may have attached.
package state

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/record"
	"github.com/envhooks/envhooks/lib/safefile"
)

// Action is one thing that was attached, with what undoes it.
type Action struct {
	ID   string `json:"id"`   // unique within a record, e.g. "mount:/usr/jails/jails-data/web1-data"
	What string `json:"what"` // what an operator reads: "bind /dfs/data/web1 on /usr/jails/jails-data/web1-data"
	Kind string `json:"kind"` // KindUnmount or KindCommand
	// Pending: the step was about to run (or running) when this was
	// written; whether it attached anything is not known. Undoing a
	// pending action is safe: an unmount checks the mount table first,
	// and undo commands treat "not attached" as success.
	Pending bool `json:"pending,omitempty"`
	// KindUnmount: the mount point and what must be mounted there; the
	// engine unmounts only a mount that still matches.
	Target string        `json:"target,omitempty"`
	Want   mounttab.Want `json:"want,omitzero"`
	// Force is the command that forces the unmount when FORCE_UNMOUNT=1.
	Force []string `json:"force,omitempty"`
	// Direct: unmount with umount(2) itself; Argv only describes it.
	Direct bool `json:"direct,omitempty"`
	// The undo command, and which exits mean "already undone".
	Argv     []string `json:"argv"`
	OKExit   []int    `json:"ok_exit,omitempty"`
	OKStderr []string `json:"ok_stderr,omitempty"`
	// KindCommand: the undo command's deadline (0: COMMAND_TIMEOUT), and
	// whether Argv[0] is an executable the configuration names (an exec
	// hook), which runs only after the runner's checks (run.Cmd.Configured).
	Timeout    time.Duration `json:"timeout_ns,omitempty"`
	Configured bool          `json:"configured,omitempty"`
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

// Has reports whether an action with this ID is recorded, done or pending.
func (r *Record) Has(id string) bool { return r.find(id) >= 0 }

// Done reports whether the action with this ID is recorded as done.
func (r *Record) Done(id string) bool {
	i := r.find(id)
	return i >= 0 && !r.Actions[i].Pending
}

// Put records a, replacing an action with the same ID where it stands, or
// appending it.
func (r *Record) Put(a Action) {
	if i := r.find(a.ID); i >= 0 {
		r.Actions[i] = a
		return
	}
	r.Actions = append(r.Actions, a)
}

func (r *Record) find(id string) int {
	for i, a := range r.Actions {
		if a.ID == id {
			return i
		}
	}
	return -1
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

// Codec is the state record's kind: JSON, and the line format envhooks
// wrote before, read so that an upgrade with environments attached loses
// nothing.
var Codec = record.Kind{Format: "envhooks-state 2", What: "state record", Max: 4 << 20, Legacy: decodeLegacy}

// Store keeps records as one file per environment in a directory.
type Store struct {
	Dir string
}

// Path is the record file of jname.
func (s Store) Path(jname string) string { return filepath.Join(s.Dir, jname+".state") }

// Load returns the record for jname, or nil when there is none. A damaged
// record is an error that names the file (exit code 65).
func (s Store) Load(jname string) (*Record, error) {
	var r Record
	found, err := Codec.Read(s.Path(jname), &r)
	if !found || err != nil {
		return nil, err
	}
	if err := r.check(jname); err != nil {
		return nil, Codec.Damaged(s.Path(jname), err)
	}
	return &r, nil
}

// check refuses a record that decodes but cannot be acted on.
func (r *Record) check(jname string) error {
	if r.JName != jname {
		return fmt.Errorf("it is the record of %q, not of %q", r.JName, jname)
	}
	for _, a := range r.Actions {
		switch {
		case a.ID == "":
			return fmt.Errorf("an action has no id")
		case a.Kind == KindUnmount && a.Target == "":
			return fmt.Errorf("action %q unmounts no target", a.ID)
		case a.Kind == KindUnmount && !a.Direct && len(a.Argv) == 0:
			return fmt.Errorf("action %q has no unmount command", a.ID)
		case a.Kind == KindCommand && len(a.Argv) == 0:
			return fmt.Errorf("action %q has no undo command", a.ID)
		case a.Kind != KindUnmount && a.Kind != KindCommand:
			return fmt.Errorf("action %q has an unknown kind %.20q", a.ID, a.Kind)
		}
	}
	return nil
}

// Save writes the record atomically and durably; a record with no actions
// is removed.
func (s Store) Save(r *Record) error {
	if len(r.Actions) == 0 {
		return s.Remove(r.JName)
	}
	r.Updated = time.Now().UTC().Truncate(time.Second)
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	return Codec.Write(s.Path(r.JName), r, 0o600)
}

// Remove deletes the record for jname; a missing one is not an error.
func (s Store) Remove(jname string) error { return safefile.Remove(s.Path(jname)) }
