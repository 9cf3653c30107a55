// Package deadline names the deadline that cut something short. Several
// bound one run (HOOK_TIMEOUT for the whole run, LOCK_TIMEOUT for the lock
// wait, EXEC_TIMEOUT or COMMAND_TIMEOUT for each command), and a message
// must report the one that fired, not the one the failing step was given.
package deadline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Passed is the cause of a context whose named deadline passed.
type Passed struct {
	Name  string        // the key that set it: "HOOK_TIMEOUT"
	After time.Duration // how long it was
}

func (p *Passed) Error() string {
	if p.Name == "" {
		return fmt.Sprintf("the deadline of %s passed", p.After)
	}
	return fmt.Sprintf("%s=%s passed", p.Name, p.After)
}

// WithTimeout is context.WithTimeout whose cause, once the deadline
// passes, is a *Passed naming it.
func WithTimeout(ctx context.Context, d time.Duration, name string) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, &Passed{Name: name, After: d})
}

// Interrupted is the cause of a run cancelled by a signal.
type Interrupted struct{ Signal string }

func (i *Interrupted) Error() string { return "interrupted by " + i.Signal }

// Why says why ctx ended, in words for a message: the named deadline that
// passed, the signal that interrupted the run, or, for a context nobody
// named, that its caller's deadline passed or it was cancelled. Nil while
// ctx is live.
func Why(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, context.DeadlineExceeded):
		return errors.New("its caller's deadline passed")
	case errors.Is(cause, context.Canceled):
		return errors.New("it was cancelled")
	}
	return cause
}

// CancelOnSignal makes SIGINT and SIGTERM cancel ctx's cancel with an
// *Interrupted cause instead of killing the program, so that what is
// running is rolled back and the message names the signal. stop undoes it.
func CancelOnSignal(cancel context.CancelCauseFunc) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			cancel(&Interrupted{Signal: signalName(s)})
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
	}
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}
