// Package history keeps every change of an environment's owner (register,
// unregister, takeover, move, failover, rollback) in the lease store, for
// envctl history. Each event is a record of its own, named by its time, so
// nodes append concurrently without reading or rewriting anything; the
// oldest beyond HISTORY_KEEP are removed.
package history

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/lease"
)

// KeepKey bounds each environment's history.
var KeepKey = config.Define(config.Key{Name: "HISTORY_KEEP", Default: "200", Doc: "how many ownership changes envctl history keeps per environment (the oldest go)", Check: config.IsSeconds})

// Event is one change of owner.
type Event struct {
	Time       time.Time `json:"time"`
	JName      string    `json:"jname"`
	Event      string    `json:"event"`          // register, unregister, takeover, move, drain, failover, rollback, abandon, relocate, restart
	Kind       string    `json:"kind,omitempty"` // jail, vm, container
	Node       string    `json:"node,omitempty"` // the owner after it ("" when nobody owns it)
	From       string    `json:"from,omitempty"` // the owner before it
	Generation uint64    `json:"generation,omitempty"`
	By         string    `json:"by"` // the node that recorded it
	Note       string    `json:"note,omitempty"`
}

func kindOf(jname string) string { return "history/" + jname }

// Append records ev and drops the oldest events beyond keep.
func Append(ctx context.Context, r lease.Records, ev Event, keep int) error {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := fmt.Sprintf("%020d-%s-%s", ev.Time.UnixNano(), ev.By, hex.EncodeToString(suffix))
	if err := lease.PutJSON(ctx, r, kindOf(ev.JName), name, ev); err != nil {
		return err
	}
	names, err := r.ListRecords(ctx, kindOf(ev.JName))
	if err != nil {
		return err
	}
	for i := 0; i < len(names)-max(keep, 1); i++ {
		if err := r.DeleteRecord(ctx, kindOf(ev.JName), names[i]); err != nil {
			return err
		}
	}
	return nil
}

// List returns jname's events, oldest first.
func List(ctx context.Context, r lease.Records, jname string) ([]Event, error) {
	names, err := r.ListRecords(ctx, kindOf(jname))
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(names))
	for _, name := range names {
		var ev Event
		found, err := lease.GetJSON(ctx, r, kindOf(jname), name, &ev)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, ev)
		}
	}
	return out, nil
}
