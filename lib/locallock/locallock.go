// Package locallock serialises runs on one node for one environment, so two
// racing mnt-start/mnt-stop/envctl runs never stack a mount. It is a flock on
// a local file: it protects nothing across nodes (that is lib/lease's job).
package locallock

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/envhooks/envhooks/lib/deadline"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Lock is a held lock.
type Lock struct{ f *flock.Flock }

// Acquire waits up to timeout for the lock on name in dir.
func Acquire(ctx context.Context, dir, name string, timeout time.Duration) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, sysexits.New(sysexits.CantCreat, "cannot create lock directory %s: %v", dir, err)
	}
	path := filepath.Join(dir, name+".lock")
	f := flock.New(path)
	start := time.Now()
	ctx, cancel := deadline.WithTimeout(ctx, timeout, "LOCK_TIMEOUT")
	defer cancel()
	ok, err := f.TryLockContext(ctx, 10*time.Millisecond)
	if ok {
		return &Lock{f: f}, nil
	}
	if err == nil || ctx.Err() != nil {
		// Say the deadline that ended the wait: LOCK_TIMEOUT, or the
		// run's own (HOOK_TIMEOUT) when that came first.
		return nil, sysexits.New(sysexits.TempFail, "another run holds the lock %s for %s; gave up after %s, when %v; try again", path, name, time.Since(start).Round(100*time.Millisecond), deadline.Why(ctx))
	}
	return nil, sysexits.New(sysexits.CantCreat, "cannot lock %s: %v", path, err)
}

// Release lets the next run in. The lock file stays: removing it would let
// a waiter lock a file that a newcomer no longer sees.
func (l *Lock) Release() error { return l.f.Unlock() }
