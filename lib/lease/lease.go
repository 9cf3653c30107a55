// Package lease decides which node owns an environment. Ownership is an
// atomic create on storage every node sees, records the node, since when,
// and a generation number that grows with every new owner (a fencing token),
// and is released only by its holder or taken over explicitly.
package lease

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/run"
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
	BackendKey = config.Define(config.Key{Name: "LEASE_BACKEND", Default: "file", Doc: "where ownership leases live: file (a directory on shared storage), nfs (on NFS_SERVER, over NFS RPC, nothing mounted), etcd (an etcd cluster at ETCD_ENDPOINTS)", Check: config.OneOf("file", "nfs", "etcd")})
	DirKey     = config.Define(config.Key{Name: "LEASE_DIR", Doc: "file: an existing directory on storage every node mounts, on another filesystem than / or marked once by envctl lease init; nfs: a directory on NFS_SERVER inside LEASE_NFS_EXPORT; etcd: the key prefix; empty turns ownership checks off in mnt-start (envctl requires it)", Check: config.IsAbsPath})
	TTLKey     = config.Define(config.Key{Name: "LEASE_TTL", Default: "30", Doc: "seconds without a heartbeat after which a node counts as dead and envctl jregister --takeover may take its environments", Check: config.IsSeconds})
	TimeoutKey = config.Define(config.Key{Name: "LEASE_TIMEOUT", Default: "5", Doc: "seconds any one call to the lease store (NFS RPC, etcd) may take", Check: config.IsSeconds})
	ExportKey  = config.Define(config.Key{Name: "LEASE_NFS_EXPORT", Doc: "nfs leases: the export LEASE_DIR lies in (default: NFS_SERVER_ROOT_DIR, else LEASE_DIR itself)", Check: config.IsAbsPath})
	ServerKey  = config.Define(config.Key{Name: "LEASE_NFS_SERVER", Doc: "nfs leases: the NFS server holding them (default: NFS_SERVER)"})
	EtcdKey    = config.Define(config.Key{Name: "ETCD_ENDPOINTS", Doc: "etcd leases: the cluster's client URLs, comma-separated (http://10.0.0.1:2379,http://10.0.0.2:2379)", Check: checkEndpoints})
)

// Open returns the configured store, or nil when leases are not configured
// (LEASE_DIR empty). A store that holds connections is an io.Closer. A
// driver that runs a program (reading a lease through envctl) runs it with
// runner; reading a lease changes nothing, so a dry run's runner runs it.
func Open(cfg *config.Config, runner run.Runner) (Store, error) {
	dir := cfg.Get(DirKey)
	if dir == "" {
		return nil, nil
	}
	timeout := cfg.Seconds(TimeoutKey)
	switch cfg.Get(BackendKey) {
	case "file":
		if err := CheckDir(dir); err != nil {
			return nil, err
		}
		return &FileStore{Dir: dir}, nil
	case "nfs":
		server := cfg.Get(ServerKey)
		if server == "" {
			server = declared(cfg, "NFS_SERVER")
		}
		if server == "" {
			return nil, cfg.Errorf(BackendKey, "nfs leases need LEASE_NFS_SERVER or NFS_SERVER")
		}
		export := cfg.Get(ExportKey)
		if export != "" && !within(dir, export) {
			return nil, cfg.Errorf(DirKey, "%s is not inside LEASE_NFS_EXPORT %s", dir, export)
		}
		if export == "" {
			export = declared(cfg, "NFS_SERVER_ROOT_DIR")
		}
		if export == "" || !within(dir, export) {
			export = dir
		}
		return NewNFSStore(server, export, dir, timeout), nil
	case "etcd":
		if open, ok := drivers["etcd"]; ok {
			return open(cfg, dir, timeout)
		}
		// This program does not link the etcd client (the hooks, whose
		// every start would pay for gRPC's initialisation): envctl reads
		// the lease for it.
		if len(Endpoints(cfg)) == 0 {
			return nil, cfg.Errorf(BackendKey, "etcd leases need ETCD_ENDPOINTS")
		}
		return &viaEnvctl{cfg: cfg, timeout: timeout, runner: runner}, nil
	}
	return nil, cfg.Errorf(BackendKey, "unknown lease backend")
}

// Opener opens a store whose driver lives in a package of its own.
type Opener func(cfg *config.Config, dir string, timeout time.Duration) (Store, error)

var drivers = map[string]Opener{}

// Register makes a driver package's store available to Open; the package
// does it in its init, so only programs that import it link it.
func Register(name string, open Opener) { drivers[name] = open }

// Endpoints returns ETCD_ENDPOINTS as a list.
func Endpoints(cfg *config.Config) []string { return splitEndpoints(cfg.Get(EtcdKey)) }

// declared reads a key another package declares (the NFS backend's), or ""
// when the program does not link that package.
func declared(cfg *config.Config, name string) string {
	for _, k := range config.Keys() {
		if k.Name == name {
			return cfg.Get(name)
		}
	}
	return ""
}

func within(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func splitEndpoints(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func checkEndpoints(v string) error {
	for _, e := range splitEndpoints(v) {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%.64q is not an http:// or https:// URL", e)
		}
	}
	return nil
}

// Close closes a store's connections, if it holds any.
func Close(s Store) {
	if c, ok := s.(io.Closer); ok {
		c.Close()
	}
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
