package envctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/fence"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/record"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
)

// watcher is envctl heartbeat: it renews this node's liveness every
// interval and, with SELF_FENCE=1, watches the environments this node
// holds (those attached here under a lease generation) and fences them
// itself, without any other node's help:
//
//   - at once, an environment whose lease is no longer this node's, or
//     whose owner record on its own storage names a higher generation;
//   - all of them, when no renewal has succeeded for LEASE_TTL -
//     FENCE_MARGIN (see fence.Contract), unless the witness shows that no
//     node reaches the lease store: then the store is down for everyone,
//     no takeover can happen, and nothing is stopped.
//
// Fencing an environment runs STOP_COMMAND for it, then detaches its
// storage with the unmounts forced, both within FENCE_TIMEOUT, and logs
// each step. An environment fenced for want of a renewal whose lease is
// still this node's is then released, so another node can register it
// without waiting; a lease that is no longer this node's is left alone.
type watcher struct {
	n       *Node
	lv      lease.Liveness
	c       fence.Contract
	self    bool
	witness *fence.Witness
	timeout time.Duration // one call to the lease store

	lastOK  time.Time         // the deadline counts from here: the last successful renewal's start, or this process's
	reached time.Time         // when the last successful renewal began; zero: none known
	steady  time.Time         // when the current run of renewals (none missed) began
	lapse   time.Time         // the lapse being handled; zero: none
	judged  time.Time         // when the lapse was last judged
	fenced  map[string]uint64 // fenced here: jname -> generation
	release map[string]uint64 // fenced for a lapse, to give back
	mu      sync.Mutex        // guards fenced for the sweep
}

// checkEvery is how often the watcher looks at its renewal deadline: the
// deadline is checked against the wall clock too (a paused or suspended
// node's monotonic clock may not have moved), so it cannot be a timer.
const checkEvery = 200 * time.Millisecond

type beat struct {
	start time.Time
	err   error
}

// order is one environment to fence and why.
type order struct {
	jname string
	gen   uint64
	why   string
}

func newWatcher(n *Node, lv lease.Liveness, c fence.Contract) *watcher {
	w := &watcher{n: n, lv: lv, c: c, self: n.Config.Bool(fence.SelfKey), timeout: n.Config.Seconds(lease.TimeoutKey),
		fenced: map[string]uint64{}, release: map[string]uint64{}}
	if dir := n.Config.Get(fence.WitnessKey); dir != "" {
		w.witness = &fence.Witness{Dir: dir}
	}
	w.lastOK = time.Now()
	if t, ok := w.readMark(); ok {
		// A heartbeat restarted after a crash counts from the renewal its
		// predecessor made, not from its own start.
		w.lastOK, w.reached = t, t
	}
	return w
}

func (w *watcher) run(ctx context.Context) error {
	n := w.n
	beats := make(chan beat, 1)
	beating := false
	startBeat := func() {
		if beating {
			return
		}
		beating = true
		go func(start time.Time) {
			bctx, cancel := context.WithTimeout(ctx, w.timeout)
			defer cancel()
			err := fence.Bounded(bctx, func() error { return w.lv.Beat(bctx, n.Name, w.c.TTL) })
			beats <- beat{start: start, err: err}
		}(time.Now())
	}
	orders := make(chan []order, 1)
	sweeping := false
	startSweep := func() {
		if sweeping || !w.self {
			return
		}
		sweeping = true
		go func() { orders <- w.sweep(ctx) }()
	}
	startBeat()
	startSweep()
	w.writeWitness(ctx)
	tick := time.NewTicker(w.c.Interval)
	defer tick.Stop()
	check := time.NewTicker(checkEvery)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-beats:
			beating = false
			w.renewed(ctx, b)
			// Published as soon as it is known: a node cut off from the
			// store waits for this evidence before it fences.
			w.writeWitness(ctx)
		case o := <-orders:
			sweeping = false
			w.fence(ctx, o, false)
		case <-tick.C:
			if beating {
				// The last renewal still hangs: say this node is alive.
				w.writeWitness(ctx)
			}
			startBeat()
			startSweep()
		case <-check.C:
			w.checkDeadline(ctx)
		}
	}
}

// renewed takes a renewal's result. A renewal that began after the
// deadline had passed does not undo the lapse: another node may have
// taken over meanwhile, so the lapse is handled first.
func (w *watcher) renewed(ctx context.Context, b beat) {
	n := w.n
	if b.err != nil {
		if ctx.Err() == nil {
			n.Log.Error("heartbeat of %s failed, retrying in %s (without one for LEASE_TTL %s, other nodes may take this node's environments over): %v", n.Name, w.c.Interval, w.c.TTL, b.err)
		}
		return
	}
	w.checkDeadline(ctx)
	if !b.start.After(w.lastOK) {
		return
	}
	if !w.lapse.IsZero() {
		n.Log.Action("heartbeat of %s renewed again after %s without", n.Name, w.elapsed(b.start).Round(time.Millisecond))
	}
	if w.reached.IsZero() || b.start.Sub(w.reached) > 2*w.c.Interval {
		w.steady = b.start // renewals were missed: a new run begins
	}
	w.lastOK, w.reached, w.lapse = b.start, b.start, time.Time{}
	w.writeMark()
	w.giveBack(ctx)
}

// elapsed is the time from the last successful renewal to now, by the
// monotonic and by the wall clock, whichever says more.
func (w *watcher) elapsed(now time.Time) time.Duration {
	mono := now.Sub(w.lastOK)
	wall := now.Round(0).Sub(w.lastOK.Round(0))
	return max(mono, wall)
}

// checkDeadline handles a lapse: no renewal for RenewBy.
func (w *watcher) checkDeadline(ctx context.Context) {
	now := time.Now()
	if w.elapsed(now) <= w.c.RenewBy() {
		return
	}
	n := w.n
	if w.lapse.IsZero() {
		w.lapse = now
		n.Log.Warn("%s has not renewed its lease for %s (LEASE_TTL %s - FENCE_MARGIN %s): other nodes may take its environments over after %s", n.Name, w.elapsed(now).Round(time.Millisecond), w.c.TTL, w.c.Margin, w.c.TakeoverAfter())
	} else if now.Sub(w.judged) < w.rejudgeEvery() {
		return
	}
	w.judged = now
	if !w.self {
		return
	}
	held := w.held()
	if len(held) == 0 {
		return
	}
	isolated, why := true, "no FENCE_WITNESS_DIR tells a lease store outage from a node cut off from it"
	if w.witness != nil {
		rctx, cancel := context.WithTimeout(ctx, w.c.Interval)
		records, err := w.witness.All(rctx)
		cancel()
		if err != nil {
			why = fmt.Sprintf("the witness in %s cannot be read: %v", w.witness.Dir, err)
		} else {
			// Without a renewal since it started, the heartbeat's start
			// is what others' renewals must come after to prove that
			// this node, not the store, is the one cut off.
			v := fence.Judge(records, n.Name, w.lastOK.Round(0), w.c, now.Round(0))
			isolated, why = v.Isolated, v.Why
		}
	}
	if !isolated {
		n.Log.Warn("not fencing %s: %s", strings.Join(names(held), ", "), why)
		return
	}
	for i := range held {
		held[i].why = fmt.Sprintf("no lease renewal for %s: %s", w.elapsed(now).Round(time.Millisecond), why)
	}
	w.fence(ctx, held, true)
}

// rejudgeEvery is how often a lapse the witness did not judge isolated is
// judged again: the evidence (another node's renewal, written as soon as
// it is made) may come any moment, and each look reads every node's record.
func (w *watcher) rejudgeEvery() time.Duration { return max(checkEvery, w.c.Interval/4) }

// held lists the environments attached here under a lease generation and
// not fenced yet (each with its generation).
func (w *watcher) held() []order {
	st := state.Store{Dir: w.n.Config.Get(config.StateDir)}
	paths, _ := filepath.Glob(st.Path("*"))
	var out []order
	for _, p := range paths {
		jname := strings.TrimSuffix(filepath.Base(p), ".state")
		rec, err := st.Load(jname)
		if err != nil || rec == nil || rec.Generation == 0 || (rec.Node != "" && rec.Node != w.n.Name) {
			continue
		}
		w.mu.Lock()
		done := w.fenced[jname] >= rec.Generation
		w.mu.Unlock()
		if !done {
			out = append(out, order{jname: jname, gen: rec.Generation})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].jname < out[j].jname })
	return out
}

func names(os []order) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.jname
	}
	return out
}

// sweep looks at each environment held here: its lease, and its owner
// record on its own storage. It returns those another node owns now.
func (w *watcher) sweep(ctx context.Context) []order {
	var out []order
	for _, h := range w.held() {
		cctx, cancel := context.WithTimeout(ctx, w.timeout)
		var l *lease.Lease
		err := fence.Bounded(cctx, func() error {
			var err error
			l, err = w.n.Leases.Get(cctx, h.jname)
			return err
		})
		cancel()
		switch {
		case err != nil:
			// Not an answer: the deadline decides.
		case l == nil:
			h.why = "its lease was released: this node no longer owns it"
			out = append(out, h)
			continue
		case l.Node != w.n.Name || l.Generation > h.gen:
			h.why = fmt.Sprintf("node %s owns it now (generation %d; this node attached it under %d)", l.Node, l.Generation, h.gen)
			out = append(out, h)
			continue
		}
		cctx, cancel = context.WithTimeout(ctx, w.timeout)
		o, err := fence.ReadOwner(cctx, w.n.env(h.jname, w.kind(h.jname)).Dir(environment.System))
		cancel()
		if err == nil && o != nil && o.Generation > h.gen {
			h.why = fmt.Sprintf("its owner record names node %s at generation %d (this node attached it under %d)", o.Node, o.Generation, h.gen)
			out = append(out, h)
		}
	}
	return out
}

func (w *watcher) kind(jname string) string {
	if rec, err := w.n.Inv.Load(jname); err == nil && rec != nil {
		return rec.Kind
	}
	return Jail
}

// fence stops and detaches the environments in orders, all at once and
// all within FENCE_TIMEOUT. lapsed says this node fences for want of a
// renewal: what it still owns is then released.
func (w *watcher) fence(ctx context.Context, orders []order, lapsed bool) {
	if len(orders) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, w.c.Fence)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, o := range orders {
		wg.Add(1)
		go func(o order) {
			defer wg.Done()
			if w.fenceOne(fctx, o) {
				w.mu.Lock()
				w.fenced[o.jname] = o.gen
				if lapsed {
					w.release[o.jname] = o.gen
				}
				w.mu.Unlock()
			}
		}(o)
	}
	wg.Wait()
	w.n.Log.Action("fenced %s in %s", strings.Join(names(orders), ", "), time.Since(start).Round(time.Millisecond))
	w.writeWitness(ctx)
	if lapsed {
		w.giveBack(ctx)
	}
}

// fenceOne runs STOP_COMMAND for the environment, then detaches it with
// the unmounts forced; it reports whether both succeeded.
func (w *watcher) fenceOne(ctx context.Context, o order) bool {
	n := w.n
	n.Log.Warn("fencing %s (generation %d): %s", o.jname, o.gen, o.why)
	kind := w.kind(o.jname)
	ok := true
	argv, configured := w.n.stopCommand(kind, o.jname, true)
	// Half the time is the stop's: the detach needs the rest.
	if _, err := n.runner().Run(ctx, run.Cmd{Argv: argv, Timeout: w.c.Fence / 2, Configured: configured}); err != nil {
		n.Log.Error("fencing %s: %s failed: %v", o.jname, run.Quote(argv), err)
		ok = false
	} else {
		n.Log.Action("fencing %s: stopped it (%s)", o.jname, run.Quote(argv))
	}
	s := n.session(o.jname, kind)
	s.Config = n.Config.Clone()
	_ = s.Config.Set(config.ForceUnmount, "1")
	if err := s.Stop(ctx); err != nil {
		n.Log.Error("fencing %s: detaching its storage failed: %v", o.jname, err)
		return false
	}
	n.Log.Action("fencing %s: detached its storage", o.jname)
	return ok
}

// giveBack releases the leases of environments fenced for a lapse, where
// they are still this node's at the generation it fenced: releasing
// nothing it no longer owns.
func (w *watcher) giveBack(ctx context.Context) {
	w.mu.Lock()
	pending := make(map[string]uint64, len(w.release))
	for j, g := range w.release {
		pending[j] = g
	}
	w.mu.Unlock()
	for jname, gen := range pending {
		cctx, cancel := context.WithTimeout(ctx, w.timeout)
		err := fence.Bounded(cctx, func() error {
			l, err := w.n.Leases.Get(cctx, jname)
			switch {
			case err != nil:
				return err
			case l == nil || l.Node != w.n.Name || l.Generation != gen:
				return nil
			}
			if err := w.n.Leases.Release(cctx, jname, w.n.Name); err != nil {
				return err
			}
			w.n.Log.Action("released the lease of %s (generation %d) after fencing it: another node may register it", jname, gen)
			return nil
		})
		cancel()
		if err == nil {
			w.mu.Lock()
			delete(w.release, jname)
			w.mu.Unlock()
		}
	}
}

// writeWitness writes this node's witness record.
func (w *watcher) writeWitness(ctx context.Context) {
	if w.witness == nil {
		return
	}
	w.mu.Lock()
	fenced := make(map[string]uint64, len(w.fenced))
	for j, g := range w.fenced {
		fenced[j] = g
	}
	w.mu.Unlock()
	rec := fence.Record{Node: w.n.Name, Written: time.Now().UTC(), Fenced: fenced}
	if !w.reached.IsZero() {
		rec.Reached = w.reached.Round(0).UTC()
		rec.Steady = w.steady.Round(0).UTC()
	}
	wctx, cancel := context.WithTimeout(ctx, w.c.Interval)
	defer cancel()
	if err := w.witness.Write(wctx, rec); err != nil {
		w.n.Log.Error("cannot write this node's witness record in %s: %v", w.witness.Dir, err)
	}
}

// The mark keeps the start of the last successful renewal in the run
// directory, for a heartbeat restarted after a crash. It counts only for
// the same node and the same lease store: a renewal with another store
// says nothing about this one.
type mark struct {
	Node    string    `json:"node"`
	Store   string    `json:"store"`
	Renewed time.Time `json:"renewed"`
}

// storeID names the lease store this node renews with.
func (w *watcher) storeID() string {
	cfg := w.n.Config
	return strings.Join([]string{cfg.Get(lease.BackendKey), cfg.Get(lease.DirKey), cfg.Get(lease.ServerKey), cfg.Get(lease.EtcdKey)}, " ")
}

// markCodec reads and writes the heartbeat mark (see record.Kind).
var markCodec = record.Kind{Format: "envhooks-heartbeat-mark 1", What: "heartbeat mark", Max: 4096, Unversioned: true}

func markPath() string { return filepath.Join(quick.Dir(), "heartbeat.json") }

func (w *watcher) readMark() (time.Time, bool) {
	var m mark
	found, err := markCodec.Read(markPath(), &m)
	if !found || err != nil || m.Node != w.n.Name || m.Store != w.storeID() || m.Renewed.IsZero() || m.Renewed.After(time.Now()) {
		return time.Time{}, false
	}
	return m.Renewed, true
}

func (w *watcher) writeMark() {
	if err := os.MkdirAll(quick.Dir(), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		w.n.Log.Debug("heartbeat mark: %v", err)
		return
	}
	if err := markCodec.Write(markPath(), mark{Node: w.n.Name, Store: w.storeID(), Renewed: w.lastOK.Round(0).UTC()}, 0o644); err != nil {
		w.n.Log.Debug("heartbeat mark: %v", err)
	}
}
