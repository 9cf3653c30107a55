// Package etcdlease keeps ownership leases in an etcd cluster. It is a
// package of its own so that only envctl links the etcd client (gRPC):
// the hooks read an etcd lease through envctl instead (see lib/lease).
package etcdlease

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Store keeps leases in an etcd cluster. A lease is the key
// <prefix>/<jname>, created in a transaction that succeeds only while the
// key does not exist (its create revision is 0): the cluster's consensus
// picks exactly one winner among any number of nodes. The key's create
// revision is the generation: etcd's revision grows with every write in the
// cluster, so each new owner gets a larger number than every owner before.
// Heartbeats are keys <prefix>/.nodes/<node> attached to an etcd lease with
// the TTL, kept alive by envctl heartbeat; etcd deletes them when the node
// stops renewing, by the cluster's clock, not the nodes'.
type Store struct {
	Prefix  string
	Timeout time.Duration
	client  *clientv3.Client

	mu      sync.Mutex
	beatID  clientv3.LeaseID
	beatTTL time.Duration
}

// New connects (lazily: the first call dials) to the cluster.
func New(endpoints []string, prefix string, timeout time.Duration) (*Store, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          timeout,
		DialKeepAliveTime:    timeout,
		DialKeepAliveTimeout: timeout,
		// The client's own logging would go to stderr, which is for
		// the hooks' one-line verdict; errors come back as values.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, sysexits.New(sysexits.Unavailable, "cannot use the etcd cluster at %s: %v", strings.Join(endpoints, ","), err)
	}
	return &Store{Prefix: path.Clean("/" + prefix), Timeout: timeout, client: c}, nil
}

// Close closes the connections.
func (e *Store) Close() error { return e.client.Close() }

func (e *Store) key(jname string) string    { return e.Prefix + "/" + jname }
func (e *Store) beatKey(node string) string { return e.Prefix + "/.nodes/" + node }
func (e *Store) seenKey(node string) string { return e.Prefix + "/.seen/" + node }
func (e *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.Timeout)
}

// record is the value of a lease key; the generation is not in it but in
// the key's create revision.
type record struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

func (e *Store) unavailable(op, jname string, err error) error {
	return sysexits.New(sysexits.Unavailable, "etcd lease store: %s of %s failed: %v", op, jname, err)
}

// decode reads a lease key's value with the one lease codec; a value that
// does not decode is a damaged record named by its key (65), never quoted.
func (e *Store) decode(jname string, value []byte, createRev int64) (*lease.Lease, error) {
	var l lease.Lease
	err := lease.Codec.Decode(value, &l)
	if err == nil && l.Node == "" {
		err = errors.New("it names no node")
	}
	if err != nil {
		return nil, lease.Codec.Damaged("etcd key "+e.key(jname), err)
	}
	return &lease.Lease{JName: jname, Node: l.Node, Since: l.Since, Generation: uint64(createRev)}, nil
}

func (e *Store) Get(ctx context.Context, jname string) (*lease.Lease, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	resp, err := e.client.Get(ctx, e.key(jname))
	if err != nil {
		return nil, e.unavailable("read", jname, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	kv := resp.Kvs[0]
	return e.decode(jname, kv.Value, kv.CreateRevision)
}

func (e *Store) Acquire(ctx context.Context, jname, node string) (*lease.Lease, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	now := time.Now().UTC().Truncate(time.Second)
	value, _ := lease.Codec.Encode(record{Node: node, Since: now}) // a record always encodes
	k := e.key(jname)
	resp, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(value))).
		Else(clientv3.OpGet(k)).
		Commit()
	if err != nil {
		return nil, e.unavailable("acquire", jname, err)
	}
	if resp.Succeeded {
		return &lease.Lease{JName: jname, Node: node, Since: now, Generation: uint64(resp.Header.Revision)}, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, sysexits.New(sysexits.TempFail, "the lease of %s changed hands while it was being acquired: try again", jname)
	}
	cur, err := e.decode(jname, kvs[0].Value, kvs[0].CreateRevision)
	if err != nil {
		return nil, err
	}
	if cur.Node == node {
		return cur, nil
	}
	return nil, sysexits.Wrap(sysexits.NoPerm, &lease.HeldError{Lease: *cur})
}

// deleteIf removes the lease only if it is still the one at generation gen.
func (e *Store) deleteIf(ctx context.Context, jname string, gen uint64) (bool, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	k := e.key(jname)
	resp, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", int64(gen))).
		Then(clientv3.OpDelete(k)).
		Commit()
	if err != nil {
		return false, e.unavailable("release", jname, err)
	}
	return resp.Succeeded, nil
}

func (e *Store) Release(ctx context.Context, jname, node string) error {
	cur, err := e.Get(ctx, jname)
	if err != nil || cur == nil {
		return err
	}
	if cur.Node != node {
		return sysexits.Wrap(sysexits.NoPerm, &lease.HeldError{Lease: *cur})
	}
	if ok, err := e.deleteIf(ctx, jname, cur.Generation); err != nil || ok {
		return err
	}
	// It changed between the read and the delete: whoever has it now.
	return e.Release(ctx, jname, node)
}

func (e *Store) Takeover(ctx context.Context, jname, node, from string) (*lease.Lease, error) {
	cur, err := e.Get(ctx, jname)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.Node != node {
		if cur.Node != from {
			return nil, sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("refusing the takeover: %s is held by %s, not by %s as you said", jname, cur.Node, from))
		}
		// Delete exactly the lease we looked at (compare-and-delete on
		// its create revision), then race for it like anyone else.
		if _, err := e.deleteIf(ctx, jname, cur.Generation); err != nil {
			return nil, err
		}
	}
	return e.Acquire(ctx, jname, node)
}

func (e *Store) List(ctx context.Context) ([]lease.Lease, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	resp, err := e.client.Get(ctx, e.Prefix+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, e.unavailable("list", "every environment", err)
	}
	var out []lease.Lease
	for _, kv := range resp.Kvs {
		jname := strings.TrimPrefix(string(kv.Key), e.Prefix+"/")
		if strings.ContainsAny(jname, "/") || strings.HasPrefix(jname, ".") {
			continue
		}
		if l, err := e.decode(jname, kv.Value, kv.CreateRevision); err == nil {
			out = append(out, *l)
		}
	}
	return out, nil
}

// Beat keeps this node's heartbeat key alive: the first beat (and the first
// after etcd forgot the lease, e.g. after a long partition) grants an etcd
// lease with the TTL and writes the key; later beats renew it.
func (e *Store) Beat(ctx context.Context, node string, ttl time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	if e.beatID != 0 && e.beatTTL == ttl {
		if _, err := e.client.KeepAliveOnce(ctx, e.beatID); err == nil {
			// Only for people reading lease list: etcd, not this
			// time, decides whether the node is alive.
			_, err := e.client.Put(ctx, e.seenKey(node), time.Now().UTC().Format(time.RFC3339Nano))
			if err != nil {
				return e.unavailable("heartbeat", node, err)
			}
			return nil
		} else if ctx.Err() != nil {
			return e.unavailable("heartbeat", node, err)
		}
		e.beatID = 0 // expired: grant a new one
	}
	g, err := e.client.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return e.unavailable("heartbeat", node, err)
	}
	now := string(lease.BeatRecord(time.Now()))
	if _, err := e.client.Txn(ctx).Then(
		clientv3.OpPut(e.beatKey(node), now, clientv3.WithLease(g.ID)),
		clientv3.OpPut(e.seenKey(node), now),
	).Commit(); err != nil {
		return e.unavailable("heartbeat", node, err)
	}
	e.beatID, e.beatTTL = g.ID, ttl
	return nil
}

// Alive asks etcd whether node's heartbeat key still exists. The ttl is the
// one the node itself beats with; etcd enforces it.
func (e *Store) Alive(ctx context.Context, node string, _ time.Duration) (bool, bool, time.Time, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	resp, err := e.client.Txn(ctx).Then(clientv3.OpGet(e.beatKey(node)), clientv3.OpGet(e.seenKey(node))).Commit()
	if err != nil {
		return false, false, time.Time{}, e.unavailable("heartbeat check", node, err)
	}
	beat := resp.Responses[0].GetResponseRange().Kvs
	seen := resp.Responses[1].GetResponseRange().Kvs
	var last time.Time
	if len(seen) > 0 {
		last, _ = lease.ParseBeat(seen[0].Value) // a damaged one says only that it was seen
	}
	return len(beat) > 0, len(seen) > 0, last, nil
}

func init() {
	lease.Register("etcd", func(cfg *config.Config, dir string, timeout time.Duration) (lease.Store, error) {
		eps := lease.Endpoints(cfg)
		if len(eps) == 0 {
			return nil, cfg.Errorf(lease.BackendKey, "etcd leases need ETCD_ENDPOINTS")
		}
		return New(eps, dir, timeout)
	})
}
