// Package journal is the write-ahead record of a move in progress: which
// environment goes from which node to which, and the last step done. It
// lives in the lease store, so that whichever node survives a crash can
// read it and finish or undo the move (envctl recover). A move that ends,
// forwards or backwards, deletes it: an open journal is an unfinished move.
package journal

import (
	"context"
	"time"

	"github.com/envhooks/envhooks/lib/lease"
)

// Steps of a move, in order. Each is written after it is done.
const (
	Begun      = "begun"      // preflight passed; nothing changed yet
	Stopped    = "stopped"    // STOP_COMMAND ran on the source
	Released   = "released"   // unregistered on the source: nobody owns it
	Registered = "registered" // registered on the target
	Started    = "started"    // START_COMMAND ran on the target
)

// Directions.
const (
	Forward = "forward"
	Back    = "back" // rolling back to the source after a failure
)

// Journal is one move's record.
type Journal struct {
	JName      string    `json:"jname"`
	Kind       string    `json:"kind"`
	Op         string    `json:"op"` // move, drain, restore
	From       string    `json:"from"`
	To         string    `json:"to"`
	Step       string    `json:"step"`
	Direction  string    `json:"direction"`
	WasRunning bool      `json:"was_running"` // the source ran it before the move
	Failure    string    `json:"failure,omitempty"`
	By         string    `json:"by"` // the node running the move
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
}

const kind = "journal"

// Load reads jname's open journal; nil when no move of it is open.
func Load(ctx context.Context, r lease.Records, jname string) (*Journal, error) {
	var j Journal
	found, err := lease.GetJSON(ctx, r, kind, jname, &j)
	if err != nil || !found {
		return nil, err
	}
	return &j, nil
}

// Save writes j as it stands now.
func Save(ctx context.Context, r lease.Records, j *Journal) error {
	j.Updated = time.Now().UTC()
	return lease.PutJSON(ctx, r, kind, j.JName, j)
}

// Close ends jname's move: its journal goes.
func Close(ctx context.Context, r lease.Records, jname string) error {
	return r.DeleteRecord(ctx, kind, jname)
}

// Open names every environment with an open journal.
func Open(ctx context.Context, r lease.Records) ([]string, error) {
	return r.ListRecords(ctx, kind)
}
