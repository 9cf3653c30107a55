// Package inventory is the node-local registry of environments: one record
// per environment this node has registered, each written atomically.
package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/record"
	"github.com/envhooks/envhooks/lib/safefile"
)

// DirKey is where the records live.
var DirKey = config.InventoryDir

// Record is one registered environment.
type Record struct {
	JName      string    `json:"jname"`
	Kind       string    `json:"kind"` // jail or vm
	Node       string    `json:"node"`
	Registered time.Time `json:"registered"`
	Generation uint64    `json:"generation,omitempty"` // the lease generation it was registered under
	// Started is when envctl start (itself, or inside move, recover or
	// failover) last started it here; zero once envctl stop stopped it.
	// Set, it says the environment is expected to run: what envctl
	// failover restarts in place when it finds it stopped (HA=1).
	Started time.Time `json:"started,omitzero"`
	// Descriptor is the rc.conf_<jname> text with this node's workdir in it.
	Descriptor string `json:"descriptor"`
}

// Codec is the inventory record's kind. Records written before the format
// field existed are the same JSON without it, and are read as they are.
var Codec = record.Kind{Format: "envhooks-inventory 2", What: "inventory record", Max: 1 << 20, Unversioned: true}

// Store is a directory of records.
type Store struct{ Dir string }

// Path is the record file of jname.
func (s Store) Path(jname string) string { return filepath.Join(s.Dir, jname+".json") }

// Load returns the record of jname, or nil. A damaged record is an error
// naming its file (exit code 65).
func (s Store) Load(jname string) (*Record, error) {
	var r Record
	found, err := Codec.Read(s.Path(jname), &r)
	if !found || err != nil {
		return nil, err
	}
	if r.JName != jname {
		return nil, Codec.Damaged(s.Path(jname), fmt.Errorf("it is the record of %.64q, not of %q", r.JName, jname))
	}
	return &r, nil
}

// Save writes a record atomically (temp file, fsync, rename).
func (s Store) Save(r *Record) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	return Codec.Write(s.Path(r.JName), r, 0o644)
}

// Remove deletes jname's record; a missing one is not an error.
func (s Store) Remove(jname string) error { return safefile.Remove(s.Path(jname)) }

// Names lists the registered jnames, sorted, and the files of the
// directory that cannot be records (a name that is not a jname, such as
// "a b.json", or not a regular file), which callers name and skip: one
// stray file must not hide every environment.
func (s Store) Names() (names, strays []string, err error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		switch {
		case strings.HasPrefix(e.Name(), "."):
			// temporary files of an atomic write
		case !ok || environment.CheckName(name) != nil || !e.Type().IsRegular():
			strays = append(strays, filepath.Join(s.Dir, e.Name()))
		default:
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, strays, nil
}
