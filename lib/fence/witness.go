package fence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/record"
)

// Witness keeps one record per node in a directory on the shared storage
// (FENCE_WITNESS_DIR), written by each node's heartbeat every interval:
// when it wrote (so others see it is alive on the storage), when it last
// reached the lease store, and which environments it fenced itself out of.
// It is a second channel beside the lease store:
//
//   - a holder that cannot renew fences itself only when another node,
//     alive on the storage, reached the store after it last did: the
//     holder is cut off, not the store down for everyone (Judge);
//   - a takeover waits for the holder's record to go stale, or to say the
//     holder fenced itself (Step), so a holder that sits out a store
//     outage is never taken over behind its back.
type Witness struct {
	Dir string
}

// Record is one node's witness record.
type Record struct {
	Node    string    `json:"node"`
	Written time.Time `json:"written"` // the writer's clock
	// Reached is when the node's last successful renewal began (zero:
	// never since it started).
	Reached time.Time `json:"reached"`
	// Steady is when the node's current run of renewals began, each
	// within two intervals of the one before (zero: not known). A node
	// that reached the store only since an outage ended proves nothing
	// about another node that has not reached it yet.
	Steady time.Time `json:"steady,omitempty"`
	// Fenced lists the environments the node fenced itself out of, with
	// the lease generation it held.
	Fenced map[string]uint64 `json:"fenced,omitempty"`
}

// witnessCodec reads and writes witness records (see record.Kind).
var witnessCodec = record.Kind{Format: "envhooks-witness 1", What: "witness record", Max: 64 << 10, Unversioned: true}

func (w *Witness) path(node string) string { return filepath.Join(w.Dir, node+".json") }

// Write writes node's record.
func (w *Witness) Write(ctx context.Context, r Record) error {
	return Bounded(ctx, func() error { return writeRecord(witnessCodec, w.path(r.Node), r) })
}

// Read returns node's record, nil when it has none.
func (w *Witness) Read(ctx context.Context, node string) (*Record, error) {
	var out *Record
	err := Bounded(ctx, func() error {
		var r Record
		found, err := witnessCodec.Read(w.path(node), &r)
		if found && err == nil {
			out = &r
		}
		return err
	})
	return out, err
}

// All returns every node's record.
func (w *Witness) All(ctx context.Context) ([]Record, error) {
	var names []string
	err := Bounded(ctx, func() error {
		entries, err := os.ReadDir(w.Dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		for _, e := range entries {
			if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(n, ".") {
				names = append(names, n)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Record
	for _, n := range names {
		r, err := w.Read(ctx, n)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

// Verdict is what a holder that cannot renew concludes from the witness.
type Verdict struct {
	Isolated bool   // fence: another node reaches the store, this one does not
	Why      string // for the log
}

// Judge decides, for node whose last renewal began at reached, whether it
// is cut off from the lease store (another node, alive on the storage,
// reached the store more than an interval and the clock skew after it
// did, and had been reaching it steadily since then) or the store is down
// for everyone (nobody did; or those who did only came back after an
// outage, which this node may still be reconnecting from). Records not
// written within fresh are of nodes that are gone: they prove nothing.
func Judge(records []Record, node string, reached time.Time, c Contract, now time.Time) Verdict {
	fresh := c.TakeoverAfter()
	var alive []string
	for _, r := range records {
		if r.Node == node || now.Sub(r.Written) > fresh {
			continue
		}
		after := reached.Add(c.Interval + c.Skew)
		if r.Reached.After(after) && (r.Steady.IsZero() || !r.Steady.After(after)) {
			return Verdict{Isolated: true, Why: fmt.Sprintf("node %s reached the lease store at %s, after this node last did (%s)", r.Node, r.Reached.UTC().Format(time.RFC3339), stamp(reached))}
		}
		alive = append(alive, r.Node)
	}
	if len(alive) == 0 {
		return Verdict{Why: "no other node is alive on the shared storage to say whether the lease store answers anyone"}
	}
	return Verdict{Why: fmt.Sprintf("no node reached the lease store since this one last did (alive on the shared storage: %s): the store is down for everyone", strings.Join(alive, ", "))}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never since its heartbeat started"
	}
	return t.UTC().Format(time.RFC3339)
}
