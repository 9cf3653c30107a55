package nfsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// TimeoutError is a call that got no answer before its deadline. The
// connections it used were closed, so nothing keeps waiting on them.
type TimeoutError struct {
	Op     string // what was asked: "NFS NULL call", "MOUNT of /nfs/data"
	Server string
	Port   int // 0 when the call went through several ports
	After  time.Duration
}

func (e *TimeoutError) Error() string {
	where := e.Server
	if e.Port > 0 {
		where = fmt.Sprintf("%s port %d", e.Server, e.Port)
	}
	return fmt.Sprintf("%s on %s got no answer within %s", e.Op, where, e.After.Round(time.Millisecond))
}

// Timeout lets callers treat it like a net.Error.
func (e *TimeoutError) Timeout() bool { return true }

// IsTimeout reports whether err is a call that ran out of time.
func IsTimeout(err error) bool {
	var te *TimeoutError
	return errors.As(err, &te)
}

// tracker collects the connections a call opens so that they can be closed
// when its deadline passes: go-nfs-client blocks in reads with no deadline
// of its own, and closing the socket is the only way to wake it.
type tracker struct {
	mu      sync.Mutex
	closers []io.Closer
	expired bool
}

// add registers c; a connection that appears after the deadline (a dial
// that finished late) is closed at once.
func (t *tracker) add(c io.Closer) {
	if c == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.expired {
		c.Close()
		return
	}
	t.closers = append(t.closers, c)
}

func (t *tracker) expire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expired = true
	for _, c := range t.closers {
		c.Close()
	}
	t.closers = nil
}

// within runs fn under ctx's deadline. When the deadline passes first it
// closes what fn registered with the tracker and returns a *TimeoutError at
// once; fn's goroutine then fails on the closed sockets and ends. A dial
// still in connect(2) at that moment ends when the kernel gives up on it:
// a preflight TCP probe with its own deadline always runs first, so this is
// the rare case of a server that dies between the two.
func within(ctx context.Context, op, server string, port int, t *tracker, fn func() error) error {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return &TimeoutError{Op: op, Server: server, Port: port}
	}
	done := make(chan error, 1)
	go func() {
		defer func() {
			// go-nfs-client panics on some malformed replies; a bad
			// server must not crash the hook.
			if r := recover(); r != nil {
				done <- fmt.Errorf("malformed reply from %s: %v", server, r)
			}
		}()
		done <- fn()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.expire()
		return &TimeoutError{Op: op, Server: server, Port: port, After: time.Since(start)}
	}
}
