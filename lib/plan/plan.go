// Package plan is the mount engine. A backend turns an environment into an
// ordered list of steps; Attach compares each with the mount table, does only
// what is missing, records how to undo what it did, and undoes this run's
// work if a later step fails. Detach undoes a record in reverse.
package plan

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
)

// Step is one thing an environment needs attached.
type Step interface {
	// String says what the step does, for logs and errors.
	String() string
	// Done reports whether the step's effect is already in place. An error
	// means something conflicting is (another source at the target).
	Done(ctx context.Context, s *System) (bool, error)
	// Apply makes the effect happen.
	Apply(ctx context.Context, s *System) error
	// Undo is the action that reverses the step, recorded once the step is
	// in place; nil when there is nothing to undo.
	Undo() *state.Action
}

// System is what steps work with: the runner, the mount table, and the
// settings that shape every step.
type System struct {
	Run            run.Runner
	Log            *logging.Logger
	DryRun         bool
	Out            io.Writer // dry-run lines
	CommandTimeout time.Duration
	UnmountTimeout time.Duration
	ForceUnmount   bool
	AllowNonEmpty  bool
	// ReadMounts reads the mount table; tests replace it.
	ReadMounts func() (mounttab.Table, error)
	// BeforeChange, if set, runs once before the first change of a run. The
	// hooks install their signal handling there: until something changed,
	// being killed by a signal loses nothing, and the idempotent path stays
	// free of it.
	BeforeChange func()
	// Kernel makes the mounts that need no helper program with system
	// calls; nil means the OS's. A helper like mount(8) re-reads the whole
	// mount table each time, which dominates when thousands are mounted.
	Kernel Kernel
	// Layers says which mounts sitting on a recorded mount the engine may
	// unmount first (nil: none, they are reported).
	Layers *Layers
	// Owner is the lease this run attaches under (zero without leases):
	// steps that fence at the storage carry its generation there.
	Owner Owner

	table mounttab.Table
}

// Owner is a lease holder: the node and its lease generation, the fencing
// token.
type Owner struct {
	Node       string
	Generation uint64
}

// Kernel is the part of mount(2)/umount(2) the engine calls directly.
type Kernel interface {
	Bind(src, target string) error
	Unmount(target string, force bool) error
}

func (s *System) kernel() Kernel {
	if s.Kernel == nil {
		return osKernel{}
	}
	return s.Kernel
}

// TrackedKernel is the OS's Kernel with every mount and unmount accounted
// in live, so that live answers the next question without reading the whole
// mount table again. Give it, with live.Table as ReadMounts, to the engines
// of a process that runs many operations.
func TrackedKernel(live *mounttab.Live) Kernel { return trackedKernel{live} }

type trackedKernel struct{ live *mounttab.Live }

func (k trackedKernel) Bind(src, target string) error {
	return k.live.Change(func() error { return osKernel{}.Bind(src, target) }, 1, 0,
		func(t mounttab.Table) mounttab.Table { return t.WithBind(src, target) })
}

func (k trackedKernel) Unmount(target string, force bool) error {
	return k.live.Change(func() error { return osKernel{}.Unmount(target, force) }, 0, 1,
		func(t mounttab.Table) mounttab.Table { return t.WithoutTop(target) })
}

// Mounts returns the mount table, read once and reused until a step changes it.
func (s *System) Mounts() (mounttab.Table, error) {
	if s.table != nil {
		return s.table, nil
	}
	read := s.ReadMounts
	if read == nil {
		read = mounttab.Read
	}
	t, err := read()
	if err != nil {
		return nil, fmt.Errorf("cannot read the mount table: %v", err)
	}
	s.table = t
	return t, nil
}

// changing runs BeforeChange the first time it is called.
func (s *System) changing() {
	if s.BeforeChange != nil && !s.DryRun {
		f := s.BeforeChange
		s.BeforeChange = nil
		f()
	}
}

// forget drops the top mount at target from the cached table after a
// successful unmount, sparing a re-read of the whole table.
func (s *System) forget(target string) { s.table = s.table.WithoutTop(target) }

// Changed forgets the cached mount table after something was mounted or
// unmounted.
func (s *System) Changed() { s.table = nil }

// Command runs argv under the command deadline.
func (s *System) Command(ctx context.Context, argv ...string) (run.Result, error) {
	return s.Run.Run(ctx, run.Cmd{Argv: argv, Timeout: s.CommandTimeout})
}

// Say prints a dry-run line: what would be done that is not a command.
func (s *System) Say(format string, args ...any) {
	fmt.Fprintf(s.Out, format+"\n", args...)
}
