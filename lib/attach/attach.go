// Package attach is what mnt-start, mnt-stop and envctl share: pick the
// backend, decide which directories to attach, take the local lock, and run
// the engine with the configured deadlines.
package attach

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/cbsdlock"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/fence"
	"github.com/envhooks/envhooks/lib/inplace"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/locallock"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/running"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Session is one run against one environment.
type Session struct {
	Env      *environment.Env
	Config   *config.Config
	Backends backend.Registry // the backends the program links
	Log      *logging.Logger
	DryRun   bool
	Out      io.Writer  // dry-run output; stdout when nil
	Runner   run.Runner // nil: the OS; a dry run wraps it in run.DryRun
	// BeforeChange runs once before the first change (see plan.System).
	BeforeChange func()
	// Mounts is the mount table shared by the sessions of one batch; nil:
	// each operation reads the table itself.
	Mounts *mounttab.Live
	// Quick, set by the full mnt-start, is the note Start leaves for
	// mnt-start's quick check (see lib/quick); nil: leave none.
	Quick *quick.Note
	// Kind is running.Jail or running.VM, for the check that tells a
	// stopped environment ("": a jail, as CBSD passes -f only for jails).
	Kind string
	// Kernel and ReadMounts replace the OS's mount(2)/umount(2) and mount
	// table; nil: the OS's (tests give a model of another kernel).
	Kernel     plan.Kernel
	ReadMounts func() (mounttab.Table, error)
}

// Roles returns the directories to attach: data and system always, fstab
// when -f was given and MOUNT_FSTAB=1, rcconf only with MOUNT_RCCONF=1 (the
// engine warns loudly whenever it actually mounts over the node-wide
// jails-rcconf; see RCConfWarning).
func Roles(env *environment.Env, cfg *config.Config, log *logging.Logger) []environment.Role {
	roles := []environment.Role{environment.Data, environment.System}
	if env.Dir(environment.Fstab) != "" && cfg.Bool(config.MountFstab) {
		roles = append(roles, environment.Fstab)
	}
	if cfg.Bool(config.MountRCConf) && env.Dir(environment.RCConf) != "" {
		roles = append(roles, environment.RCConf)
	}
	return roles
}

// RCConfWarning is said whenever a mount covers -r, CBSD's node-wide
// jails-rcconf directory.
func RCConfWarning(env *environment.Env) string {
	return fmt.Sprintf("MOUNT_RCCONF=1: mounting on %s, which CBSD uses for EVERY environment on this node; the other environments' rc.conf files are hidden while %s is mounted", env.Dir(environment.RCConf), env.Name)
}

// NodeName is NODE_NAME or the host name.
func NodeName(cfg *config.Config) string {
	if n := cfg.Get(config.NodeName); n != "" {
		return n
	}
	h, _ := os.Hostname()
	return h
}

func (s *Session) engine() *plan.Engine {
	runner := s.Runner
	out := s.Out
	if out == nil {
		out = os.Stdout
	}
	if runner == nil {
		runner = run.New(false, nil)
	}
	if s.DryRun {
		runner = run.DryRun{Next: runner, Out: out}
	}
	cfg := s.Config
	sys := &plan.System{
		Run:            runner,
		Log:            s.Log,
		DryRun:         s.DryRun,
		Out:            out,
		CommandTimeout: cfg.Seconds(config.CommandTimeout),
		UnmountTimeout: cfg.Seconds(config.UnmountTimeout),
		ForceUnmount:   cfg.Bool(config.ForceUnmount),
		AllowNonEmpty:  cfg.Bool(config.AllowNonEmpty),
		BeforeChange:   s.BeforeChange,
	}
	if s.Mounts != nil {
		sys.ReadMounts, sys.Kernel = s.Mounts.Table, plan.TrackedKernel(s.Mounts)
	}
	if s.Kernel != nil {
		sys.Kernel = s.Kernel
	}
	if s.ReadMounts != nil {
		sys.ReadMounts = s.ReadMounts
	}
	sys.Layers = s.layers()
	return &plan.Engine{Sys: sys, Store: state.Store{Dir: cfg.Get(config.StateDir)}}
}

// layers lets the engine take away the mounts CBSD left on the
// environment's storage (see plan.Layers): those on CBSD's jail root, once
// the running check says the environment is stopped.
func (s *Session) layers() *plan.Layers {
	kind := s.kind()
	l := &plan.Layers{}
	if wd := s.workdir(); wd != "" {
		l.Own = []string{environment.CBSDJailRoot(wd, s.Env.Name)}
	}
	if running.Configured(s.Config, kind) {
		l.Idle = func(ctx context.Context) error {
			return running.RefuseIfRunning(ctx, s.checkRunner(), s.Config, s.Env.Name, kind)
		}
	}
	return l
}

func (s *Session) kind() string {
	if s.Kind == "" {
		return running.Jail
	}
	return s.Kind
}

// checkRunner runs the running check: it only reads, so it runs for real
// in a dry run too.
func (s *Session) checkRunner() run.Runner {
	if s.Runner != nil {
		return s.Runner
	}
	return run.New(false, nil)
}

// workdir is CBSD's workdir, read off the system directory CBSD passed.
func (s *Session) workdir() string {
	return environment.CBSDWorkdir(s.Env.Dir(environment.System), s.Env.Name)
}

// clearCBSDLock removes CBSD's jails-system/<jname>/locked while it names
// this node, before the system directory is detached (see lib/cbsdlock).
func (s *Session) clearCBSDLock() {
	sys := s.Env.Dir(environment.System)
	if sys == "" {
		return
	}
	names := cbsdlock.NodeNames(s.workdir(), NodeName(s.Config))
	if s.DryRun {
		fmt.Fprintf(s.out(), "# remove %s if it names %s\n", filepath.Join(sys, cbsdlock.FileName), strings.Join(names, " or "))
		return
	}
	holder, removed, err := cbsdlock.ClearIfMine(sys, names)
	switch {
	case err != nil:
		s.Log.Warn("cannot read CBSD's lock in %s: %v", sys, err)
	case removed:
		s.Log.Action("removed CBSD's lock %s (it named this node, %s)", filepath.Join(sys, cbsdlock.FileName), holder)
	case holder != "":
		s.Log.Warn("CBSD's lock %s names %s, not this node: left in place", filepath.Join(sys, cbsdlock.FileName), holder)
	}
}

func (s *Session) out() io.Writer {
	if s.Out == nil {
		return os.Stdout
	}
	return s.Out
}

// lock serialises runs on this environment; a dry run changes nothing, so
// it takes no lock.
func (s *Session) lock(ctx context.Context) (func(), error) {
	if s.DryRun {
		return func() {}, nil
	}
	l, err := locallock.Acquire(ctx, s.Config.Get(config.StateDir), s.Env.Name, s.Config.Seconds(config.LockTimeout))
	if err != nil {
		return nil, err
	}
	return func() { l.Release() }, nil
}

// Start attaches the environment's storage.
func (s *Session) Start(ctx context.Context) error {
	// Everything is checked before the lock is taken: bad input changes
	// nothing on disk, not even a lock file.
	eng := s.engine()
	p, err := s.plan(eng.Sys)
	if err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.attach(ctx, eng, p); err != nil {
		return err
	}
	s.noteQuick(eng, p.steps)
	return nil
}

// noteQuick leaves mnt-start's quick check a note when an identical start
// would do nothing and say nothing: a plan of plain mounts, no lease to
// check, no configuration warning to repeat, and inplace.Decide, asked with
// this start's plan and the record it left, finds everything in place.
// Otherwise it removes any older note. A note that cannot be written costs
// speed only.
func (s *Session) noteQuick(eng *plan.Engine, steps []plan.Step) {
	if s.Quick == nil || s.DryRun {
		return
	}
	n, ok := s.quickNote(eng, steps)
	var err error
	if ok {
		err = quick.Write(s.Env.Name, n)
	} else {
		err = quick.Remove(s.Env.Name)
	}
	if err != nil && s.Log != nil {
		s.Log.Debug("mnt-start's quick-check note for %s: %v", s.Env.Name, err)
	}
}

func (s *Session) quickNote(eng *plan.Engine, steps []plan.Step) (quick.Note, bool) {
	n := *s.Quick
	if len(s.Config.Warnings) > 0 || s.Config.Get(lease.DirKey) != "" {
		return n, false
	}
	for _, st := range steps {
		switch st := st.(type) {
		case *plan.Check:
		case *plan.Mount:
			n.Mounts = append(n.Mounts, quick.Mount{ID: st.Undo().ID, Target: st.Target, Want: st.Want})
		default:
			return n, false
		}
	}
	rec, err := eng.Record(s.Env.Name)
	if err != nil || rec == nil {
		return n, false
	}
	eng.Sys.Changed()
	t, err := eng.Sys.Mounts()
	if err != nil || !inplace.Decide(quick.Needs(n.Mounts, t), rec.Done) {
		return n, false
	}
	n.State = eng.Store.Path(s.Env.Name)
	n.Record = quick.Digest(n.State)
	for _, a := range rec.Actions {
		if !a.Pending {
			n.Done = append(n.Done, a.ID)
		}
	}
	n.Resolved = map[string]string{}
	for _, dir := range s.Env.Dirs {
		n.Resolved[dir] = t.Resolve(dir)
	}
	return n, true
}

// forgetQuick removes mnt-start's quick-check note before anything is
// detached: from then on only a full start vouches for the environment.
func (s *Session) forgetQuick() error {
	if s.DryRun {
		return nil
	}
	if err := quick.Remove(s.Env.Name); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot remove mnt-start's quick-check note for %s: %v", s.Env.Name, err)
	}
	return nil
}

// planned is a session's plan: the backend's name and steps, and the
// environment they attach, its directories resolved through their
// symbolic links as the mount table will show them.
type planned struct {
	backend string
	steps   []plan.Step
	env     *environment.Env
}

// plan builds the backend's plan for the environment, checking the
// configuration; it changes nothing.
func (s *Session) plan(sys *plan.System) (planned, error) {
	name, b, err := s.Backends.Open(s.Config)
	if err != nil {
		return planned{}, err
	}
	t, err := sys.Mounts()
	if err != nil {
		return planned{}, sysexits.Wrap(sysexits.OSErr, err)
	}
	env := &environment.Env{Name: s.Env.Name, Dirs: map[environment.Role]string{}}
	for role, dir := range s.Env.Dirs {
		env.Dirs[role] = t.Resolve(dir)
	}
	steps, err := b.Steps(env, Roles(env, s.Config, s.Log))
	if err != nil {
		return planned{}, sysexits.Wrap(sysexits.Config, err)
	}
	if rc := env.Dir(environment.RCConf); rc != "" {
		for _, st := range steps {
			if m, ok := st.(*plan.Mount); ok && m.Target == rc {
				m.Warning = RCConfWarning(env)
			}
		}
	}
	return planned{backend: name, steps: steps, env: env}, nil
}

// sweep is what a stop checks beyond the record: the plan's steps and the
// directories it attaches (see plan.Sweep).
func (s *Session) sweep(p planned) plan.Sweep {
	sw := plan.Sweep{Steps: p.steps}
	for _, role := range Roles(p.env, s.Config, s.Log) {
		sw.Dirs = append(sw.Dirs, p.env.Dir(role))
	}
	return sw
}

// attach runs the plan on eng; the caller holds the lock.
func (s *Session) attach(ctx context.Context, eng *plan.Engine, p planned) error {
	node := NodeName(s.Config)
	rec := state.Record{JName: s.Env.Name, Backend: p.backend, Node: node}
	// With leases on, only the owner attaches: a start on the wrong node
	// fails here, before anything is mounted.
	leases, err := lease.Open(s.Config, run.New(false, nil))
	if err != nil {
		return err
	}
	var refused error // in a dry run: said after the plan
	if leases != nil {
		defer lease.Close(leases)
		l, err := lease.Check(ctx, leases, s.Env.Name, node)
		old, _ := s.Record()
		switch {
		case err != nil && s.DryRun:
			refused = plan.DryRunFailure(err)
		case err != nil && old != nil && old.Generation != 0:
			// This node lost ownership while it had the storage
			// attached: say so, it is the one thing to fix here.
			return sysexits.New(sysexits.Code(err), "%v; this node still has %s attached from generation %d: run mnt-stop -j %s here", err, s.Env.Name, old.Generation, s.Env.Name)
		case err != nil:
			return err
		default:
			if old != nil && old.Generation != 0 && old.Generation < l.Generation && s.Log != nil {
				s.Log.Warn("%s was attached here under generation %d, but the lease is at %d: this node lost ownership in between; make sure no other node still uses it", s.Env.Name, old.Generation, l.Generation)
			}
			rec.Generation = l.Generation
			eng.Sys.Owner = plan.Owner{Node: node, Generation: l.Generation}
		}
	}
	steps := p.steps
	if owner := s.ownerStep(eng.Sys.Owner); owner != nil {
		steps = append(steps[:len(steps):len(steps)], owner)
	}
	err = eng.Attach(ctx, rec, steps)
	if refused != nil && (err == nil || plan.IsDryRunFailure(err)) {
		return refused // the first failure the plan met
	}
	if err != nil {
		return err
	}
	if rec.Generation == 0 || s.DryRun {
		return nil
	}
	// The engine skips every step when everything is in place already
	// (the owner record too); a lease regained since must still move the
	// records on. Otherwise nothing here touches the storage: an attached
	// environment answers even when its server hangs.
	st := state.Store{Dir: s.Config.Get(config.StateDir)}
	if cur, err := st.Load(s.Env.Name); err == nil && cur != nil && cur.Generation < rec.Generation {
		if err := s.writeOwner(ctx, eng.Sys.Owner); err != nil {
			return err
		}
		cur.Generation = rec.Generation
		return st.Save(cur)
	}
	return nil
}

// ownerStep writes the owner record (see fence.Owner) once everything is
// attached, as the plan's last step: if it fails, the attach is undone. It
// is nil without a lease.
func (s *Session) ownerStep(o plan.Owner) plan.Step {
	if o.Generation == 0 {
		return nil
	}
	return &plan.Check{
		What:    fmt.Sprintf("write the owner record of %s (node %s, generation %d) in %s and %s", s.Env.Name, o.Node, o.Generation, fence.OwnerFile(s.Env.Dir(environment.System)), fence.OwnerFile(s.Env.Dir(environment.Data))),
		Changes: true,
		Fn:      func(ctx context.Context, _ *plan.System) error { return s.writeOwner(ctx, o) },
	}
}

// writeOwner writes the owner record where it differs, within
// COMMAND_TIMEOUT: the storage may have just died under the mounts.
func (s *Session) writeOwner(ctx context.Context, o plan.Owner) error {
	ctx, cancel := context.WithTimeout(ctx, s.Config.Seconds(config.CommandTimeout))
	defer cancel()
	rec := fence.Owner{JName: s.Env.Name, Node: o.Node, Generation: o.Generation, Written: time.Now().UTC()}
	err := fence.WriteOwner(ctx, rec, s.Env.Dir(environment.System), s.Env.Dir(environment.Data))
	switch {
	case errors.Is(err, fence.ErrNoAnswer):
		return sysexits.New(sysexits.Unavailable, "%v", err)
	case err != nil:
		return sysexits.New(sysexits.CantCreat, "%v", err)
	}
	return nil
}

// Stop undoes what Start recorded, then what the plan attaches that no
// record names (see plan.Sweep). Without directory flags (mnt-stop -j
// NAME) the directories are CBSD's, under WORKDIR. A plan that cannot be
// made (the configuration changed since the start) still lets the record
// be undone, with a warning; without a record it is the error.
func (s *Session) Stop(ctx context.Context) error {
	// CBSD's lock is cleared only in a system directory the caller named
	// (-s): the directories assumed below serve the sweep alone.
	systemGiven := s.Env.Dir(environment.System) != ""
	if len(s.Env.Dirs) == 0 {
		s.Env = &environment.Env{Name: s.Env.Name, Dirs: environment.CBSDDirs(s.Config.Get(config.Workdir), s.Env.Name)}
	}
	eng := s.engine()
	var sweep plan.Sweep
	if p, err := s.plan(eng.Sys); err == nil {
		sweep = s.sweep(p)
	} else if rec, rerr := eng.Record(s.Env.Name); rerr == nil && rec != nil {
		s.Log.Warn("cannot plan %s to check beyond its record (%v): undoing the record only", s.Env.Name, err)
	} else {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	rec, _ := s.Record()
	var refused error // in a dry run: said after the plan
	if rec != nil && running.Configured(s.Config, s.kind()) {
		// Nothing is taken from under a running environment: some of its
		// mounts would go, the busy ones would stay.
		if err := running.RefuseIfRunning(ctx, s.checkRunner(), s.Config, s.Env.Name, s.kind()); err != nil {
			if !s.DryRun {
				return err
			}
			refused = plan.DryRunFailure(err)
		}
	}
	if err := s.forgetQuick(); err != nil {
		return err
	}
	if rec != nil && systemGiven {
		s.clearCBSDLock()
	}
	if err := eng.DetachSweeping(ctx, s.Env.Name, sweep); err != nil {
		return err
	}
	return refused
}

// StopAfter makes sure the storage is attached (attaching what is missing),
// runs last while it is, then detaches, all under one lock and on one read
// of the mount table: envctl junregister leaves the descriptor on the
// shared storage this way. If last fails, nothing is detached.
func (s *Session) StopAfter(ctx context.Context, last func() error) error {
	eng := s.engine()
	p, err := s.plan(eng.Sys)
	if err != nil {
		return err
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.attach(ctx, eng, p); err != nil {
		return err
	}
	if err := last(); err != nil {
		return err
	}
	if err := s.forgetQuick(); err != nil {
		return err
	}
	s.clearCBSDLock()
	// The engine's table is still right: it read it, kept it up to date
	// with its own changes, and the lock kept other runs out.
	return eng.DetachCached(ctx, s.Env.Name, s.sweep(p))
}

// SystemAttached reports whether the environment's system directory is
// attached here: recorded as a mount that the mount table still shows. A
// record of commands only (an exec hook) cannot be checked against the
// table and is taken at its word.
func (s *Session) SystemAttached() (bool, error) {
	sys := s.Env.Dir(environment.System)
	rec, err := s.Record()
	if err != nil || rec == nil || sys == "" {
		return false, err
	}
	t, err := s.table()
	if err != nil {
		return false, sysexits.Wrap(sysexits.OSErr, err)
	}
	// Targets are recorded with their symbolic links resolved.
	resolved := t.Resolve(sys)
	commands := false
	for _, a := range rec.Actions {
		switch {
		case a.Kind == state.KindUnmount && (filepath.Clean(a.Target) == filepath.Clean(sys) || a.Target == resolved):
			top, ok := t.Top(a.Target)
			return ok && t.Matches(top, a.Want), nil
		case a.Kind == state.KindCommand:
			commands = true
		}
	}
	return commands, nil
}

func (s *Session) table() (mounttab.Table, error) {
	if s.ReadMounts != nil {
		return s.ReadMounts()
	}
	return mounttab.Read()
}

// Record returns what is recorded as attached (nil: nothing).
func (s *Session) Record() (*state.Record, error) {
	return state.Store{Dir: s.Config.Get(config.StateDir)}.Load(s.Env.Name)
}
