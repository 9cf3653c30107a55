package lease

import (
	"context"
	"time"
)

// What the cluster-wide operations (envctl lease list, taking over a dead
// node's environments) need from a store. A store that can answer a
// question in one read, or wait for an answer without asking again and
// again, says so by implementing one of these interfaces; for the others
// the functions below fall back to what every store offers, so every
// driver gives the same answers, only at different costs.

// Holdings is a store that finds one node's leases without reading every
// lease (an index by owner).
type Holdings interface {
	HeldBy(ctx context.Context, node string) ([]Lease, error)
}

// NodeState is what a store knows about one node's heartbeat.
type NodeState struct {
	Alive bool // renewed within the TTL
	Known bool // it sent a heartbeat once
}

// Census is a store that reads every node's heartbeat state at once.
type Census interface {
	Nodes(ctx context.Context, ttl time.Duration) (map[string]NodeState, error)
}

// ExpiryWatcher is a store that is told when a node's heartbeat expires,
// instead of asking.
type ExpiryWatcher interface {
	// AwaitExpiry returns nil once node's heartbeat is gone (at once when
	// there is none), or an error when ctx ends or the watch fails.
	AwaitExpiry(ctx context.Context, node string) error
}

// HeldBy returns the leases node holds, sorted by jname: through the
// store's index when it has one, else by reading every lease.
func HeldBy(ctx context.Context, s Store, node string) ([]Lease, error) {
	if h, ok := s.(Holdings); ok {
		return h.HeldBy(ctx, node)
	}
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []Lease
	for _, l := range all {
		if l.Node == node {
			out = append(out, l)
		}
	}
	return out, nil
}

// Nodes returns the heartbeat state of each of nodes (and, from a Census
// store, of every other node it knows): in one read where the store
// allows, else one read per node. A store without heartbeats answers nil.
func Nodes(ctx context.Context, s Store, nodes []string, ttl time.Duration) (map[string]NodeState, error) {
	if c, ok := s.(Census); ok {
		return c.Nodes(ctx, ttl)
	}
	lv, ok := s.(Liveness)
	if !ok {
		return nil, nil
	}
	out := map[string]NodeState{}
	for _, n := range nodes {
		if _, done := out[n]; done || n == OrphanNode {
			continue
		}
		alive, known, _, err := lv.Alive(ctx, n, ttl)
		if err != nil {
			return nil, err
		}
		out[n] = NodeState{Alive: alive, Known: known}
	}
	return out, nil
}

// AwaitExpiry returns once node's heartbeat is older than ttl (at once
// when it never sent one: whether that allows a takeover is
// TakeoverExpired's question), or with ctx's error. A store that can watch
// is watched; another is asked every ttl/20 (at least every 50 ms, at most
// every second).
func AwaitExpiry(ctx context.Context, lv Liveness, node string, ttl time.Duration) error {
	step := min(max(ttl/20, 50*time.Millisecond), time.Second)
	w, watching := lv.(ExpiryWatcher)
	for {
		if watching {
			if err := w.AwaitExpiry(ctx, node); err == nil || ctx.Err() != nil {
				return err
			}
			// The watch broke (a member lost its leader, the history
			// was compacted): look once, then watch again.
		}
		alive, _, _, err := lv.Alive(ctx, node, ttl)
		if err == nil && !alive {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
	}
}

// Upgrader is a store whose records written by an older envctl lack
// something newer ones have (an index). Upgrade adds it to every record,
// once for the whole cluster: after the first run it costs one read.
// envctl heartbeat runs it when it starts.
type Upgrader interface {
	Upgrade(ctx context.Context) error
}

// Batch is a store that reads many leases in few requests.
type Batch interface {
	GetMany(ctx context.Context, jnames []string) (map[string]*Lease, error)
}

// GetMany returns the lease of each of jnames that has one: in batches
// where the store allows (etcd: a hundred per request), else one by one.
func GetMany(ctx context.Context, s Store, jnames []string) (map[string]*Lease, error) {
	if b, ok := s.(Batch); ok {
		return b.GetMany(ctx, jnames)
	}
	out := map[string]*Lease{}
	for _, j := range jnames {
		l, err := s.Get(ctx, j)
		if err != nil {
			return nil, err
		}
		if l != nil {
			out[j] = l
		}
	}
	return out, nil
}
