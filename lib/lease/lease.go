// Package lease decides which node owns an environment. Ownership is an
// atomic create on storage every node sees, records the node, since when,
// and a generation number that grows with every new owner (a fencing token),
// and is released only by its holder or taken over explicitly.
package lease

import (
	"context"
	"fmt"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Lease is one environment's ownership.
type Lease struct {
	JName      string    `json:"jname"`
	Node       string    `json:"node"`
	Since      time.Time `json:"since"`
	Generation uint64    `json:"generation"`
}

// Store keeps leases. Every driver is safe against concurrent acquirers on
// different nodes: exactly one wins.
type Store interface {
	// Get returns the current lease, or nil when nobody owns jname.
	Get(ctx context.Context, jname string) (*Lease, error)
	// Acquire makes node the owner. Holding it already is success; another
	// holder is a *HeldError.
	Acquire(ctx context.Context, jname, node string) (*Lease, error)
	// Release gives up node's ownership; not holding anything is success,
	// another holder is a *HeldError.
	Release(ctx context.Context, jname, node string) error
	// Takeover makes node the owner although from holds the lease: the
	// operator's explicit decision that from is gone. A holder other than
	// from is a *HeldError.
	Takeover(ctx context.Context, jname, node, from string) (*Lease, error)
	// List returns every lease in the store.
	List(ctx context.Context) ([]Lease, error)
}

// HeldError says another node owns the environment.
type HeldError struct{ Lease Lease }

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is owned by node %s since %s (generation %d): run envctl junregister on %s first, or take it over with --force --from %s if that node is gone",
		e.Lease.JName, e.Lease.Node, e.Lease.Since.Format(time.RFC3339), e.Lease.Generation, e.Lease.Node, e.Lease.Node)
}

// Keys.
var (
	BackendKey = config.Define(config.Key{Name: "LEASE_BACKEND", Default: "file", Doc: "where ownership leases live: file (a directory on shared storage)", Check: config.OneOf("file")})
	DirKey     = config.Define(config.Key{Name: "LEASE_DIR", Doc: "file leases: a directory on storage every node mounts; empty turns ownership checks off in mnt-start (envctl requires it)", Check: config.IsAbsPath})
)

// Open returns the configured store, or nil when leases are not configured.
func Open(cfg *config.Config) (Store, error) {
	switch cfg.Get(BackendKey) {
	case "file":
		dir := cfg.Get(DirKey)
		if dir == "" {
			return nil, nil
		}
		return &FileStore{Dir: dir}, nil
	}
	return nil, cfg.Errorf(BackendKey, "unknown lease backend")
}

// Check refuses (77) when node does not own jname: mnt-start calls it so
// that a start on the wrong node fails before anything is mounted.
func Check(ctx context.Context, s Store, jname, node string) (*Lease, error) {
	l, err := s.Get(ctx, jname)
	if err != nil {
		return nil, sysexits.New(sysexits.Unavailable, "cannot read the ownership lease of %s: %v", jname, err)
	}
	if l == nil {
		return nil, sysexits.New(sysexits.NoPerm, "%s is not owned by any node (leases are on): register it on this node with envctl jregister %s first", jname, jname)
	}
	if l.Node != node {
		return nil, sysexits.Wrap(sysexits.NoPerm, &HeldError{Lease: *l})
	}
	return l, nil
}
