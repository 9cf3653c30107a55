package fence

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/record"
)

// Owner is the owner record: which node attached an environment under
// which lease generation. mnt-start writes it, whenever it attaches under a
// lease, into two places on the environment's own storage:
//
//	SYSTEM/.envhooks/owner   for the nodes: a holder that finds a higher
//	                         generation there stops (envctl heartbeat);
//	DATA/.envhooks/owner     for the environment: a jail or container
//	                         reads it as /.envhooks/owner.
//
// An application that wants to stop by itself reads the generation it
// started under and, before a batch of writes, reads the record again: a
// different generation means another node owns the storage now.
type Owner struct {
	JName      string    `json:"jname"`
	Node       string    `json:"node"`
	Generation uint64    `json:"generation"`
	Written    time.Time `json:"written"`
}

// OwnerFile is where the owner record lives under a directory (an
// environment's system or data directory).
func OwnerFile(dir string) string { return filepath.Join(dir, ".envhooks", "owner") }

// ownerCodec reads and writes owner records (see record.Kind); a reader
// of its own (an application in the environment) needs only the JSON.
var ownerCodec = record.Kind{Format: "envhooks-owner 1", What: "owner record", Max: 4096, Unversioned: true}

// ReadOwner reads the owner record under dir; nil when there is none. It
// gives up at ctx's deadline (a dead NFS server), leaving the read behind.
func ReadOwner(ctx context.Context, dir string) (*Owner, error) {
	var o *Owner
	err := Bounded(ctx, func() error {
		var rec Owner
		found, err := ownerCodec.Read(OwnerFile(dir), &rec)
		if found && err == nil {
			o = &rec
		}
		return err
	})
	return o, err
}

// WriteOwner writes the owner record under each of dirs, unless it already
// says the same node and generation there.
func WriteOwner(ctx context.Context, o Owner, dirs ...string) error {
	for _, dir := range dirs {
		cur, err := ReadOwner(ctx, dir)
		if err == nil && cur != nil && cur.Node == o.Node && cur.Generation == o.Generation && cur.JName == o.JName {
			continue
		}
		if err := Bounded(ctx, func() error { return writeRecord(ownerCodec, OwnerFile(dir), o) }); err != nil {
			return fmt.Errorf("cannot write the owner record %s: %w", OwnerFile(dir), err)
		}
	}
	return nil
}

// writeRecord writes v at path as a record of kind k, making its directory.
func writeRecord(k record.Kind, path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return k.Write(path, v, 0o644)
}

// ErrNoAnswer is the error of I/O that did not finish by its deadline.
var ErrNoAnswer = errors.New("the storage did not answer in time")

// Bounded runs fn, which does I/O on shared storage that may hang (a hard
// NFS mount whose server is gone), and returns its error, or ErrNoAnswer
// with the reason once ctx ends. A hung fn is left behind in its
// goroutine: a process that must go on (the heartbeat) goes on.
func Bounded(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w (%v)", ErrNoAnswer, context.Cause(ctx))
	}
}
