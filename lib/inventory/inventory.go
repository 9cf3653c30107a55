// Package inventory is the node-local registry of environments: one record
// per environment this node has registered, each written atomically.
package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/config"
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
	// Descriptor is the rc.conf_<jname> text with this node's workdir in it.
	Descriptor string `json:"descriptor"`
}

// maxRecord bounds what Load reads: a record holds one descriptor, a few
// KiB; anything far larger is not a record.
const maxRecord = 1 << 20

// Store is a directory of records.
type Store struct{ Dir string }

func (s Store) path(jname string) string { return filepath.Join(s.Dir, jname+".json") }

// Load returns the record of jname, or nil.
func (s Store) Load(jname string) (*Record, error) {
	var r Record
	if found, err := safefile.ReadJSON(s.path(jname), "inventory record", maxRecord, &r); !found || err != nil {
		return nil, err
	}
	return &r, nil
}

// Save writes a record atomically (temp file, fsync, rename).
func (s Store) Save(r *Record) error { return safefile.WriteJSON(s.path(r.JName), r, 0o644, 0o755) }

// Remove deletes jname's record; a missing one is not an error.
func (s Store) Remove(jname string) error { return safefile.Remove(s.path(jname)) }

// Names lists the registered jnames, sorted.
func (s Store) Names() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(name, ".") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}
