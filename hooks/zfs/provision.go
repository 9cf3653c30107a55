package zfs

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
	"github.com/envhooks/envhooks/lib/zfs"
)

// cleanupBudget bounds the undoing of a failed provisioning, which must
// happen even when the run's own deadline is what failed it (each command
// still has COMMAND_TIMEOUT).
const cleanupBudget = 30 * time.Second

// provision creates the missing datasets of an environment from the image
// snapshot ZFS_CLONE_FROM=<base>@<snap>: the environment's own dataset
// first (canmount=off: it only holds the others) when it is missing, then
// the missing role datasets, at once where ZFS is in the kernel (see
// parallelCreations). Role R is cloned from <base>/R@<snap>
// when that snapshot exists (an image with one child per role), the data
// role from <base>@<snap> itself otherwise (an image of a root filesystem),
// and any other role is created empty. Clones share every block with the
// image: nothing is copied.
//
// Every dataset creation waits for ZFS to sync a transaction group (two or
// three: the dataset, its properties, the command's line in the pool
// history); creations running at the same time share them, so the roles
// together cost about what one costs.
//
// It is all or nothing by itself: when a creation fails, what this step
// made is unmounted and destroyed again, children before the parent, before
// it returns the error (the engine then rolls back the steps before it).
// Only what a command of this step made is destroyed, one dataset at a
// time, never with -r or -f; a dataset that existed already is left alone.
// Once the step succeeded nothing ever destroys what it made: its Undo is
// nil, and the mount steps that follow record only the mounts, which is
// all mnt-stop undoes.
type provision struct {
	jname     string
	root      string // ZFS_ROOT: named when the parent cannot be made because ZFS_ROOT is missing
	parent    string // the environment's dataset, made first; "" when it exists
	creations []creation
	parallel  bool // run the creations of a wave at once (see parallelCreations)
}

// parallelCreations reports whether creations may run at once: only where
// ZFS is in the kernel. zfs-fuse deadlocks when two of its mounts run at
// the same time (two zfs mount at once hang the next umount of one of them
// at the first try; a zfs clone and a zfs create at once, whose own mounts
// then sometimes overlap, did so once in 40 to 130 tries), and its zfs
// clone and zfs create always mount what they make.
var parallelCreations = kernelZFS

// errNotRun marks a creation not started because one before it failed.
var errNotRun = errors.New("not run")

// creation is one role dataset a provision step makes.
type creation struct {
	ds, target, what string
	argv             []string
}

func (p *provision) add(role environment.Role, ds, target, image string, snaps map[string]bool) {
	base, snap := zfs.SplitSnapshot(image)
	perRole := base + "/" + string(role) + "@" + snap
	c := creation{ds: ds, target: target}
	switch {
	case snaps[perRole]:
		c.what, c.argv = "clone "+perRole+" as "+ds, zfs.CloneArgv(perRole, ds, target)
	case role == environment.Data:
		c.what, c.argv = "clone "+image+" as "+ds, zfs.CloneArgv(image, ds, target)
	default:
		c.what, c.argv = "create empty dataset "+ds+" (the image has no "+perRole+")", zfs.CreateArgv(ds, "mountpoint="+target)
	}
	p.creations = append(p.creations, c)
}

func (p *provision) String() string {
	var names []string
	if p.parent != "" {
		names = append(names, p.parent)
	}
	for _, c := range p.creations {
		names = append(names, c.ds)
	}
	return "create the ZFS datasets of " + p.jname + ": " + strings.Join(names, ", ")
}

func (p *provision) Done(context.Context, *plan.System) (bool, error) { return false, nil }
func (p *provision) Undo() *state.Action                              { return nil }

func (p *provision) parentArgv() []string { return zfs.CreateArgv(p.parent, "canmount=off") }

// waves groups the creations so that one whose mount point lies below
// another's is made after that one is mounted; each wave runs at once, in
// role order. CBSD's directories never nest: one wave.
func (p *provision) waves() [][]creation {
	order := make([]int, len(p.creations))
	for i := range order {
		order[i] = i
	}
	depth := func(i int) int { return strings.Count(p.creations[i].target, "/") }
	sort.SliceStable(order, func(a, b int) bool { return depth(order[a]) < depth(order[b]) })
	level := make([]int, len(p.creations))
	last := 0
	for n, i := range order {
		for _, j := range order[:n] {
			if within(p.creations[i].target, p.creations[j].target) {
				level[i] = max(level[i], level[j]+1)
			}
		}
		last = max(last, level[i])
	}
	waves := make([][]creation, last+1)
	for i, c := range p.creations {
		waves[level[i]] = append(waves[level[i]], c)
	}
	return waves
}

// within reports whether dir is parent or lies below it.
func within(dir, parent string) bool {
	rel, err := filepath.Rel(parent, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func (p *provision) Apply(ctx context.Context, s *plan.System) error {
	waves := p.waves()
	if s.DryRun {
		if p.parent != "" {
			_, _ = s.Run.Run(ctx, run.Cmd{Argv: p.parentArgv()}) // a dry run: the runner prints it
		}
		for _, w := range waves {
			for _, c := range w {
				if err := checkTarget(s, c.target, c.ds, true); err != nil {
					return err
				}
			}
			for _, c := range w {
				_, _ = s.Run.Run(ctx, run.Cmd{Argv: c.argv}) // a dry run: the runner prints it
			}
		}
		return nil
	}
	// Look before making anything: a conflict at a mount point should
	// cost no dataset made and destroyed again. (Missing mount points are
	// made once the parent exists, so that a missing ZFS_ROOT leaves
	// nothing behind.)
	for _, c := range waves[0] {
		if err := checkTarget(s, c.target, c.ds, false); err != nil {
			return err
		}
	}
	var made []string // what this step created, parents first
	if p.parent != "" {
		_, err := s.Command(ctx, p.parentArgv()...)
		if err != nil {
			var re *run.Error
			if errors.As(err, &re) && !re.TimedOut && zfs.ParentMissing(re.Stderr) {
				return rootMissing(p.root)
			}
			cause := sysexits.New(sysexits.CantCreat, "cannot create dataset %s (canmount=off) to hold %s's datasets: %v", p.parent, p.jname, err)
			return p.rollBack(ctx, s, nil, unsure([]string{p.parent}, []error{err}), cause)
		}
		s.Log.Action("created dataset %s (canmount=off) to hold %s's datasets", p.parent, p.jname)
		made = append(made, p.parent)
	}
	for _, w := range waves {
		for _, c := range w {
			if err := checkTarget(s, c.target, c.ds, true); err != nil {
				return p.rollBack(ctx, s, made, nil, err)
			}
		}
		errs := p.create(ctx, s, w)
		s.Changed()
		var cause error
		var failed []string
		var failedErrs []error
		for i, c := range w {
			switch {
			case errs[i] == nil:
				s.Log.Action("%s", c.what)
				made = append(made, c.ds)
				continue
			case errs[i] == errNotRun:
				continue
			}
			failed, failedErrs = append(failed, c.ds), append(failedErrs, errs[i])
			if re := (*run.Error)(nil); errors.As(errs[i], &re) && re.TimedOut {
				s.Log.Warn("%s was killed at its deadline: zfs may still make %s after this run has ended; look with zfs list %s", c.argv[1], c.ds, c.ds)
			}
			if cause == nil {
				cause = sysexits.New(sysexits.CantCreat, "cannot %s: %v", c.what, errs[i])
			}
		}
		if cause != nil {
			return p.rollBack(ctx, s, made, unsure(failed, failedErrs), cause)
		}
	}
	return nil
}

// create runs the creations of one wave, at once when p.parallel, else one
// after the other, stopping at the first that fails. Every command has its
// own deadline; all started are waited for, so that what they made is known
// before anything is undone.
func (p *provision) create(ctx context.Context, s *plan.System, w []creation) []error {
	errs := make([]error, len(w))
	if !p.parallel {
		for i, c := range w {
			if i > 0 && errs[i-1] != nil {
				errs[i] = errNotRun
				continue
			}
			_, errs[i] = s.Command(ctx, c.argv...)
		}
		return errs
	}
	var wg sync.WaitGroup
	for i, c := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Command(ctx, c.argv...)
		}()
	}
	wg.Wait()
	return errs
}

// unsure returns the datasets whose creation failed but may have made them
// anyway (zfs create reports a dataset it made but could not mount as a
// failure; a command killed at its deadline may have got that far): all but
// those zfs said existed already, which are not this run's.
func unsure(names []string, errs []error) []string {
	var out []string
	for i, err := range errs {
		var re *run.Error
		if errors.As(err, &re) && !re.TimedOut && zfs.AlreadyExists(re.Stderr) {
			continue
		}
		out = append(out, names[i])
	}
	return out
}

// rollBack undoes a failed provisioning: it unmounts what zfs mounted of
// the datasets this step made and destroys them, children first, and
// returns cause, extended with what could not be undone. made were made by
// this step; of maybe, those that exist now were too (they did not exist
// when the step was planned, and zfs did not say they existed already).
func (p *provision) rollBack(ctx context.Context, s *plan.System, made, maybe []string, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBudget)
	defer cancel()
	if len(maybe) > 0 {
		res, err := s.Command(ctx, zfs.ExistsArgv(maybe[0], maybe[1:]...)...)
		if missing, ok := zfs.Missing(res.Stderr, maybe); err != nil && (!ok || len(missing) == 0) {
			s.Log.Warn("rollback: cannot tell whether %s exist: %v", strings.Join(maybe, ", "), err)
		}
		exists := map[string]bool{}
		for _, name := range strings.Fields(string(res.Stdout)) {
			exists[name] = true
		}
		for _, name := range maybe {
			if exists[name] {
				made = append(made, name)
			}
		}
	}
	if len(made) == 0 {
		return cause
	}
	ours := map[string]bool{}
	for _, ds := range made {
		ours[ds] = true
	}
	var left []string
	table, err := s.Mounts()
	if err != nil {
		s.Log.Error("rollback: %v", err)
	}
	for i := len(table) - 1; i >= 0; i-- { // children before parents
		m := table[i]
		if !isZFS(m.FSType) || !ours[m.Source] {
			continue
		}
		if _, err := s.Command(ctx, unmountArgv(m.Source, m.Target, false, false)...); err != nil {
			s.Log.Warn("rollback: cannot unmount %s from %s: %v", m.Source, m.Target, err)
			left = append(left, m.Source+" (mounted on "+m.Target+")")
			delete(ours, m.Source)
		}
	}
	s.Changed()
	for i := len(made) - 1; i >= 0; i-- {
		ds := made[i]
		if !ours[ds] {
			continue
		}
		if err := destroy(ctx, s, ds); err != nil {
			s.Log.Warn("rollback: cannot destroy dataset %s, which this run created: %v", ds, err)
			left = append(left, ds)
			continue
		}
		s.Log.Action("rolled back: destroyed dataset %s, which this run created", ds)
	}
	if len(left) == 0 {
		return cause
	}
	return sysexits.New(sysexits.Code(cause), "%v; the rollback left what this run created: %s (zfs destroy it, or start again to use it)", cause, strings.Join(left, ", "))
}

// destroy destroys one dataset this run made, retrying for a moment while
// ZFS calls it busy (zfs-fuse does right after an unmount). A dataset that
// is gone already is success.
func destroy(ctx context.Context, s *plan.System, ds string) error {
	deadline := time.Now().Add(busyRetry)
	wait := 50 * time.Millisecond
	for {
		res, err := s.Command(ctx, zfs.DestroyArgv(ds)...)
		if err == nil || notExist(err) {
			return nil
		}
		var re *run.Error
		if !errors.As(err, &re) || re.TimedOut || !zfs.IsBusy(re.Stderr) || time.Now().Add(wait).After(deadline) {
			// zfs ends a refusal with the names of what is in the way;
			// its first line says why.
			if why, _, _ := strings.Cut(strings.TrimSpace(string(res.Stderr)), "\n"); why != "" && re != nil && !re.TimedOut {
				return errors.New(why)
			}
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait *= 2
	}
}
