package plan

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

func (s *System) undo(ctx context.Context, a state.Action) error {
	switch a.Kind {
	case state.KindUnmount:
		return s.unmount(ctx, a)
	case state.KindCommand:
		cmd := run.Cmd{Argv: a.Argv, Timeout: a.Timeout, Configured: a.Configured}
		if cmd.Timeout == 0 {
			cmd.Timeout = s.CommandTimeout
		}
		// In a dry run the runner prints it and reports it done.
		_, err := s.Run.Run(ctx, cmd)
		if err == nil || alreadyUndone(err, a) {
			return nil
		}
		return sysexits.New(sysexits.Unavailable, "cannot undo %s: %v", a.What, err)
	}
	return sysexits.New(sysexits.Software, "unknown action kind %q in the state record for %s", a.Kind, a.What)
}

func alreadyUndone(err error, a state.Action) bool {
	var re *run.Error
	if !errors.As(err, &re) || re.TimedOut {
		return false
	}
	if slices.Contains(a.OKExit, re.ExitCode) {
		return true
	}
	for _, s := range a.OKStderr {
		if strings.Contains(re.Stderr, s) {
			return true
		}
	}
	return false
}

// unmount removes the recorded mount: "not mounted" is success, a busy mount
// is retried with backoff up to UnmountTimeout and then reported with the
// processes that hold it, and forced only when configured.
func (s *System) unmount(ctx context.Context, a state.Action) error {
	t, err := s.Mounts()
	if err != nil {
		return sysexits.Wrap(sysexits.OSErr, err)
	}
	// A record may name the target through a symbolic link (records
	// written before targets were resolved): the table shows where it led.
	target := t.Resolve(a.Target)
	top, mounted := t.Top(target)
	if !mounted {
		s.Log.Debug("%s is not mounted: nothing to undo", target)
		return nil
	}
	if !t.Matches(top, a.Want) {
		for _, m := range t.At(target) {
			if t.Matches(m, a.Want) {
				return sysexits.New(sysexits.TempFail, "%s has %s mounted on top of %s; unmount that first", target, top.Describe(), a.Want)
			}
		}
		if a.Pending {
			// Only intended by a run that died before it mounted: what
			// is there is not ours.
			s.Log.Debug("%s shows %s, not %s, which was never mounted: leaving it alone", target, top.Describe(), a.Want)
		} else {
			s.Log.Warn("%s now shows %s, not %s: leaving it alone", target, top.Describe(), a.Want)
		}
		return nil
	}
	if err := s.detachLayers(ctx, target); err != nil {
		return err
	}
	if s.DryRun {
		s.sayUnmount(ctx, a)
		return nil
	}
	deadline := time.Now().Add(s.UnmountTimeout)
	timedOut := false
	wait := 50 * time.Millisecond
	for {
		err := s.unmountOnce(ctx, a, target, false)
		if err == nil {
			// The top mount at the target is gone; the cached table need
			// not be read again to know it.
			s.forget(target)
		} else {
			s.Changed()
		}
		if gone, terr := s.gone(target, a.Want); terr == nil && gone {
			return nil
		} else if terr != nil {
			return sysexits.Wrap(sysexits.OSErr, terr)
		}
		if err != nil && isTimeout(err) {
			// A hung server: the unmount itself hangs, so waiting again
			// only hangs again. Force it now if allowed (for NFS on
			// FreeBSD the force is umount -N, which does not wait for
			// the server), else say what to do.
			timedOut = true
			break
		}
		if err != nil && !isBusy(err) {
			return sysexits.New(sysexits.Unavailable, "cannot unmount %s: %v", target, err)
		}
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(2*wait, time.Second)
	}
	if s.ForceUnmount && (len(a.Force) > 0 || a.Direct) {
		if timedOut {
			s.Log.Warn("unmounting %s timed out: forcing it (FORCE_UNMOUNT=1)", target)
		} else {
			s.Log.Warn("%s was not unmounted within %s: forcing the unmount (FORCE_UNMOUNT=1)", target, s.UnmountTimeout)
		}
		err := s.unmountOnce(ctx, a, target, true)
		s.Changed()
		if gone, _ := s.gone(target, a.Want); gone {
			return nil
		}
		return sysexits.New(sysexits.TempFail, "forced unmount of %s failed: %v", target, err)
	}
	if timedOut {
		return sysexits.New(sysexits.Unavailable, "unmounting %s did not finish within COMMAND_TIMEOUT (%s): its storage does not answer; run this again once it does, or with FORCE_UNMOUNT=1 to detach it now", target, s.CommandTimeout)
	}
	who := "no process found holding it"
	if h := holders(ctx, s, target); len(h) > 0 {
		who = "held by " + strings.Join(h, ", ")
	}
	return sysexits.New(sysexits.TempFail, "%s is busy (%s); still busy after %s: stop those processes or set FORCE_UNMOUNT=1", target, who, s.UnmountTimeout)
}

func (s *System) unmountOnce(ctx context.Context, a state.Action, target string, force bool) error {
	if a.Direct {
		return s.kernel().Unmount(target, force)
	}
	argv := a.Argv
	if force {
		argv = a.Force
	}
	_, err := s.Command(ctx, argv...)
	return err
}

func (s *System) gone(target string, want mounttab.Want) (bool, error) {
	t, err := s.Mounts()
	if err != nil {
		return false, err
	}
	for _, m := range t.At(target) {
		if t.Matches(m, want) {
			return false, nil
		}
	}
	return true, nil
}

// isTimeout reports an unmount command killed at its deadline.
func isTimeout(err error) bool {
	var re *run.Error
	return errors.As(err, &re) && re.TimedOut
}

func isBusy(err error) bool {
	if errors.Is(err, syscall.EBUSY) {
		return true
	}
	var re *run.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := strings.ToLower(re.Stderr)
	return strings.Contains(msg, "busy")
}
