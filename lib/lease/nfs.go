package lease

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envhooks/envhooks/lib/nfsclient"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// OrphanNode stands for the unknown holder of an NFS lease directory that
// has no owner record: an acquire that died between its MKDIR and its
// record. Such a lease is held (nobody may take it by accident) until an
// operator takes it over with --force --from '?'.
const OrphanNode = "?"

// NFSStore keeps leases on an NFS server and takes them over NFS RPC, with
// nothing mounted on this node, so it works before any storage is attached
// and no client attribute cache can show a stale answer. MKDIR of
// <jname>.lease is the atomic create: the server checks and creates in one
// step, and of many clients exactly one succeeds. The winner then writes
// the owner record inside it. Releasing writes the generation to
// <jname>.gen, then RENAMEs the lease directory aside (atomic) and removes
// it. Every call runs under the store's timeout.
type NFSStore struct {
	Server, Export, Dir string
	Timeout             time.Duration

	mu      sync.Mutex
	client  *nfsclient.Client
	dirMade atomic.Bool
}

// NewNFSStore returns a store for dir, a directory inside export on server.
func NewNFSStore(server, export, dir string, timeout time.Duration) *NFSStore {
	return &NFSStore{Server: server, Export: export, Dir: dir, Timeout: timeout}
}

func (n *NFSStore) rel(name string) string {
	return strings.TrimPrefix(path.Join(strings.TrimPrefix(path.Clean(n.Dir), path.Clean(n.Export)), name), "/")
}
func (n *NFSStore) leaseDir(jname string) string { return n.rel(jname + ".lease") }
func (n *NFSStore) ownerPath(jname string) string {
	return path.Join(n.leaseDir(jname), "owner")
}
func (n *NFSStore) genPath(jname string) string { return n.rel(jname + ".gen") }

// with runs fn on a connected client, dialling when needed. A failure that
// is not an answer from the server (a timeout, a reset connection, a
// restarted server) drops the client so the next call dials afresh.
func (n *NFSStore) with(ctx context.Context, fn func(c *nfsclient.Client) error) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, n.Timeout)
	defer cancel()
	if n.client == nil {
		c, err := nfsclient.Dial(ctx, n.Server, n.Export, nfsclient.Options{Timeout: n.Timeout})
		if err != nil {
			return fmt.Errorf("lease store %s:%s: %w", n.Server, n.Export, err)
		}
		n.client = c
	}
	err := fn(n.client)
	if err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrNotExist) {
		n.client.Close()
		n.client = nil
	}
	return err
}

// Close drops the connection.
func (n *NFSStore) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.client != nil {
		n.client.Close()
		n.client = nil
	}
	return nil
}

func (n *NFSStore) readRecord(ctx context.Context, jname string) (*Lease, bool, error) {
	var raw []byte
	err := n.with(ctx, func(c *nfsclient.Client) error {
		var err error
		raw, err = c.ReadFile(ctx, n.ownerPath(jname))
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	l, err := parseRecord(raw, jname)
	if err != nil || l.Node == "" || l.Generation == 0 {
		return nil, false, nil // half written: the winner is still at it
	}
	return l, true, nil
}

// Get reads the lease. A lease directory whose record does not appear
// within the store's timeout is an orphan, held by OrphanNode.
func (n *NFSStore) Get(ctx context.Context, jname string) (*Lease, error) {
	deadline := time.Now().Add(min(n.Timeout, 2*time.Second))
	for {
		l, ok, err := n.readRecord(ctx, jname)
		if err != nil || ok {
			return l, err
		}
		err = n.with(ctx, func(c *nfsclient.Client) error {
			_, err := c.Stat(ctx, n.leaseDir(jname))
			return err
		})
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return &Lease{JName: jname, Node: OrphanNode}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (n *NFSStore) ensureDir(ctx context.Context) error {
	if n.dirMade.Load() {
		return nil
	}
	err := n.with(ctx, func(c *nfsclient.Client) error {
		_, err := c.MkdirAll(ctx, n.rel(""), 0o755, nfsclient.NoOwner)
		return err
	})
	if err == nil {
		n.dirMade.Store(true)
	}
	return err
}

func (n *NFSStore) lastGen(ctx context.Context, jname string) (uint64, error) {
	var raw []byte
	err := n.with(ctx, func(c *nfsclient.Client) error {
		var err error
		raw, err = c.ReadFile(ctx, n.genPath(jname))
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	l, err := parseRecord(raw, jname)
	if err != nil {
		return 0, &badGenError{path: n.genPath(jname), err: err}
	}
	return l.Generation, nil
}

// badGenError is a generation file cut short: WRITE over NFS truncates
// first, so a holder that died (or a server that restarted) in between
// leaves it empty. Only the holder's own release may write over it.
type badGenError struct {
	path string
	err  error
}

func (e *badGenError) Error() string {
	return fmt.Sprintf("the generation file %s is damaged (%v): release or take over the lease to rewrite it", e.path, e.err)
}

func (n *NFSStore) held(ctx context.Context, jname, node string) (*Lease, error) {
	cur, err := n.Get(ctx, jname)
	if err != nil || cur == nil {
		return nil, err
	}
	if cur.Node == node {
		return cur, nil
	}
	return nil, sysexits.Wrap(sysexits.NoPerm, &HeldError{Lease: *cur})
}

func (n *NFSStore) Acquire(ctx context.Context, jname, node string) (*Lease, error) {
	// No look first: MKDIR answers "free?" and "mine now" in one step,
	// and EXIST sends us to read who holds it.
	if err := n.ensureDir(ctx); err != nil {
		return nil, err
	}
	err := n.with(ctx, func(c *nfsclient.Client) error { return c.Mkdir(ctx, n.leaseDir(jname), 0o755, nfsclient.NoOwner) })
	if errors.Is(err, fs.ErrExist) {
		l, err := n.held(ctx, jname, node)
		if l == nil && err == nil {
			// Released between our MKDIR and our look: someone else's
			// turn now; the caller may try again.
			return nil, sysexits.New(sysexits.TempFail, "the lease of %s changed hands while it was being acquired: try again", jname)
		}
		return l, err
	}
	if err != nil {
		return nil, err
	}
	// The directory is ours: nobody else writes the record or the
	// generation until we remove it.
	gen, err := n.lastGen(ctx, jname)
	if err == nil {
		l := &Lease{JName: jname, Node: node, Since: time.Now().UTC().Truncate(time.Second), Generation: gen + 1}
		err = n.with(ctx, func(c *nfsclient.Client) error { return c.WriteFile(ctx, n.ownerPath(jname), formatRecord(l), 0o644) })
		if err == nil {
			return l, nil
		}
	}
	// Undo, so a failed acquire leaves no orphan when the server lets us.
	undo := context.WithoutCancel(ctx)
	n.with(undo, func(c *nfsclient.Client) error { return c.Remove(undo, n.ownerPath(jname)) })
	n.with(undo, func(c *nfsclient.Client) error { return c.Remove(undo, n.leaseDir(jname)) })
	return nil, err
}

// drop removes a lease held by holder at generation gen: it keeps the
// generation, then removes the record and the directory.
func (n *NFSStore) drop(ctx context.Context, jname string, gen uint64) error {
	// The holder's generation is at least the file's (it was the file's
	// plus one), so a damaged file is simply written anew.
	// Only an orphan (generation 0) needs the file's number: a holder's
	// is the file's plus one already.
	var bad *badGenError
	if gen == 0 {
		if last, err := n.lastGen(ctx, jname); err != nil && !errors.As(err, &bad) {
			return err
		} else if last > gen {
			gen = last
		}
	}
	// One RENAME moves the whole lease aside, atomically: a release cut
	// short by a crash or a server restart leaves either the lease or
	// nothing, never a lease directory without its record. Clearing the
	// moved directory afterwards is housekeeping.
	aside := n.rel(fmt.Sprintf(".%s.released.%s", jname, randomSuffix()))
	err := n.with(ctx, func(c *nfsclient.Client) error {
		if err := c.WriteFile(ctx, n.genPath(jname), formatRecord(&Lease{JName: jname, Generation: gen}), 0o644); err != nil {
			return err
		}
		return c.Rename(ctx, n.leaseDir(jname), aside)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	n.with(ctx, func(c *nfsclient.Client) error {
		c.Remove(ctx, path.Join(aside, "owner"))
		return c.Remove(ctx, aside)
	})
	return nil
}

func (n *NFSStore) Release(ctx context.Context, jname, node string) error {
	cur, err := n.Get(ctx, jname)
	if err != nil || cur == nil {
		return err
	}
	if cur.Node != node {
		return sysexits.Wrap(sysexits.NoPerm, &HeldError{Lease: *cur})
	}
	return n.drop(ctx, jname, cur.Generation)
}

func (n *NFSStore) Takeover(ctx context.Context, jname, node, from string) (*Lease, error) {
	cur, err := n.Get(ctx, jname)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.Node != node {
		if cur.Node != from {
			return nil, sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("refusing the takeover: %s is held by %s, not by %s as you said", jname, cur.Node, from))
		}
		// Look once more right before removing: NFS has no
		// compare-and-delete, so this narrows the window in which a
		// concurrent takeover's fresh lease could be removed.
		again, err := n.Get(ctx, jname)
		if err != nil {
			return nil, err
		}
		if again != nil && (again.Node != cur.Node || again.Generation != cur.Generation) {
			return nil, sysexits.Wrap(sysexits.NoPerm, &HeldError{Lease: *again})
		}
		if err := n.drop(ctx, jname, cur.Generation); err != nil {
			return nil, err
		}
	}
	return n.Acquire(ctx, jname, node)
}

func (n *NFSStore) List(ctx context.Context) ([]Lease, error) {
	var names []string
	err := n.with(ctx, func(c *nfsclient.Client) error {
		var err error
		names, err = c.ReadDirNames(ctx, n.rel(""))
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Lease
	for _, name := range names {
		jname, ok := strings.CutSuffix(name, ".lease")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		l, err := n.Get(ctx, jname)
		if err != nil {
			return nil, err
		}
		if l != nil {
			out = append(out, *l)
		}
	}
	return out, nil
}

func (n *NFSStore) beatPath(node string) string { return n.rel(path.Join(".heartbeat", node)) }

// Beat writes this node's heartbeat record on the server.
func (n *NFSStore) Beat(ctx context.Context, node string, _ time.Duration) error {
	err := n.with(ctx, func(c *nfsclient.Client) error {
		return c.WriteFile(ctx, n.beatPath(node), BeatRecord(time.Now()), 0o644)
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = n.with(ctx, func(c *nfsclient.Client) error {
			if _, err := c.MkdirAll(ctx, n.rel(".heartbeat"), 0o755, nfsclient.NoOwner); err != nil {
				return err
			}
			return c.WriteFile(ctx, n.beatPath(node), BeatRecord(time.Now()), 0o644)
		})
	}
	return err
}

// Alive reads node's heartbeat record from the server.
func (n *NFSStore) Alive(ctx context.Context, node string, ttl time.Duration) (bool, bool, time.Time, error) {
	var raw []byte
	err := n.with(ctx, func(c *nfsclient.Client) error {
		var err error
		raw, err = c.ReadFile(ctx, n.beatPath(node))
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, time.Time{}, nil
	}
	if err != nil {
		return false, false, time.Time{}, err
	}
	alive, known, last := judge(raw, ttl)
	return alive, known, last, nil
}
