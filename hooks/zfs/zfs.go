// Package zfs attaches an environment's directories from local ZFS datasets:
// each role (data, system, fstab, rcconf) is the dataset
// <ZFS_ROOT>/<jname>/<role>, mounted on the directory CBSD passes for that
// role together with the datasets below it. Missing datasets can be cloned
// from an image snapshot (ZFS_CLONE_FROM), and a pool that lives on shared
// block devices can be imported by mnt-start and exported by mnt-stop
// (ZFS_POOL). mnt-stop and the engine's rollback only unmount and export:
// the only datasets ever destroyed are those a provisioning that failed
// half way had just made (see provision).
package zfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
	"github.com/envhooks/envhooks/lib/zfs"
)

// jnameToken in ZFS_ROOT and ZFS_POOL is replaced by the environment's name.
const jnameToken = "%j"

var (
	rootKey = config.Define(config.Key{Name: "ZFS_ROOT", Check: templateOf(zfs.CheckDataset),
		Doc: "zfs backend: the parent dataset; role <role> of environment <jname> is <ZFS_ROOT>/<jname>/<role> (%j is replaced by the jname)"})
	cloneKey = config.Define(config.Key{Name: "ZFS_CLONE_FROM", Check: emptyOr(zfs.CheckSnapshot),
		Doc: "zfs backend: a snapshot pool/images/base@snap; a missing <role> dataset is cloned from <base>/<role>@snap when that exists, the data dataset from the snapshot itself, and any other missing role is created empty. Empty: never create datasets"})
	noautoKey = config.Define(config.Key{Name: "ZFS_MOUNT_NOAUTO", Default: "0", Check: config.IsBool,
		Doc: "zfs backend: 1 also mounts datasets with canmount=noauto (canmount=off datasets are never mounted)"})
	legacyKey = config.Define(config.Key{Name: "ZFS_MOUNT_LEGACY", Default: "1", Check: config.IsBool,
		Doc: "zfs backend: 1 mounts mountpoint=legacy datasets with mount -t zfs on their place in the tree; 0 leaves them to fstab"})
	poolKey = config.Define(config.Key{Name: "ZFS_POOL", Check: templateOf(zfs.CheckPool),
		Doc: "zfs backend: a pool on shared block devices that mnt-start imports if it is not imported (%j is replaced by the jname) and mnt-stop exports if this node's mnt-start imported it. Empty: no import or export"})
	forceKey = config.Define(config.Key{Name: "ZFS_IMPORT_FORCE", Default: "0", Check: config.IsBool,
		Doc: "zfs backend: 1 imports with zpool import -f, overriding the guard against a pool still imported by another host; only when that host is known to be down"})
	importDirKey = config.Define(config.Key{Name: "ZFS_IMPORT_DIR", Check: absPaths,
		Doc: "zfs backend: directories to search for the pool's devices (zpool import -d), separated by spaces. Empty: zpool's default"})
	noMountKey = config.Define(config.Key{Name: "ZFS_IMPORT_NOMOUNT", Default: "1", Check: config.IsBool,
		Doc: "zfs backend: 1 imports with -N so the import itself mounts nothing; 0 only for zpool versions without -N (zfs-fuse)"})
)

// Backend is the local ZFS backend.
type Backend struct {
	root, pool  string // templates
	cloneFrom   string
	mountNoauto bool
	mountLegacy bool
	importOpts  zfs.ImportOptions
}

// New reads the ZFS_* keys.
func New(cfg *config.Config) (plan.Backend, error) {
	if cfg.Get(rootKey) == "" {
		return nil, sysexits.New(sysexits.Config, "BACKEND=zfs needs ZFS_ROOT, the parent dataset of the environments (such as tank/envs)")
	}
	return &Backend{
		root:        cfg.Get(rootKey),
		pool:        cfg.Get(poolKey),
		cloneFrom:   cfg.Get(cloneKey),
		mountNoauto: cfg.Bool(noautoKey),
		mountLegacy: cfg.Bool(legacyKey),
		importOpts: zfs.ImportOptions{
			NoMount: cfg.Bool(noMountKey),
			Force:   cfg.Bool(forceKey),
			Dirs:    cfg.Words(importDirKey),
		},
	}, nil
}

// Dataset is the dataset that holds role of jname.
func (b *Backend) Dataset(jname string, role environment.Role) string {
	return envDataset(expand(b.root, jname), jname) + "/" + string(role)
}

func envDataset(root, jname string) string { return root + "/" + jname }

func expand(template, jname string) string { return strings.ReplaceAll(template, jnameToken, jname) }

// Steps plans the pool import (when ZFS_POOL is set) and then the dataset
// tree. Both are expanders: what they do depends on what zfs reports when
// they are reached, and the tree can only be listed once the pool is in.
func (b *Backend) Steps(env *environment.Env, roles []environment.Role) ([]plan.Step, error) {
	// CBSD's jnames may hold '@' and '%', which no dataset name can.
	if strings.ContainsAny(env.Name, "@%") {
		return nil, sysexits.New(sysexits.DataErr, "jname %s cannot be part of a ZFS dataset name ('@' and '%%' are not allowed there): the zfs backend cannot hold it", env.Name)
	}
	root := expand(b.root, env.Name)
	if err := zfs.CheckDataset(root); err != nil {
		return nil, sysexits.New(sysexits.Config, "ZFS_ROOT=%q for %s: %v", b.root, env.Name, err)
	}
	var steps []plan.Step
	if b.pool != "" {
		pool := expand(b.pool, env.Name)
		if err := zfs.CheckPool(pool); err != nil {
			return nil, sysexits.New(sysexits.Config, "ZFS_POOL=%q for %s: %v", b.pool, env.Name, err)
		}
		steps = append(steps, &poolImport{pool: pool, opts: b.importOpts})
	}
	var want []environment.Role
	for _, r := range roles {
		if env.Dir(r) != "" {
			want = append(want, r)
		}
	}
	return append(steps, &tree{b: b, env: env, roles: want, root: root}), nil
}

// poolImport imports the pool if it is not imported. A pool that is already
// imported is left alone and not recorded, so mnt-stop exports only a pool
// that a start on this node imported.
type poolImport struct {
	pool string
	opts zfs.ImportOptions
}

func (p *poolImport) String() string                                   { return "import ZFS pool " + p.pool }
func (p *poolImport) Done(context.Context, *plan.System) (bool, error) { return false, nil }
func (p *poolImport) Apply(context.Context, *plan.System) error        { return nil }
func (p *poolImport) Undo() *state.Action                              { return nil }

func (p *poolImport) Expand(ctx context.Context, s *plan.System) ([]plan.Step, error) {
	_, err := query(ctx, s, zfs.PoolImportedArgv(p.pool))
	if err == nil {
		s.Log.Debug("ZFS pool %s is imported already: left as it is", p.pool)
		return nil, nil
	}
	if !notExist(err) {
		return nil, sysexits.New(sysexits.Unavailable, "cannot tell whether ZFS pool %s is imported: %v", p.pool, err)
	}
	return []plan.Step{&importStep{pool: p.pool, argv: zfs.ImportArgv(p.pool, p.opts), force: p.opts.Force}}, nil
}

// importStep imports the pool; its undo exports it.
type importStep struct {
	pool  string
	argv  []string
	force bool
}

func (i *importStep) String() string                                   { return "import ZFS pool " + i.pool }
func (i *importStep) Done(context.Context, *plan.System) (bool, error) { return false, nil }

func (i *importStep) Undo() *state.Action {
	return &state.Action{ID: "zpool-import:" + i.pool, What: i.String(), Kind: state.KindCommand,
		Argv: zfs.ExportArgv(i.pool), OKStderr: []string{"no such pool"}}
}

// Apply imports the pool. zpool refuses a pool that another host may still
// have imported; that is another node owning the environment (77), and the
// way out is never "-f" by reflex, so the message says when it is safe.
func (i *importStep) Apply(ctx context.Context, s *plan.System) error {
	res, err := s.Command(ctx, i.argv...)
	s.Changed()
	if err == nil {
		return nil
	}
	// The host is named on a line of its own, not the last one: read the
	// whole stderr, not the error's summary.
	var re *run.Error
	if errors.As(err, &re) && !re.TimedOut && !i.force {
		if elsewhere, host := zfs.InUseElsewhere(string(res.Stderr) + "\n" + re.Stderr); elsewhere {
			if host == "" {
				host = "another node"
			}
			return sysexits.New(sysexits.NoPerm, "ZFS pool %s is (or was last) imported by %s: stop the environment there and export the pool first; set ZFS_IMPORT_FORCE=1 only if %s is down", i.pool, host, host)
		}
	}
	return sysexits.New(sysexits.Unavailable, "cannot import ZFS pool %s: %v (are its devices visible here? see ZFS_IMPORT_DIR)", i.pool, err)
}

// tree plans the mounts of every role's dataset tree. It looks at
// everything (datasets, mount table, image snapshot) before it returns a
// single step, so that a conflict anywhere changes nothing anywhere.
type tree struct {
	b     *Backend
	env   *environment.Env
	roles []environment.Role
	root  string
}

func (t *tree) String() string                                   { return "plan the ZFS datasets of " + t.env.Name }
func (t *tree) Done(context.Context, *plan.System) (bool, error) { return false, nil }
func (t *tree) Apply(context.Context, *plan.System) error        { return nil }
func (t *tree) Undo() *state.Action                              { return nil }

func (t *tree) Expand(ctx context.Context, s *plan.System) ([]plan.Step, error) {
	envDS := envDataset(t.root, t.env.Name)
	f, err := t.look(ctx, s, envDS)
	if err != nil || !f.visible {
		return nil, err
	}
	byName := map[string]zfs.Dataset{}
	for _, d := range f.datasets {
		byName[d.Name] = d
	}
	table, err := s.Mounts()
	if err != nil {
		return nil, sysexits.Wrap(sysexits.OSErr, err)
	}
	var steps []plan.Step
	var prov *provision
	for _, role := range t.roles {
		ds, target := envDS+"/"+string(role), filepath.Clean(t.env.Dir(role))
		if _, ok := byName[ds]; !ok {
			if t.b.cloneFrom == "" {
				return nil, sysexits.New(sysexits.Unavailable, "dataset %s for the %s directory of %s does not exist: create it (zfs create %s) or set ZFS_CLONE_FROM to clone it from an image snapshot", ds, role, t.env.Name, ds)
			}
			if prov == nil {
				if err := t.checkImage(ctx, s, f); err != nil {
					return nil, err
				}
				prov = &provision{jname: t.env.Name, root: t.root, parallel: parallelCreations()}
				if !f.envExists {
					prov.parent = envDS
				}
			}
			prov.add(role, ds, target, t.b.cloneFrom, f.snaps)
			continue
		}
		if d := byName[ds]; d.Type != "filesystem" {
			return nil, sysexits.New(sysexits.DataErr, "%s for the %s directory of %s is a %s, not a filesystem: it cannot be mounted on %s", ds, role, t.env.Name, d.Type, target)
		}
		more, err := t.planRole(s, table, subtree(f.datasets, ds), target)
		if err != nil {
			return nil, err
		}
		steps = append(steps, more...)
	}
	if prov != nil {
		// Last, so that whatever can fail in the steps of the roles that
		// exist fails before a dataset is made.
		steps = append(steps, prov)
		for _, c := range prov.creations {
			// zfs clone and zfs create mount the new dataset themselves;
			// the mount step claims that mount as this run's work (or
			// mounts it, where they did not).
			m := mountStep(c.ds, c.target, false)
			m.fresh = true
			steps = append(steps, m)
		}
	}
	return steps, nil
}

// found is what the one query before planning found.
type found struct {
	datasets  []zfs.Dataset   // the environment's dataset and everything below it
	envExists bool            // the environment's dataset exists
	snaps     map[string]bool // which of the image snapshots asked about exist
	rootKnown bool            // ZFS_ROOT was looked up (it exists)
	visible   bool            // false only in a dry run before ZFS_POOL is imported
}

// look runs the one query planning needs: the environment's dataset tree
// and, with ZFS_CLONE_FROM, the image snapshots a missing role would be
// cloned from, in a single zfs get that tolerates the names that do not
// exist. ZFS_ROOT cannot be named in it (-r would list every environment
// below it): when the environment's dataset is missing, ZFS_ROOT is looked
// up only where nothing else would find out first. With ZFS_CLONE_FROM, a
// real run learns it from the creation of the environment's dataset, the
// first change it makes, which fails with the same message.
func (t *tree) look(ctx context.Context, s *plan.System, envDS string) (*found, error) {
	snaps := t.imageSnapshots()
	res, err := queryResult(ctx, s, zfs.TreeArgv(envDS, snaps...))
	missing := map[string]bool{}
	if err != nil {
		m, ok := zfs.Missing(res.Stderr, append([]string{envDS}, snaps...))
		var re *run.Error
		if !errors.As(err, &re) || re.TimedOut || re.ExitCode <= 0 || !ok || len(m) == 0 {
			return nil, sysexits.New(sysexits.Unavailable, "cannot list the datasets under %s: %v", envDS, err)
		}
		missing = m
	}
	all, perr := zfs.ParseTree(res.Stdout)
	if perr != nil {
		return nil, sysexits.New(sysexits.Unavailable, "cannot read the datasets under %s: %v", envDS, perr)
	}
	asked := map[string]bool{}
	for _, name := range snaps {
		asked[name] = true
	}
	f := &found{envExists: !missing[envDS], snaps: map[string]bool{}, visible: true}
	for _, d := range all {
		if d.Type == "snapshot" && asked[d.Name] {
			f.snaps[d.Name] = true
			continue
		}
		f.datasets = append(f.datasets, d)
	}
	if f.envExists || (t.b.cloneFrom != "" && !s.DryRun) {
		return f, nil
	}
	visible, err := t.checkRoot(ctx, s)
	f.rootKnown, f.visible = true, visible
	return f, err
}

// imageSnapshots names the snapshots a missing role may be cloned from:
// the image itself and <base>/<role>@<snap> for each role.
func (t *tree) imageSnapshots() []string {
	if t.b.cloneFrom == "" {
		return nil
	}
	base, snap := zfs.SplitSnapshot(t.b.cloneFrom)
	names := []string{t.b.cloneFrom}
	for _, r := range t.roles {
		names = append(names, base+"/"+string(r)+"@"+snap)
	}
	return names
}

// checkRoot fails with a configuration error when ZFS_ROOT does not exist.
// visible is false only in a dry run that cannot see ZFS_ROOT because the
// pool it would import is not imported.
func (t *tree) checkRoot(ctx context.Context, s *plan.System) (visible bool, err error) {
	_, rerr := query(ctx, s, zfs.ExistsArgv(t.root))
	if rerr == nil {
		return true, nil
	}
	if !notExist(rerr) {
		return false, sysexits.New(sysexits.Unavailable, "cannot look up ZFS_ROOT dataset %s: %v", t.root, rerr)
	}
	if s.DryRun && t.b.pool != "" && !t.poolImported(ctx, s) {
		s.Say("# ZFS_ROOT %s is not visible until pool %s is imported: its mounts are not listed", t.root, expand(t.b.pool, t.env.Name))
		return false, nil
	}
	return false, rootMissing(t.root)
}

func rootMissing(root string) error {
	return sysexits.New(sysexits.Config, "ZFS_ROOT dataset %s does not exist: create it (zfs create %s), fix ZFS_ROOT, or set ZFS_POOL if its pool must be imported first", root, root)
}

// checkImage fails when the ZFS_CLONE_FROM snapshot a missing role needs
// does not exist; a missing ZFS_ROOT is reported first, as it is the first
// thing to fix.
func (t *tree) checkImage(ctx context.Context, s *plan.System, f *found) error {
	if f.snaps[t.b.cloneFrom] {
		return nil
	}
	if !f.envExists && !f.rootKnown {
		if _, err := t.checkRoot(ctx, s); err != nil {
			return err
		}
	}
	return sysexits.New(sysexits.Config, "ZFS_CLONE_FROM snapshot %s does not exist: take it (zfs snapshot %s) or fix ZFS_CLONE_FROM", t.b.cloneFrom, t.b.cloneFrom)
}

// poolImported tells a dry run whether ZFS_POOL is imported already (then a
// missing ZFS_ROOT is the configuration error it is, not a pool not yet in).
func (t *tree) poolImported(ctx context.Context, s *plan.System) bool {
	_, err := query(ctx, s, zfs.PoolImportedArgv(expand(t.b.pool, t.env.Name)))
	return err == nil
}

// subtree returns ds and the filesystems below it.
func subtree(all []zfs.Dataset, ds string) []zfs.Dataset {
	var out []zfs.Dataset
	for _, d := range all {
		if (d.Name == ds || strings.HasPrefix(d.Name, ds+"/")) && d.Type == "filesystem" {
			out = append(out, d)
		}
	}
	return out
}

// planned is one dataset of a role's tree and where it goes.
type planned struct {
	zfs.Dataset
	target string
	legacy bool
}

// planRole mounts the role's dataset on target and every dataset below it
// on the matching directory below target, parents first. The role's dataset
// gets mountpoint=target so the datasets below it that inherit their
// mountpoint follow; a dataset with a mountpoint of its own elsewhere is an
// error, because mounting it there would put the environment's data outside
// the environment.
func (t *tree) planRole(s *plan.System, table mounttab.Table, tree []zfs.Dataset, target string) ([]plan.Step, error) {
	top := tree[0]
	effective := map[string]string{} // dataset -> the mountpoint it will have
	var mounts []planned
	for _, d := range tree {
		rel := strings.TrimPrefix(d.Name, top.Name)
		place := filepath.Clean(target + rel)
		var mp string
		switch {
		case d.Name == top.Name && d.Mountpoint == "legacy":
			mp = "legacy"
		case d.Name == top.Name:
			mp = target
		case d.MountpointLocal:
			mp = d.Mountpoint
		default:
			parent := effective[d.Name[:strings.LastIndex(d.Name, "/")]]
			if parent == "legacy" || parent == "none" {
				mp = parent
			} else {
				mp = filepath.Join(parent, d.Name[strings.LastIndex(d.Name, "/")+1:])
			}
		}
		effective[d.Name] = mp
		switch {
		case mp == "none":
			s.Log.Debug("%s has mountpoint=none: not mounted", d.Name)
			continue
		case mp == "legacy" && !t.b.mountLegacy:
			s.Log.Debug("%s has mountpoint=legacy and ZFS_MOUNT_LEGACY=0: left to fstab", d.Name)
			continue
		case mp != "legacy" && filepath.Clean(mp) != place:
			return nil, sysexits.New(sysexits.DataErr, "dataset %s has its own mountpoint %s, outside %s where its environment is mounted: set it to inherit (zfs inherit mountpoint %s) or to legacy", d.Name, mp, place, d.Name)
		}
		switch d.CanMount {
		case "off":
			s.Log.Debug("%s has canmount=off: not mounted", d.Name)
			continue
		case "noauto":
			if !t.b.mountNoauto {
				s.Log.Debug("%s has canmount=noauto and ZFS_MOUNT_NOAUTO=0: not mounted", d.Name)
				continue
			}
		}
		if elsewhere := mountedElsewhere(table, d.Name, place); elsewhere != "" {
			return nil, sysexits.New(sysexits.CantCreat, "dataset %s is mounted on %s, not on %s where %s needs it: unmount it there (umount %s) or fix ZFS_ROOT", d.Name, elsewhere, place, t.env.Name, elsewhere)
		}
		mounts = append(mounts, planned{Dataset: d, target: place, legacy: mp == "legacy"})
	}
	sort.SliceStable(mounts, func(i, j int) bool { return pathLess(mounts[i].target, mounts[j].target) })
	if len(mounts) == 0 || mounts[0].Name != top.Name {
		// Allowed (a role dataset may only hold children, or be left to
		// fstab), but the directory then shows whatever lies beneath it.
		s.Log.Warn("%s is not mounted on %s (canmount=%s, mountpoint=%s): that directory shows only what lies beneath it", top.Name, target, top.CanMount, top.Mountpoint)
	}

	var steps []plan.Step
	if top.Mountpoint != "legacy" && top.Mountpoint != target {
		// Setting the mountpoint of an unmounted dataset whose mountpoint was
		// none mounts it at once, before the mount step could check the
		// target: check it first.
		steps = append(steps, readyTarget(target, top.Name), &change{
			What: fmt.Sprintf("set mountpoint=%s on %s", target, top.Name),
			Argv: zfs.SetMountpointArgv(top.Name, target),
			Tree: top.Name,
		})
	}
	for _, m := range mounts {
		steps = append(steps, mountStep(m.Name, m.target, m.legacy))
	}
	return steps, nil
}

// pathLess orders mount points so that a directory comes before everything
// below it (compare component by component, as zfs mount -a does).
func pathLess(a, b string) bool {
	pa, pb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return len(pa) < len(pb)
}

// mountStep mounts one dataset. Its undo unmounts it only while the mount
// table still shows that dataset there.
func mountStep(ds, target string, legacy bool) *zfsMount {
	m := &plan.Mount{
		Target:      target,
		Want:        want(ds),
		Argv:        zfs.MountArgv(ds),
		UnmountArgv: unmountArgv(ds, target, legacy, false),
		ForceArgv:   unmountArgv(ds, target, legacy, true),
		What:        plan.Describe("mount ZFS dataset", ds, target),
		ErrorCode:   sysexits.Unavailable,
	}
	if legacy {
		m.Argv = legacyMountArgv(ds, target)
		m.What = plan.Describe("mount legacy ZFS dataset", ds, target)
	}
	return &zfsMount{Mount: m}
}

// busyRetry bounds how long a mount that ZFS calls busy is retried.
const busyRetry = 3 * time.Second

// zfsMount retries a mount that fails with "dataset is busy" for a moment:
// right after an unmount (of the same dataset elsewhere a moment ago, or by
// change.settle) ZFS may still be finishing it; zfs-fuse learns of a kernel
// unmount asynchronously and says busy until it has.
//
// A fresh mount step follows the command that created its dataset in this
// run: a mount of that dataset at the target can only be that command's, so
// it is claimed as this run's work (recorded and rolled back) rather than
// taken as found.
type zfsMount struct {
	*plan.Mount
	fresh bool
}

func (m *zfsMount) Done(ctx context.Context, s *plan.System) (bool, error) {
	done, err := m.Mount.Done(ctx, s)
	if m.fresh && done && !s.DryRun {
		return false, nil // Apply claims it
	}
	return done, err
}

func (m *zfsMount) Apply(ctx context.Context, s *plan.System) error {
	if m.fresh && s.DryRun {
		return nil // the creation mounts it: a real run runs nothing here
	}
	if m.fresh {
		if done, err := m.Mount.Done(ctx, s); err != nil || done {
			return err
		}
	}
	deadline := time.Now().Add(busyRetry)
	wait := 50 * time.Millisecond
	for {
		err := m.Mount.Apply(ctx, s)
		if err == nil || s.DryRun || !strings.Contains(err.Error(), "busy") || time.Now().Add(wait).After(deadline) {
			return err
		}
		s.Log.Debug("%s: %v; retrying in %s", m.What, err, wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait *= 2
	}
}

// LinuxLegacyMountArgv and FreeBSDLegacyMountArgv mount a mountpoint=legacy
// dataset; kept on every OS so both syntaxes are tested everywhere.
func LinuxLegacyMountArgv(ds, target string) []string {
	return []string{"mount", "-t", "zfs", ds, target}
}

func FreeBSDLegacyMountArgv(ds, target string) []string {
	return []string{"mount", "-t", "zfs", ds, target}
}

// LinuxUnmountArgv unmounts through the kernel by mount point: OpenZFS and
// zfs-fuse both accept it, and zfs-fuse's own "zfs umount" also unmounts
// the datasets below, which the record undoes one by one itself.
func LinuxUnmountArgv(_, target string, _, force bool) []string {
	if force {
		return []string{"umount", "-f", target}
	}
	return []string{"umount", target}
}

// FreeBSDUnmountArgv unmounts a zfs-mounted dataset with zfs umount (which
// keeps ZFS's view in step) and a legacy one by its mount point.
func FreeBSDUnmountArgv(ds, target string, legacy, force bool) []string {
	if !legacy {
		return zfs.UnmountArgv(ds, force)
	}
	if force {
		return []string{"umount", "-f", target}
	}
	return []string{"umount", target}
}

// mountedElsewhere returns where the mount table shows dataset ds mounted
// other than at place ("" when it is not).
func mountedElsewhere(t mounttab.Table, ds, place string) string {
	for _, m := range t {
		if isZFS(m.FSType) && m.Source == ds && m.Target != place {
			return m.Target
		}
	}
	return ""
}

// readyTarget creates a missing mount point and refuses a non-empty one
// (unless ALLOW_NONEMPTY=1) or one where something other than ds is mounted,
// as the engine's mount step does, for commands that can mount without it
// (setting a mountpoint, cloning, creating). Looking at the directory is
// safe: it is done only when nothing is mounted there.
func readyTarget(target, ds string) plan.Step {
	return &plan.Check{What: "check mount point " + target, Fn: func(_ context.Context, s *plan.System) error {
		return checkTarget(s, target, ds, true)
	}}
}

// checkTarget is readyTarget's check; without create, a missing target is
// left missing (and accepted) for now.
func checkTarget(s *plan.System, target, ds string, create bool) error {
	t, err := s.Mounts()
	if err != nil {
		return sysexits.Wrap(sysexits.OSErr, err)
	}
	if top, mounted := t.Top(target); mounted {
		if t.Matches(top, want(ds)) {
			return nil
		}
		return sysexits.New(sysexits.CantCreat, "%s already has %s mounted, not %s: unmount it or fix the configuration", target, top.Describe(), ds)
	}
	if !create {
		if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	return plan.PrepareTarget(s, target)
}

// change runs zfs set mountpoint, which mounts the dataset and the children
// that inherit it when the old value was none or legacy. Whatever it mounted
// of Tree is unmounted again at once, so that every mount is made by its own
// mount step: recorded, and rolled back if a later step fails. (A mount the
// engine finds already in place is recorded but, not being this run's work,
// never rolled back.)
type change struct {
	What string
	Argv []string
	Tree string // the dataset whose tree the command may mount
}

func (c *change) String() string                                   { return c.What }
func (c *change) Done(context.Context, *plan.System) (bool, error) { return false, nil }
func (c *change) Undo() *state.Action                              { return nil }

func (c *change) Apply(ctx context.Context, s *plan.System) error {
	if s.DryRun {
		_, _ = s.Run.Run(ctx, run.Cmd{Argv: c.Argv}) // a dry run: the runner prints it
		return nil
	}
	before, err := s.Mounts()
	if err != nil {
		return sysexits.Wrap(sysexits.OSErr, err)
	}
	_, runErr := s.Command(ctx, c.Argv...)
	s.Changed()
	// Settle even when the command failed: it may have mounted some.
	if err := c.settle(ctx, s, before); err != nil {
		return err
	}
	if runErr != nil {
		return sysexits.New(sysexits.CantCreat, "cannot %s: %v", c.What, runErr)
	}
	return nil
}

func (c *change) settle(ctx context.Context, s *plan.System, before mounttab.Table) error {
	had := map[mounttab.Mount]bool{}
	for _, m := range before {
		had[m] = true
	}
	after, err := s.Mounts()
	if err != nil {
		return sysexits.Wrap(sysexits.OSErr, err)
	}
	for i := len(after) - 1; i >= 0; i-- { // children before parents
		m := after[i]
		if !isZFS(m.FSType) || had[m] || !(m.Source == c.Tree || strings.HasPrefix(m.Source, c.Tree+"/")) {
			continue
		}
		if _, err := s.Command(ctx, unmountArgv(m.Source, m.Target, false, false)...); err != nil {
			s.Changed()
			return sysexits.New(sysexits.TempFail, "after %s, cannot unmount %s from %s, which zfs mounted by itself (the mount steps mount it in order): %v", c.What, m.Source, m.Target, err)
		}
		s.Log.Debug("unmounted %s from %s, which %s mounted by itself", m.Source, m.Target, c.What)
	}
	s.Changed()
	return nil
}

// query runs a zfs or zpool command that only looks. A dry run runs it for
// real too (the runner decides, from ReadOnly): it changes nothing, and the
// plan printed must be the real one.
func query(ctx context.Context, s *plan.System, argv []string) ([]byte, error) {
	res, err := queryResult(ctx, s, argv)
	return res.Stdout, err
}

// queryResult is query with the command's stderr, also when it failed.
func queryResult(ctx context.Context, s *plan.System, argv []string) (run.Result, error) {
	return s.Run.Run(ctx, run.Cmd{Argv: argv, Timeout: s.CommandTimeout, ReadOnly: true})
}

// notExist reports whether a failed query said "no such dataset/pool"
// (rather than timing out or failing otherwise).
func notExist(err error) bool {
	var re *run.Error
	return errors.As(err, &re) && !re.TimedOut && re.ExitCode > 0 && zfs.NotExist(re.Stderr)
}

// templateOf checks a value that may hold %j by checking it with a stand-in
// jname (every valid jname is valid in a ZFS name).
func templateOf(check func(string) error) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		return check(strings.ReplaceAll(v, jnameToken, "j"))
	}
}

func emptyOr(check func(string) error) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		return check(v)
	}
}

func absPaths(v string) error {
	for _, p := range strings.Fields(v) {
		if err := config.IsAbsPath(p); err != nil {
			return fmt.Errorf("%q: %v", p, err)
		}
	}
	return nil
}
