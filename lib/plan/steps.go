package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Mount mounts something on a target directory.
type Mount struct {
	Target      string
	Want        mounttab.Want // what the mount table must show at Target
	Argv        []string      // the mount command
	UnmountArgv []string      // the plain unmount command
	ForceArgv   []string      // the forced unmount, used only with FORCE_UNMOUNT=1
	Secret      bool          // Argv carries a credential: never print it
	What        string        // "bind /dfs/data/web1 on /usr/jails/jails-data/web1-data"
	ErrorCode   int           // exit code when the mount command fails (default 69)
	Warning     string        // said loudly each time this mount is made
	Timeout     time.Duration // the mount command's deadline (0: COMMAND_TIMEOUT)
	// DirectBind mounts Want.BindOf on Target with mount(2) instead of
	// running Argv, and records that the unmount needs no helper either.
	// Argv still says what it does in dry runs and messages.
	DirectBind bool
}

func (m *Mount) String() string { return m.What }

// resolvePaths replaces the target and the directory a bind shows with
// where their symbolic links lead, as far as t says can be looked at
// without hanging (see mounttab.Table.Resolve): the mount table shows the
// resolved paths, and a comparison with an unresolved one would stack a
// second mount on the first.
func (m *Mount) resolvePaths(t mounttab.Table) {
	m.Target = m.replace(m.Target, t.Resolve(m.Target))
	if m.Want.BindOf != "" {
		m.Want.BindOf = m.replace(m.Want.BindOf, t.Resolve(m.Want.BindOf))
	}
}

// ResolveSource sets the directory a bind mount shows to src, resolved by
// the caller (a backend that can afford to look at it, under its own
// deadline), in the mount command too.
func (m *Mount) ResolveSource(src string) { m.Want.BindOf = m.replace(m.Want.BindOf, src) }

// replace puts to in the place of the path from, in the commands as well.
func (m *Mount) replace(from, to string) string {
	if from == to {
		return to
	}
	for _, argv := range [][]string{m.Argv, m.UnmountArgv, m.ForceArgv} {
		for i, a := range argv {
			if a == from {
				argv[i] = to
			}
		}
	}
	return to
}

// pathResolver is a step whose paths the engine resolves before it
// compares them with the mount table.
type pathResolver interface{ resolvePaths(t mounttab.Table) }

// resolvePaths resolves the paths of every step that has some.
func (s *System) resolvePaths(steps []Step) error {
	t, err := s.Mounts()
	if err != nil {
		return sysexits.Wrap(sysexits.OSErr, err)
	}
	for _, st := range steps {
		if r, ok := st.(pathResolver); ok {
			r.resolvePaths(t)
		}
	}
	return nil
}

// Done is true when the target already shows the wanted mount; any other
// mount at the target is a conflict, never success.
func (m *Mount) Done(_ context.Context, s *System) (bool, error) {
	t, err := s.Mounts()
	if err != nil {
		return false, sysexits.Wrap(sysexits.OSErr, err)
	}
	top, mounted := t.Top(m.Target)
	if !mounted {
		return false, nil
	}
	if t.Matches(top, m.Want) {
		return true, nil
	}
	return false, sysexits.New(sysexits.CantCreat, "%s already has %s mounted, not %s: unmount it or fix the configuration", m.Target, top.Describe(), m.Want)
}

// Apply creates a missing target, refuses a non-empty one unless allowed,
// mounts, and checks that the mount table now shows the wanted mount.
func (m *Mount) Apply(ctx context.Context, s *System) error {
	if m.Warning != "" {
		s.Log.Warn("%s", m.Warning)
	}
	if err := PrepareTarget(s, m.Target); err != nil {
		return err
	}
	timeout := m.Timeout
	if timeout == 0 {
		timeout = s.CommandTimeout
	}
	if m.DirectBind && !s.DryRun {
		// mount(2) succeeding is the proof; the cached table gains the
		// entry the kernel now shows instead of being read again.
		if err := s.kernel().Bind(m.Want.BindOf, m.Target); err != nil {
			return sysexits.New(sysexits.Unavailable, "cannot %s: %v", m.What, err)
		}
		s.table = s.table.WithBind(m.Want.BindOf, m.Target)
		return nil
	}
	_, err := s.Run.Run(ctx, run.Cmd{Argv: m.Argv, Timeout: timeout, Secret: m.Secret})
	s.Changed()
	if err != nil {
		code := m.ErrorCode
		if code == 0 {
			code = sysexits.Unavailable
		}
		return sysexits.New(code, "cannot %s: %v", m.What, err)
	}
	if s.DryRun {
		return nil
	}
	if done, err := m.Done(ctx, s); err != nil || !done {
		return sysexits.New(sysexits.Unavailable, "%s reported success but the mount table does not show %s on %s", m.Argv[0], m.Want, m.Target)
	}
	return nil
}

func (m *Mount) Undo() *state.Action {
	return &state.Action{
		ID:     "mount:" + m.Target,
		What:   m.What,
		Kind:   state.KindUnmount,
		Target: m.Target,
		Want:   m.Want,
		Argv:   m.UnmountArgv,
		Force:  m.ForceArgv,
		Direct: m.DirectBind,
	}
}

// PrepareTarget creates a missing mount point and refuses one that is not a
// directory or not empty (unless ALLOW_NONEMPTY=1). Call it only when the
// mount table shows nothing mounted on target: then looking at the
// directory cannot hang on a dead server. Backends whose own commands mount
// (zfs mount, a clone) use it too.
func PrepareTarget(s *System, target string) error {
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if s.DryRun {
			s.Say("%s", run.Quote([]string{"mkdir", "-p", target}))
			return nil
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return sysexits.New(sysexits.CantCreat, "cannot create mount point %s: %v", target, err)
		}
		s.Log.Action("created mount point %s", target)
		return nil
	case err != nil:
		return sysexits.New(sysexits.CantCreat, "cannot use mount point %s: %v", target, err)
	case !fi.IsDir():
		return sysexits.New(sysexits.CantCreat, "mount point %s is not a directory", target)
	}
	if s.AllowNonEmpty {
		return nil
	}
	if name, err := firstEntry(target); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot read mount point %s: %v", target, err)
	} else if name != "" {
		return sysexits.New(sysexits.CantCreat, "refusing to mount over %s: it is not empty (it holds %q, which the mount would hide); move its contents away or set ALLOW_NONEMPTY=1", target, name)
	}
	return nil
}

func firstEntry(dir string) (string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return "", err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) || len(names) == 0 {
		return "", nil
	}
	return names[0], err
}

// Command runs an attach command whose effect cannot be read from the mount
// table (an exec hook, a login); it must be idempotent itself, and its undo
// command is recorded.
type Command struct {
	ID       string
	What     string
	Cmd      run.Cmd
	UndoArgv []string
	OKExit   []int    // exits of the undo that mean "already undone"
	OKStderr []string // stderr of the undo that means "already undone"
	// IsDone, if set, tells whether the effect is already in place.
	IsDone    func(ctx context.Context, s *System) (bool, error)
	ErrorCode int // exit code when the command fails (default 69)
}

func (c *Command) String() string { return c.What }

func (c *Command) Done(ctx context.Context, s *System) (bool, error) {
	if c.IsDone == nil {
		return false, nil
	}
	return c.IsDone(ctx, s)
}

func (c *Command) Apply(ctx context.Context, s *System) error {
	cmd := c.Cmd
	if cmd.Timeout == 0 {
		cmd.Timeout = s.CommandTimeout
	}
	_, err := s.Run.Run(ctx, cmd)
	s.Changed()
	if err != nil {
		code := c.ErrorCode
		if code == 0 {
			code = sysexits.Unavailable
		}
		return sysexits.New(code, "cannot %s: %v", c.What, err)
	}
	return nil
}

func (c *Command) Undo() *state.Action {
	if c.UndoArgv == nil {
		return nil
	}
	// The undo runs as the command did: under its deadline, and checked
	// the same way when the configuration names it (a stop hook).
	return &state.Action{ID: c.ID, What: c.What, Kind: state.KindCommand, Argv: c.UndoArgv, OKExit: c.OKExit, OKStderr: c.OKStderr,
		Timeout: c.Cmd.Timeout, Configured: c.Cmd.Configured}
}

// Check is a step of Go code with nothing to undo: a preflight probe or a
// provisioning call. In a dry run a Check that changes something is only
// described.
type Check struct {
	What    string
	Changes bool // it changes something (provisioning): skipped in a dry run
	// Preflight says the check probes the storage (a server, a portal, a
	// source tree) and the steps after it do not need its answer: a dry
	// run that fails it still prints the whole plan (see Engine.Attach).
	Preflight bool
	Fn        func(ctx context.Context, s *System) error
}

func (c *Check) String() string { return c.What }

func (c *Check) Done(context.Context, *System) (bool, error) { return false, nil }

func (c *Check) Apply(ctx context.Context, s *System) error {
	if c.Changes && s.DryRun {
		s.Say("# %s", c.What)
		return nil
	}
	return c.Fn(ctx, s)
}

func (c *Check) Undo() *state.Action { return nil }

// Describe is a convenience for backends building messages.
func Describe(verb, src, target string) string { return fmt.Sprintf("%s %s on %s", verb, src, target) }
