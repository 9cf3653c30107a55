package lease

import (
	"context"
	"os"
	"time"

	"github.com/envhooks/envhooks/lib/nfsclient"
)

// Clock is a store that can say what time it is where it keeps its
// records. File and NFS heartbeats carry their writer's clock, which
// readers compare with their own, so envctl doctor compares this node's
// clock with the store's. (etcd decides liveness with leases on its own
// clock: it needs no such check.)
type Clock interface {
	// Now is the store's time: the modification time it gives a file it
	// creates.
	Now(ctx context.Context) (time.Time, error)
}

// Now creates and removes a file in the lease directory: its modification
// time is the clock of the file system, the NFS server's for an NFS mount.
// The directory is never created (see CheckDir).
func (f *FileStore) Now(context.Context) (time.Time, error) {
	if err := CheckDir(f.Dir); err != nil {
		return time.Time{}, err
	}
	tmp, err := os.CreateTemp(f.Dir, ".clock-")
	if err != nil {
		return time.Time{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := tmp.Write([]byte("envctl doctor\n")); err != nil {
		return time.Time{}, err
	}
	fi, err := tmp.Stat()
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// Now writes and removes a file beside the leases over NFS RPC: the
// server stamps it with its own clock.
func (n *NFSStore) Now(ctx context.Context) (time.Time, error) {
	if err := n.ensureDir(ctx); err != nil {
		return time.Time{}, err
	}
	var t time.Time
	err := n.with(ctx, func(c *nfsclient.Client) error {
		p := n.rel(".clock-" + randomSuffix())
		if err := c.WriteFile(ctx, p, []byte("envctl doctor\n"), 0o644); err != nil {
			return err
		}
		defer func() { _ = c.Remove(ctx, p) }() // best effort: the probe file is the store's only trace
		info, err := c.Stat(ctx, p)
		t = info.ModTime
		return err
	})
	return t, err
}
