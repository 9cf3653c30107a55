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
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
//
// The same transaction that creates or deletes a lease creates or deletes
// <prefix>/.owner/<node>/<jname> (empty): an index by owner, so a node's
// leases are found without reading everyone's. <prefix>/.layout says every
// lease has its index entry; until an Upgrade has written it (leases
// written by an older envctl have none), HeldBy reads every lease instead.
//
// Heartbeats are keys <prefix>/.nodes/<node> attached to an etcd lease with
// the TTL, kept alive by envctl heartbeat; etcd deletes them when the node
// stops renewing, by the cluster's clock, not the nodes'. A renewal is a
// keepalive only: it writes nothing to the database, so heartbeats neither
// grow etcd's history nor cost a disk write. <prefix>/.seen/<node>, written
// when a node's etcd lease is granted, says that the node sent a heartbeat
// once. jnames start with a letter or digit, so every key of the store's
// own sorts before the leases.
type Store struct {
	Prefix  string
	Timeout time.Duration
	// PageSize is how many keys one range read returns at most; a longer
	// listing reads page after page at one revision.
	PageSize  int64
	client    *clientv3.Client
	ownClient bool

	mu      sync.Mutex
	beatID  clientv3.LeaseID
	beatTTL time.Duration

	indexed atomic.Bool // .layout seen
}

// DefaultPageSize keeps each reply of a listing near 100 KiB, so a listing
// of 100,000 leases never holds up the cluster's other requests.
const DefaultPageSize = 1000

// layoutIndexed is the value of <prefix>/.layout once every lease has its
// index entry.
const layoutIndexed = "owner-index"

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
	s := Over(c, prefix, timeout)
	s.ownClient = true
	return s, nil
}

// Over returns a store that uses c, a client the caller keeps and closes:
// for programs that act as many nodes over a few connections (the scale
// benchmark).
func Over(c *clientv3.Client, prefix string, timeout time.Duration) *Store {
	return &Store{Prefix: path.Clean("/" + prefix), Timeout: timeout, PageSize: DefaultPageSize, client: c}
}

// Close closes the connections, if the store made them.
func (e *Store) Close() error {
	if !e.ownClient {
		return nil
	}
	return e.client.Close()
}

func (e *Store) key(jname string) string    { return e.Prefix + "/" + jname }
func (e *Store) beatKey(node string) string { return e.Prefix + "/.nodes/" + node }
func (e *Store) seenKey(node string) string { return e.Prefix + "/.seen/" + node }
func (e *Store) ownerKey(node, jname string) string {
	return e.Prefix + "/.owner/" + node + "/" + jname
}
func (e *Store) layoutKey() string { return e.Prefix + "/.layout" }

// leaseRange is where the leases are: from the smallest first character a
// jname may have ('0') to the end of the prefix.
func (e *Store) leaseRange() (from, end string) {
	return e.Prefix + "/0", clientv3.GetPrefixRangeEnd(e.Prefix + "/")
}
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

// etcdCodec is the lease codec without the file drivers' key=value
// lines: etcd's values were JSON from the start, so such a value is damage.
var etcdCodec = lease.Codec

func init() { etcdCodec.Legacy = nil }

// decode reads a lease key's value with the one lease codec; a value that
// does not decode is a damaged record named by its key (65), never quoted.
func (e *Store) decode(jname string, value []byte, createRev int64) (*lease.Lease, error) {
	var l lease.Lease
	err := etcdCodec.Decode(value, &l)
	if err == nil && l.Node == "" {
		err = errors.New("it names no node")
	}
	if err != nil {
		return nil, etcdCodec.Damaged("etcd key "+e.key(jname), err)
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
		Then(clientv3.OpPut(k, string(value)), clientv3.OpPut(e.ownerKey(node, jname), "")).
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

// deleteIf removes the lease, and holder's index entry with it, only if it
// is still the one at generation gen.
func (e *Store) deleteIf(ctx context.Context, jname, holder string, gen uint64) (bool, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	k := e.key(jname)
	resp, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", int64(gen))).
		Then(clientv3.OpDelete(k), clientv3.OpDelete(e.ownerKey(holder, jname))).
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
	if ok, err := e.deleteIf(ctx, jname, cur.Node, cur.Generation); err != nil || ok {
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
		if _, err := e.deleteIf(ctx, jname, cur.Node, cur.Generation); err != nil {
			return nil, err
		}
	}
	return e.Acquire(ctx, jname, node)
}

// List reads every lease, a page at a time, all pages at the revision of
// the first, so the listing is one consistent picture of the cluster.
func (e *Store) List(ctx context.Context) ([]lease.Lease, error) {
	var out []lease.Lease
	from, end := e.leaseRange()
	err := e.scan(ctx, from, end, false, func() { out = out[:0] }, func(kv *mvccpb.KeyValue) {
		jname := strings.TrimPrefix(string(kv.Key), e.Prefix+"/")
		if strings.Contains(jname, "/") {
			return // not one of ours
		}
		if l, err := e.decode(jname, kv.Value, kv.CreateRevision); err == nil {
			out = append(out, *l)
		}
	})
	if err != nil {
		return nil, e.unavailable("list", "every environment", err)
	}
	return out, nil
}

// scan calls fn for every key in [from, end), in key order, a page of
// PageSize keys at a time, each request under the store's timeout, all at
// the revision of the first. A history compacted between two pages starts
// the scan again, at most three times: start runs before every pass, so
// the caller can drop what an abandoned pass gave it.
func (e *Store) scan(ctx context.Context, from, end string, keysOnly bool, start func(), fn func(*mvccpb.KeyValue)) error {
	page := e.PageSize
	if page <= 0 {
		page = DefaultPageSize
	}
	for attempt := 0; ; attempt++ {
		start()
		var rev int64
		next := from
		err := func() error {
			for {
				opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(page), clientv3.WithRev(rev)}
				if keysOnly {
					opts = append(opts, clientv3.WithKeysOnly())
				}
				pctx, cancel := e.bounded(ctx)
				resp, err := e.client.Get(pctx, next, opts...)
				cancel()
				if err != nil {
					return err
				}
				if rev == 0 {
					rev = resp.Header.Revision
				}
				for _, kv := range resp.Kvs {
					fn(kv)
				}
				if !resp.More || len(resp.Kvs) == 0 {
					return nil
				}
				next = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
			}
		}()
		if errors.Is(err, rpctypes.ErrCompacted) && attempt < 3 {
			continue
		}
		return err
	}
}

// HeldBy finds node's leases through the index by owner, then reads those
// leases (a hundred per transaction) and keeps the ones node still holds:
// an entry left by an older envctl's release is never taken for a lease.
// Before the index is complete (see Upgrade) it reads every lease.
func (e *Store) HeldBy(ctx context.Context, node string) ([]lease.Lease, error) {
	ok, err := e.isIndexed(ctx)
	if err != nil {
		return nil, e.unavailable("list", "the leases of "+node, err)
	}
	if !ok {
		all, err := e.List(ctx)
		if err != nil {
			return nil, err
		}
		var out []lease.Lease
		for _, l := range all {
			if l.Node == node {
				out = append(out, l)
			}
		}
		return out, nil
	}
	base := e.ownerKey(node, "")
	var jnames []string
	err = e.scan(ctx, base, clientv3.GetPrefixRangeEnd(base), true, func() { jnames = jnames[:0] }, func(kv *mvccpb.KeyValue) {
		if j := strings.TrimPrefix(string(kv.Key), base); !strings.Contains(j, "/") {
			jnames = append(jnames, j)
		}
	})
	if err != nil {
		return nil, e.unavailable("list", "the leases of "+node, err)
	}
	out := make([]lease.Lease, 0, len(jnames))
	err = e.each(ctx, jnames, func(l *lease.Lease, bad error) {
		if bad == nil && l.Node == node {
			out = append(out, *l)
		}
	})
	if err != nil {
		return nil, e.unavailable("list", "the leases of "+node, err)
	}
	return out, nil
}

// txnOps stays below etcd's default limit of 128 operations per
// transaction (--max-txn-ops).
const txnOps = 100

// GetMany reads the leases of jnames, a hundred per transaction.
func (e *Store) GetMany(ctx context.Context, jnames []string) (map[string]*lease.Lease, error) {
	out := make(map[string]*lease.Lease, len(jnames))
	var damaged error
	err := e.each(ctx, jnames, func(l *lease.Lease, bad error) {
		if bad != nil && damaged == nil {
			damaged = bad
		}
		if bad == nil {
			out[l.JName] = l
		}
	})
	if err != nil {
		return nil, e.unavailable("read", fmt.Sprintf("%d environments", len(jnames)), err)
	}
	return out, damaged
}

// each reads the leases of jnames, txnOps per transaction, and calls fn
// for each that exists, with the error of a damaged one.
func (e *Store) each(ctx context.Context, jnames []string, fn func(l *lease.Lease, damaged error)) error {
	for len(jnames) > 0 {
		chunk := jnames[:min(txnOps, len(jnames))]
		jnames = jnames[len(chunk):]
		ops := make([]clientv3.Op, len(chunk))
		for i, j := range chunk {
			ops[i] = clientv3.OpGet(e.key(j))
		}
		tctx, cancel := e.bounded(ctx)
		resp, err := e.client.Txn(tctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return err
		}
		for i, r := range resp.Responses {
			if kvs := r.GetResponseRange().Kvs; len(kvs) > 0 {
				fn(e.decode(chunk[i], kvs[0].Value, kvs[0].CreateRevision))
			}
		}
	}
	return nil
}

func (e *Store) isIndexed(ctx context.Context) (bool, error) {
	if e.indexed.Load() {
		return true, nil
	}
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	resp, err := e.client.Get(ctx, e.layoutKey())
	if err != nil {
		return false, err
	}
	ok := len(resp.Kvs) > 0 && string(resp.Kvs[0].Value) == layoutIndexed
	e.indexed.Store(ok)
	return ok, nil
}

// Upgrade gives every lease its index entry, then records that the index
// is complete. Leases written by an envctl from before the index have
// none, and it writes none while a live node's heartbeat says that node
// runs such an envctl (an *OlderNodesError). One node does it for the
// cluster: it holds <prefix>/.upgrading,
// attached to an etcd lease, while it works, and any other node that
// finds the key held leaves the work to it (if it dies, the key expires
// and the next Upgrade starts over). Each batch of entries is written only
// if its leases are still the ones read (compared on their create
// revisions); a lease that changed hands in between is read again and
// indexed alone. Entries already there are not written again. Once .layout
// is written, Upgrade is one read.
func (e *Store) Upgrade(ctx context.Context) error {
	fail := func(err error) error { return e.unavailable("upgrade", "the lease index", err) }
	if ok, err := e.isIndexed(ctx); err != nil || ok {
		if err != nil {
			return fail(err)
		}
		return nil
	}
	bctx, cancel := e.bounded(ctx)
	g, err := e.client.Grant(bctx, int64(upgradeClaim/time.Second))
	cancel()
	if err != nil {
		return fail(err)
	}
	defer func() {
		rctx, cancel := e.bounded(context.WithoutCancel(ctx))
		_, _ = e.client.Revoke(rctx, g.ID) // best effort: the claim expires after upgradeClaim anyway
		cancel()
	}()
	claim := e.Prefix + "/.upgrading"
	bctx, cancel = e.bounded(ctx)
	resp, err := e.client.Txn(bctx).
		If(clientv3.Compare(clientv3.CreateRevision(claim), "=", 0)).
		Then(clientv3.OpPut(claim, "", clientv3.WithLease(g.ID))).
		Commit()
	cancel()
	if err != nil {
		return fail(err)
	}
	if !resp.Succeeded {
		return nil // another node is at it
	}
	// A live node whose envctl is older than the index would write leases
	// without entries after .layout: wait until every node runs this one
	// (the next envctl heartbeat to start asks again).
	bctx, cancel = e.bounded(ctx)
	beats, err := e.client.Get(bctx, e.beatKey(""), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return fail(err)
	}
	var older []string
	for _, kv := range beats.Kvs {
		if string(kv.Value) != layoutIndexed {
			older = append(older, strings.TrimPrefix(string(kv.Key), e.beatKey("")))
		}
	}
	if len(older) > 0 {
		return &OlderNodesError{Nodes: older}
	}
	kctx, stop := context.WithCancel(ctx)
	defer stop()
	alive, err := e.client.KeepAlive(kctx, g.ID)
	if err != nil {
		return fail(err)
	}
	go func() {
		for range alive {
		}
	}()
	owners := e.Prefix + "/.owner/"
	entries := map[string]bool{}
	err = e.scan(ctx, owners, clientv3.GetPrefixRangeEnd(owners), true, func() { clear(entries) }, func(kv *mvccpb.KeyValue) {
		entries[strings.TrimPrefix(string(kv.Key), owners)] = true
	})
	if err != nil {
		return fail(err)
	}
	all, err := e.List(ctx)
	if err != nil {
		return err
	}
	var missing []lease.Lease
	for _, l := range all {
		if !entries[l.Node+"/"+l.JName] {
			missing = append(missing, l)
		}
	}
	for len(missing) > 0 {
		chunk := missing[:min(txnOps, len(missing))]
		missing = missing[len(chunk):]
		var cmps []clientv3.Cmp
		var puts []clientv3.Op
		for _, l := range chunk {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(e.key(l.JName)), "=", int64(l.Generation)))
			puts = append(puts, clientv3.OpPut(e.ownerKey(l.Node, l.JName), ""))
		}
		tctx, cancel := e.bounded(ctx)
		resp, err := e.client.Txn(tctx).If(cmps...).Then(puts...).Commit()
		cancel()
		if err != nil {
			return fail(err)
		}
		if !resp.Succeeded {
			for _, l := range chunk {
				if err := e.indexOne(ctx, l.JName); err != nil {
					return fail(err)
				}
			}
		}
	}
	bctx, cancel = e.bounded(ctx)
	defer cancel()
	if _, err := e.client.Put(bctx, e.layoutKey(), layoutIndexed); err != nil {
		return fail(err)
	}
	e.indexed.Store(true)
	return nil
}

// OlderNodesError says Upgrade waits for live nodes that run an envctl
// from before the index.
type OlderNodesError struct{ Nodes []string }

func (e *OlderNodesError) Error() string {
	return fmt.Sprintf("the etcd lease index is not complete until every node runs this envctl: %s still beat with an older one; the next envctl heartbeat to start after they are upgraded completes it", strings.Join(e.Nodes, ", "))
}

// upgradeClaim is how long a node that died while upgrading keeps others
// from starting over.
const upgradeClaim = time.Minute

// indexOne writes the index entry of jname's current lease, if it has one.
func (e *Store) indexOne(ctx context.Context, jname string) error {
	for {
		l, err := e.Get(ctx, jname)
		if err != nil || l == nil {
			return err
		}
		tctx, cancel := e.bounded(ctx)
		resp, err := e.client.Txn(tctx).
			If(clientv3.Compare(clientv3.CreateRevision(e.key(jname)), "=", int64(l.Generation))).
			Then(clientv3.OpPut(e.ownerKey(l.Node, jname), "")).
			Commit()
		cancel()
		if err != nil || resp.Succeeded {
			return err
		}
	}
}

// Beat keeps this node's heartbeat key alive: the first beat (and the first
// after etcd forgot the lease, e.g. after a long partition) grants an etcd
// lease with the TTL and writes the key; later beats only renew the etcd
// lease, which writes nothing.
func (e *Store) Beat(ctx context.Context, node string, ttl time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	if e.beatID != 0 && e.beatTTL == ttl {
		_, err := e.client.KeepAliveOnce(ctx, e.beatID)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
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
		// The value says which layout this node's envctl writes, so
		// that Upgrade can tell when no live node writes an older one.
		clientv3.OpPut(e.beatKey(node), layoutIndexed, clientv3.WithLease(g.ID)),
		clientv3.OpPut(e.seenKey(node), now),
	).Commit(); err != nil {
		return e.unavailable("heartbeat", node, err)
	}
	e.beatID, e.beatTTL = g.ID, ttl
	return nil
}

// Alive asks etcd whether node's heartbeat key still exists. The ttl is the
// one the node itself beats with; etcd enforces it. For a live node, the
// time of its last renewal comes from its etcd lease's remaining time.
func (e *Store) Alive(ctx context.Context, node string, _ time.Duration) (bool, bool, time.Time, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	resp, err := e.client.Txn(ctx).Then(clientv3.OpGet(e.beatKey(node)), clientv3.OpGet(e.seenKey(node))).Commit()
	if err != nil {
		return false, false, time.Time{}, e.unavailable("heartbeat check", node, err)
	}
	beat := resp.Responses[0].GetResponseRange().Kvs
	seen := resp.Responses[1].GetResponseRange().Kvs
	if len(beat) == 0 {
		return false, len(seen) > 0, time.Time{}, nil
	}
	last := time.Now()
	if ttl, err := e.client.TimeToLive(ctx, clientv3.LeaseID(beat[0].Lease)); err == nil && ttl.TTL >= 0 {
		last = last.Add(-time.Duration(ttl.GrantedTTL-ttl.TTL) * time.Second)
	}
	return true, true, last, nil
}

// Nodes reads every node's heartbeat state in one transaction: the live
// heartbeat keys and the keys of every node that ever beat, names only.
func (e *Store) Nodes(ctx context.Context, _ time.Duration) (map[string]lease.NodeState, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	beats, seen := e.beatKey(""), e.seenKey("")
	resp, err := e.client.Txn(ctx).Then(
		clientv3.OpGet(beats, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(seen, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return nil, e.unavailable("heartbeat check", "every node", err)
	}
	out := map[string]lease.NodeState{}
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		out[strings.TrimPrefix(string(kv.Key), seen)] = lease.NodeState{Known: true}
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		out[strings.TrimPrefix(string(kv.Key), beats)] = lease.NodeState{Alive: true, Known: true}
	}
	return out, nil
}

// AwaitExpiry watches node's heartbeat key from the revision it was read
// at and returns when etcd deletes it. The watch requires a leader, so a
// member cut off from the cluster ends it with an error instead of
// leaving the caller waiting on a key that can no longer change.
func (e *Store) AwaitExpiry(ctx context.Context, node string) error {
	gctx, cancel := e.bounded(ctx)
	resp, err := e.client.Get(gctx, e.beatKey(node))
	cancel()
	if err != nil {
		return e.unavailable("heartbeat watch", node, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	wctx, stop := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer stop()
	for wr := range e.client.Watch(wctx, e.beatKey(node), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithFilterPut()) {
		if err := wr.Err(); err != nil {
			return e.unavailable("heartbeat watch", node, err)
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return e.unavailable("heartbeat watch", node, errors.New("the watch ended"))
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
