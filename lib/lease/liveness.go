package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/record"
	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Liveness is a store that also keeps each node's heartbeat, so that the
// leases of a node that stopped renewing it can be taken over, and those of
// a live node cannot.
type Liveness interface {
	// Beat renews node's liveness for ttl.
	Beat(ctx context.Context, node string, ttl time.Duration) error
	// Alive reports whether node renewed its liveness within ttl. known is
	// false when node never sent a heartbeat: nothing says it is dead.
	Alive(ctx context.Context, node string, ttl time.Duration) (alive, known bool, last time.Time, err error)
}

// NotExpiredError refuses a takeover because the holder is, or may be,
// alive.
type NotExpiredError struct {
	Lease Lease
	Last  time.Time // zero: never seen
	TTL   time.Duration
}

func (e *NotExpiredError) Error() string {
	if e.Last.IsZero() {
		return fmt.Sprintf("refusing the takeover of %s: its owner %s never sent a heartbeat, so nothing says it is dead; run envctl heartbeat on every node, or take it over with --force --from %s once you know %s is down",
			e.Lease.JName, e.Lease.Node, e.Lease.Node, e.Lease.Node)
	}
	return fmt.Sprintf("refusing the takeover of %s: its owner %s is alive (last heartbeat %s, LEASE_TTL %s); run envctl junregister %s on %s, or wait until its heartbeat is older than LEASE_TTL",
		e.Lease.JName, e.Lease.Node, e.Last.UTC().Format(time.RFC3339), e.TTL, e.Lease.JName, e.Lease.Node)
}

// TakeoverExpired makes node the owner of jname if nobody owns it, or if
// its owner's heartbeat is older than ttl. A live owner, or one that never
// sent a heartbeat, is refused with 77.
func TakeoverExpired(ctx context.Context, s Store, jname, node string, ttl time.Duration) (*Lease, error) {
	cur, err := s.Get(ctx, jname)
	if err != nil {
		return nil, err
	}
	if cur == nil || cur.Node == node {
		return s.Acquire(ctx, jname, node)
	}
	lv, ok := s.(Liveness)
	if !ok {
		return nil, sysexits.New(sysexits.Config, "this lease store keeps no heartbeats: take %s over with --force --from %s", jname, cur.Node)
	}
	alive, known, last, err := lv.Alive(ctx, cur.Node, ttl)
	if err != nil {
		return nil, err
	}
	if alive || !known {
		return nil, sysexits.Wrap(sysexits.NoPerm, &NotExpiredError{Lease: *cur, Last: last, TTL: ttl})
	}
	return s.Takeover(ctx, jname, node, cur.Node)
}

// Heartbeat renews node's liveness every interval until ctx ends. A failed
// renewal is reported through report and retried at the next tick: a node
// that cannot reach the store for longer than the TTL loses its claim to
// being alive, which is the point.
func Heartbeat(ctx context.Context, lv Liveness, node string, ttl, interval time.Duration, report func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := lv.Beat(ctx, node, ttl); err != nil && ctx.Err() == nil {
			report(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// judge turns a heartbeat's time into a verdict; an unreadable record (a
// beat half written over NFS) counts as alive, so it never causes a takeover.
func judge(raw []byte, ttl time.Duration) (alive, known bool, last time.Time) {
	last, ok := ParseBeat(raw)
	if !ok {
		return true, true, time.Time{}
	}
	return time.Since(last) < ttl, true, last
}

// heartbeatDir keeps one file per node beside the file leases.
func (f *FileStore) heartbeatPath(node string) string {
	return filepath.Join(f.Dir, ".heartbeat", node)
}

// Beat writes this node's heartbeat file atomically.
func (f *FileStore) Beat(_ context.Context, node string, _ time.Duration) error {
	p := f.heartbeatPath(node)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return safefile.WriteAtomic(p, BeatRecord(time.Now()), 0o644)
}

// Alive reads node's heartbeat file.
func (f *FileStore) Alive(_ context.Context, node string, ttl time.Duration) (bool, bool, time.Time, error) {
	raw, found, err := beatCodec.ReadFile(f.heartbeatPath(node))
	var damaged *record.DamagedError
	switch {
	case !found:
		return false, false, time.Time{}, nil
	case errors.As(err, &damaged):
		raw = nil // unreadable: judged alive, never a reason for a takeover
	case err != nil:
		return false, false, time.Time{}, err
	}
	alive, known, last := judge(raw, ttl)
	return alive, known, last, nil
}
