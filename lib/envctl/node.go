// Package envctl moves ownership of environments between nodes that share
// storage, without copying data: junregister on the node that gives an
// environment up, jregister on the node that takes it. Every step is
// ordered so that at no moment two nodes own one environment, and running a
// command again after a crash finishes what the crashed run started.
package envctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/attach"
	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/crashpoint"
	"github.com/envhooks/envhooks/lib/descriptor"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/history"
	"github.com/envhooks/envhooks/lib/inventory"
	"github.com/envhooks/envhooks/lib/lease"
	_ "github.com/envhooks/envhooks/lib/lease/etcdlease" // envctl alone links the etcd client
	"github.com/envhooks/envhooks/lib/locallock"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/running"
	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/ssh"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Keys of envctl (declared in lib/config, which every program links).
var (
	cbsdKey     = config.CBSDCommand
	parallelKey = config.Parallel
)

// Kinds of environment, as the commands name them.
const (
	Jail = running.Jail
	VM   = running.VM
)

// Node is this node as envctl acts on it.
type Node struct {
	Config   *config.Config
	Backends backend.Registry
	Log      *logging.Logger
	DryRun   bool
	Out      io.Writer
	Runner   run.Runner // nil: the OS; a dry run wraps it in run.DryRun
	Name     string
	Workdir  string
	Leases   lease.Store
	Inv      inventory.Store
	// Mounts is the mount table every operation of this run shares: one
	// read of a table of thousands of mounts per operation would cost
	// more than the operations themselves.
	Mounts *mounttab.Live
	SSH    *ssh.Client // how moves reach other nodes; nil: from the config
	// Takeover is how failover takes an environment from a dead node;
	// nil: as jregister --takeover does.
	Takeover Takeover
}

// NewNode checks the configuration envctl needs.
func NewNode(cfg *config.Config, backends backend.Registry, log *logging.Logger, dryRun bool, out io.Writer) (*Node, error) {
	leases, err := lease.Open(cfg, run.New(false, nil))
	if err != nil {
		return nil, err
	}
	if leases == nil {
		return nil, sysexits.New(sysexits.Config, "envctl needs ownership leases: set LEASE_DIR to a directory on storage every node mounts")
	}
	return &Node{Config: cfg, Backends: backends, Log: log, DryRun: dryRun, Out: out, Name: attach.NodeName(cfg),
		Workdir: cfg.Get(config.Workdir), Leases: leases, Inv: inventory.Store{Dir: cfg.Get(inventory.DirKey)},
		Mounts: mounttab.NewLive()}, nil
}

// env is jname's environment with its directories derived from the workdir
// as CBSD derives them; VMs have no fstab (bstart passes no -f). Containers
// live in LXC_PATH (see Container).
func (n *Node) env(jname, kind string) *environment.Env {
	if kind == Container {
		return &environment.Env{Name: jname, Dirs: n.containerDirs(jname)}
	}
	dirs := environment.CBSDDirs(n.Workdir, jname)
	if kind == VM {
		delete(dirs, environment.Fstab)
	}
	return &environment.Env{Name: jname, Dirs: dirs}
}

// runner runs this node's own commands (cbsd, RUNNING_CHECK): Runner or
// the OS's, behind the dry run's decorator in a dry run.
func (n *Node) runner() run.Runner {
	r := n.Runner
	if r == nil {
		r = run.New(false, nil)
	}
	if n.DryRun {
		return run.DryRun{Next: r, Out: n.Out}
	}
	return r
}

func (n *Node) session(jname, kind string) *attach.Session {
	return &attach.Session{Env: n.env(jname, kind), Config: n.Config, Backends: n.Backends, Log: n.Log, DryRun: n.DryRun, Out: n.Out, Runner: n.Runner,
		Mounts: n.Mounts, Kind: kind}
}

func (n *Node) lock(ctx context.Context, jname string) (func(), error) {
	if n.DryRun {
		return func() {}, nil
	}
	// Not the hooks' lock name: envctl runs the hook logic while holding it.
	l, err := locallock.Acquire(ctx, n.Config.Get(config.StateDir), jname+".envctl", n.Config.Seconds(config.LockTimeout))
	if err != nil {
		return nil, err
	}
	return func() { l.Release() }, nil
}

// begin checks jname, takes the local lock and reads the lease: how every
// register and unregister starts.
func (n *Node) begin(ctx context.Context, jname string) (unlock func(), l *lease.Lease, err error) {
	if err := environment.CheckName(jname); err != nil {
		return nil, nil, err
	}
	if unlock, err = n.lock(ctx, jname); err != nil {
		return nil, nil, err
	}
	if l, err = n.Leases.Get(ctx, jname); err != nil {
		unlock()
		return nil, nil, sysexits.New(sysexits.Unavailable, "cannot read the lease of %s: %v", jname, err)
	}
	return unlock, l, nil
}

// RegisterOptions are jregister's choices.
type RegisterOptions struct {
	RCFile   string // explicit descriptor
	Force    bool   // take the lease over from From
	From     string
	Takeover bool // take the lease over from a holder whose heartbeat expired
	NoFence  bool // take it over without the fence step
	// InMaintenance lets a node in maintenance take an environment: a
	// move's own steps run here (a rollback coming home, or recover
	// finishing a move to a target that passed its preflight); nothing
	// else may.
	InMaintenance bool
}

// Register makes this node the owner of jname and attaches its storage:
// lease first, then attach, then the descriptor, then the local record.
// Any failure undoes what this run did, the lease included.
func (n *Node) Register(ctx context.Context, jname, kind string, opt RegisterOptions) (err error) {
	unlock, before, err := n.begin(ctx, jname)
	if err != nil {
		return err
	}
	defer unlock()
	if rec, _ := n.Inv.Load(jname); rec != nil && rec.Kind != kind {
		return sysexits.New(sysexits.DataErr, "%s is registered here as a %s, not a %s: use %s", jname, rec.Kind, kind, verbFor("register", rec.Kind))
	}
	if (before == nil || before.Node != n.Name) && !opt.InMaintenance {
		if err := n.refuseInMaintenance(ctx, jname); err != nil {
			return err
		}
	}
	if n.DryRun {
		return n.dryRegister(ctx, jname, kind, before, opt)
	}
	if opt.Force && opt.From == "" {
		return sysexits.New(sysexits.Usage, "--force needs --from NODE: name the node you are taking %s from", jname)
	}
	l, err := n.takeLease(ctx, jname, opt)
	if err == nil && before != nil && before.Node != n.Name {
		n.Log.Warn("took %s over from %s (generation %d)", jname, before.Node, l.Generation)
	}
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	crashpoint.Here("register:lease")
	leasedNow := before == nil || before.Node != n.Name
	s := n.session(jname, kind)
	rec, _ := s.Record()
	attachedBefore := rec != nil
	defer func() {
		if err == nil {
			return
		}
		if !attachedBefore {
			if derr := s.Stop(context.WithoutCancel(ctx)); derr != nil {
				n.Log.Error("undo: could not detach %s: %v", jname, derr)
			}
		}
		if leasedNow {
			if rerr := n.Leases.Release(context.WithoutCancel(ctx), jname, n.Name); rerr != nil {
				n.Log.Error("undo: could not release the lease of %s: %v", jname, rerr)
			}
		}
	}()
	if err := s.Start(ctx); err != nil {
		return err
	}
	crashpoint.Here("register:attach")
	if kind == Container {
		if err := n.adoptContainer(jname, opt.RCFile, l); err != nil {
			return err
		}
		if leasedNow {
			n.dropRelocation(ctx, jname)
		}
		return nil
	}
	portable, from, err := n.findDescriptor(jname, opt.RCFile)
	if err != nil {
		return err
	}
	d, err := descriptor.Parse(portable, jname, from)
	if err != nil {
		return err
	}
	described, err := d.Kind()
	if err != nil {
		return sysexits.New(sysexits.DataErr, "%s: %v", from, err)
	}
	if described != kind {
		return sysexits.New(sysexits.DataErr, "%s describes a %s, not a %s: use %s", from, described, kind, verbFor("register", described))
	}
	local, err := descriptor.Localize(portable, n.Workdir)
	if err != nil {
		return err
	}
	delegate := n.delegate()
	if delegate {
		// CBSD's jregister moves its localised copy into the system
		// directory, over the portable one; the portable copy is written
		// again below, so it survives.
		if err := d.ShellSafe(from); err != nil {
			return err
		}
		if err := n.cbsdRegister(ctx, jname, portable); err != nil {
			return err
		}
		crashpoint.Here("register:cbsd")
	}
	// The descriptor lives in the system directory from now on, portable,
	// so it travels with the data to whichever node registers it next.
	shared := filepath.Join(n.env(jname, kind).Dir(environment.System), descriptor.FileName(jname))
	if err := safefile.WriteAtomic(shared, portable, 0o644); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot write the descriptor into the shared system directory: %v", err)
	}
	crashpoint.Here("register:descriptor")
	if err := n.Inv.Save(&inventory.Record{JName: jname, Kind: kind, Node: n.Name, Registered: time.Now().UTC().Truncate(time.Second),
		Generation: l.Generation, Descriptor: string(local)}); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot write the inventory record: %v", err)
	}
	crashpoint.Here("register:record")
	if from == n.rcconfPath(jname) && !delegate {
		// As CBSD's jregister moves it: a stale copy would list the
		// environment as unregistered here.
		os.Remove(from)
	}
	if leasedNow {
		ev := history.Event{JName: jname, Kind: kind, Event: "register", Node: n.Name, Generation: l.Generation}
		if before != nil {
			ev.Event, ev.From = "takeover", before.Node
		}
		n.note(ctx, ev)
		n.dropRelocation(ctx, jname)
	}
	n.Log.Action("registered %s on %s (generation %d)", jname, n.Name, l.Generation)
	return nil
}

func (n *Node) dryRegister(ctx context.Context, jname, kind string, before *lease.Lease, opt RegisterOptions) error {
	// The whole plan is printed even when it would not run; why it would
	// not is returned after it.
	var refused error
	if before != nil && before.Node != n.Name && !opt.Force {
		refused = plan.DryRunFailure(sysexits.Wrap(sysexits.NoPerm, &lease.HeldError{Lease: *before}))
	}
	if before == nil || before.Node != n.Name {
		fmt.Fprintf(n.Out, "# acquire the lease of %s for %s\n", jname, n.Name)
	}
	// The hooks' own dry run prints the mounts; the lease check is skipped
	// there because the lease is not taken yet.
	s := n.session(jname, kind)
	s.Config = n.Config.Clone()
	_ = s.Config.Set(lease.DirKey, "")
	if err := s.Start(ctx); err != nil && !plan.IsDryRunFailure(err) {
		return err
	} else if refused == nil {
		refused = err
	}
	fmt.Fprintf(n.Out, "# read %s, write the inventory record %s\n", descriptorName(jname, kind), filepath.Join(n.Inv.Dir, jname+".json"))
	return refused
}

func (n *Node) rcconfPath(jname string) string {
	return filepath.Join(n.Workdir, "jails-rcconf", descriptor.FileName(jname))
}

// maxDescriptor bounds what is read as a descriptor: CBSD's are a few KiB.
const maxDescriptor = 1 << 20

// findDescriptor looks where a descriptor can be: an explicit rcfile=, or
// the shared system directory (where envctl junregister leaves it) and
// jails-rcconf (where cbsd junregister leaves it). Of the last two it
// prefers a portable copy, with CBSDROOT in it: the other may be a copy
// CBSD's jregister rewrote for some node's workdir. A FIFO, a device or a
// huge file is refused (65) without being read.
func (n *Node) findDescriptor(jname, rcfile string) ([]byte, string, error) {
	candidates := []string{filepath.Join(n.env(jname, Jail).Dir(environment.System), descriptor.FileName(jname)), n.rcconfPath(jname)}
	if rcfile != "" {
		candidates = []string{rcfile}
	}
	var first []byte
	firstAt := ""
	for _, p := range candidates {
		raw, err := safefile.Read(p, maxDescriptor)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, p, sysexits.New(sysexits.DataErr, "cannot read the descriptor %s: %v", p, err)
		}
		if descriptor.IsPortable(raw) {
			return raw, p, nil
		}
		if firstAt == "" {
			first, firstAt = raw, p
		}
	}
	if firstAt == "" {
		return nil, "", sysexits.New(sysexits.DataErr, "no descriptor for %s: looked for %s", jname, strings.Join(candidates, " and "))
	}
	if descriptor.HasPath(first, n.Workdir) {
		// Localised for this very workdir (CBSD's jregister here, in a
		// run that did not finish): portable again by the reverse rewrite.
		if portable, err := descriptor.Portable(first, n.Workdir); err == nil {
			return portable, firstAt, nil
		}
	}
	n.Log.Warn("%s has no %s in it: its paths are taken as they are, not made local to %s; check them if it came from another node", firstAt, descriptor.Placeholder, n.Workdir)
	return first, firstAt, nil
}

// Unregister gives jname up: refuse if it runs, leave the descriptor with
// the data, detach, drop the local record, and release the lease last.
func (n *Node) Unregister(ctx context.Context, jname, kind string) error {
	unlock, l, err := n.begin(ctx, jname)
	if err != nil {
		return err
	}
	defer unlock()
	// A dry run prints the whole plan even when it would be refused, and
	// says why after it.
	var refused error
	if l != nil && l.Node != n.Name {
		refused = sysexits.Wrap(sysexits.NoPerm, &lease.HeldError{Lease: *l})
		if !n.DryRun {
			return refused
		}
	}
	rec, err := n.Inv.Load(jname)
	if err != nil {
		return sysexits.Wrap(sysexits.DataErr, err)
	}
	if rec != nil {
		kind = rec.Kind
	}
	s := n.session(jname, kind)
	attached, _ := s.Record()
	if rec == nil && l == nil && attached == nil {
		n.Log.Action("%s is not registered on %s: nothing to do", jname, n.Name)
		return nil
	}
	if err := running.RefuseIfRunning(ctx, n.runner(), n.Config, jname, kind); err != nil {
		if !n.DryRun {
			return err
		}
		refused = cmp.Or(refused, err)
	}
	delegate := n.delegate()
	if n.DryRun {
		fmt.Fprintf(n.Out, "# write %s into the shared system directory\n", descriptorName(jname, kind))
		if err := s.Stop(ctx); err != nil && !plan.IsDryRunFailure(err) {
			return err
		} else if refused == nil {
			refused = err
		}
		fmt.Fprintf(n.Out, "# remove the inventory record, release the lease of %s\n", jname)
		return plan.DryRunFailure(refused)
	}
	_, dumped := os.Stat(n.rcconfPath(jname))
	if rec != nil || delegate || attached != nil || dumped == nil {
		// The descriptor goes onto the shared storage, so that storage
		// must be attached while it is written (it is, unless a crashed run
		// detached it); then the storage is detached.
		err = s.StopAfter(ctx, func() error {
			if kind == Container {
				return n.leaveContainerConfig(s, rec)
			}
			return n.leaveDescriptor(ctx, s, jname, kind, rec, delegate)
		})
	} else {
		err = s.Stop(ctx)
	}
	if err != nil {
		return err
	}
	crashpoint.Here("unregister:detach")
	if err := n.Inv.Remove(jname); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot remove the inventory record: %v", err)
	}
	crashpoint.Here("unregister:record")
	if err := n.Leases.Release(ctx, jname, n.Name); err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	crashpoint.Here("unregister:lease")
	if l != nil {
		n.note(ctx, history.Event{JName: jname, Kind: kind, Event: "unregister", From: n.Name, Generation: l.Generation})
	}
	n.Log.Action("unregistered %s from %s", jname, n.Name)
	return nil
}

// leaveDescriptor writes the portable descriptor into the shared system
// directory, and makes the jail's fstab portable too, as CBSD's junregister
// does (it runs replacewdir on ${mount_fstab}). The descriptor comes from
// CBSD itself with CBSD_DELEGATE (cbsd junregister dumps its database),
// else from the inventory record, else from a copy an operator's own cbsd
// junregister left in jails-rcconf. With none of them, a descriptor already
// on the shared storage stays; otherwise the next node will need rcfile=.
func (n *Node) leaveDescriptor(ctx context.Context, s *attach.Session, jname, kind string, rec *inventory.Record, delegate bool) error {
	shared := filepath.Join(s.Env.Dir(environment.System), descriptor.FileName(jname))
	var portable []byte
	var err error
	switch {
	case delegate:
		if portable, err = n.cbsdUnregister(ctx, jname); err != nil {
			return err
		}
	case rec != nil:
		if portable, err = descriptor.Portable([]byte(rec.Descriptor), n.Workdir); err != nil {
			return sysexits.New(sysexits.Code(err), "the inventory record of %s: %v", jname, err)
		}
	default:
		raw, rerr := safefile.Read(n.rcconfPath(jname), maxDescriptor)
		if rerr != nil {
			if _, serr := os.Stat(shared); serr == nil {
				return nil
			}
			n.Log.Warn("%s is not registered here and has no descriptor (no inventory record, none in %s or on the shared storage): another node will need jregister rcfile=FILE", jname, n.rcconfPath(jname))
			return nil
		}
		portable = raw
	}
	d, err := descriptor.Parse(portable, jname, "the descriptor of "+jname)
	if err != nil {
		return err
	}
	if !delegate {
		// cbsd junregister rewrites the fstab itself; without it, and
		// since the fstab lives on the storage being detached, here.
		if err := n.portableFstab(jname, kind, d); err != nil {
			return err
		}
	}
	if err := safefile.WriteAtomic(shared, portable, 0o644); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot write the descriptor into the shared system directory: %v", err)
	}
	crashpoint.Here("unregister:descriptor")
	return nil
}

// portableFstab rewrites the workdir in the jail's fstab (and fstab.local)
// as CBSDROOT, as cbsd junregister does; CBSD's mountfstab puts the local
// workdir back before it mounts anything (tools/mountfstab). A file that
// already is portable (a crashed run's work) is left as it is.
func (n *Node) portableFstab(jname, kind string, portable *descriptor.Descriptor) error {
	if kind == VM {
		return nil
	}
	fstab := filepath.Join(n.env(jname, kind).Dir(environment.Fstab), "fstab")
	if v := portable.Values["mount_fstab"]; v != "" {
		local, err := descriptor.Localize([]byte(v), n.Workdir)
		if err != nil {
			return err
		}
		fstab = string(local)
	}
	for _, p := range []string{fstab, fstab + ".local"} {
		raw, err := safefile.Read(p, maxDescriptor)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return sysexits.New(sysexits.DataErr, "cannot read the jail fstab %s: %v", p, err)
		}
		if descriptor.IsPortable(raw) && !descriptor.HasPath(raw, n.Workdir) {
			continue
		}
		portable, err := descriptor.Portable(raw, n.Workdir)
		if err != nil {
			return sysexits.New(sysexits.Code(err), "the jail fstab %s: %v", p, err)
		}
		if err := safefile.WriteAtomic(p, portable, 0o644); err != nil {
			return sysexits.New(sysexits.CantCreat, "cannot rewrite the jail fstab %s: %v", p, err)
		}
	}
	return nil
}

func verbFor(op, kind string) string {
	switch kind {
	case VM:
		return "b" + op
	case Container:
		return "c" + op
	}
	return "j" + op
}
