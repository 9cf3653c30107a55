package zfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// fakeZFS answers the read-only queries from a scripted pool and records
// everything else.
type fakeZFS struct {
	datasets  []string // "name type mountpoint mountpoint-source canmount", space separated
	snapshots []string
	pools     []string
}

func (f *fakeZFS) respond(c run.Cmd) (run.Result, error) {
	a := c.Argv
	missing := func(msg string) (run.Result, error) {
		return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: msg}
	}
	switch {
	case a[0] == "zpool" && a[1] == "list":
		for _, p := range f.pools {
			if p == a[len(a)-1] {
				return run.Result{Stdout: []byte(p + "\n")}, nil
			}
		}
		return missing(fmt.Sprintf("cannot open '%s': no such pool", a[len(a)-1]))
	case a[0] == "zfs" && a[1] == "get":
		root := a[len(a)-1]
		var out strings.Builder
		for _, d := range f.datasets {
			w := strings.Fields(d)
			if w[0] == root || strings.HasPrefix(w[0], root+"/") {
				src := strings.ReplaceAll(w[3], "_", " ")
				fmt.Fprintf(&out, "%s\ttype\t%s\t-\n%s\tmountpoint\t%s\t%s\n%s\tcanmount\t%s\t%s\n", w[0], w[1], w[0], w[2], src, w[0], w[4], "default")
			}
		}
		if out.Len() == 0 {
			return missing(fmt.Sprintf("cannot open '%s': dataset does not exist", root))
		}
		return run.Result{Stdout: []byte(out.String())}, nil
	case a[0] == "zfs" && a[1] == "list" && a[len(a)-3] == "-d":
		base, depth := a[len(a)-1], strings.Count(a[len(a)-1], "/")+int(a[len(a)-2][0]-'0')
		var out strings.Builder
		for _, s := range f.snapshots {
			ds, _, _ := strings.Cut(s, "@")
			if (ds == base || strings.HasPrefix(ds, base+"/")) && strings.Count(s, "/") < depth {
				out.WriteString(s + "\n")
			}
		}
		if out.Len() == 0 {
			return missing(fmt.Sprintf("cannot open '%s': dataset does not exist", base))
		}
		return run.Result{Stdout: []byte(out.String())}, nil
	case a[0] == "zfs" && a[1] == "list":
		name := a[len(a)-1]
		for _, s := range f.snapshots {
			if s == name {
				return run.Result{Stdout: []byte(name + "\n")}, nil
			}
		}
		for _, d := range f.datasets {
			if strings.Fields(d)[0] == name && !strings.Contains(strings.Join(a, " "), "-t snapshot") {
				return run.Result{Stdout: []byte(name + "\n")}, nil
			}
		}
		return missing(fmt.Sprintf("cannot open '%s': dataset does not exist", name))
	}
	return run.Result{}, nil
}

type rig struct {
	fz    *fakeZFS
	rec   *run.Recorder
	table mounttab.Table
	sys   *plan.System
	env   *environment.Env
	dir   string
	log   bytes.Buffer
}

func newRig(t *testing.T, datasets ...string) *rig {
	r := &rig{fz: &fakeZFS{datasets: datasets}, dir: t.TempDir()}
	r.rec = &run.Recorder{Respond: r.fz.respond}
	r.sys = &plan.System{Run: r.rec, Log: logging.NewTo("test", &r.log, true), Out: &bytes.Buffer{},
		CommandTimeout: 5 * time.Second, UnmountTimeout: time.Second,
		ReadMounts: func() (mounttab.Table, error) { return r.table, nil }}
	r.env = &environment.Env{Name: "web1", Dirs: map[environment.Role]string{
		environment.Data:   filepath.Join(r.dir, "jails-data", "web1-data"),
		environment.System: filepath.Join(r.dir, "jails-system", "web1"),
	}}
	return r
}

func (r *rig) backend(t *testing.T, kv ...string) *Backend {
	t.Helper()
	cfg, err := config.Load(config.Sources{Environ: append([]string{"ZFS_ROOT=tank/envs"}, kv...)})
	require.NoError(t, err)
	b, err := New(cfg)
	require.NoError(t, err)
	return b.(*Backend)
}

// expand runs the backend's expanders in order, as the engine would, and
// returns the concrete steps.
func (r *rig) expand(t *testing.T, b *Backend, roles ...environment.Role) ([]plan.Step, error) {
	t.Helper()
	if roles == nil {
		roles = []environment.Role{environment.Data, environment.System}
	}
	top, err := b.Steps(r.env, roles)
	require.NoError(t, err)
	var out []plan.Step
	for _, st := range top {
		if x, ok := st.(plan.Expander); ok {
			more, err := x.Expand(context.Background(), r.sys)
			if err != nil {
				return out, err
			}
			out = append(out, more...)
			continue
		}
		out = append(out, st)
	}
	return out, nil
}

// argvs lists what the steps would run: commands and mounts.
func argvs(steps []plan.Step) [][]string {
	var out [][]string
	for _, st := range steps {
		switch s := st.(type) {
		case *plan.Command:
			out = append(out, s.Cmd.Argv)
		case *change:
			out = append(out, s.Argv)
		case *zfsMount:
			out = append(out, s.Argv)
		}
	}
	return out
}

func (r *rig) data() string   { return r.env.Dir(environment.Data) }
func (r *rig) system() string { return r.env.Dir(environment.System) }

func TestTreeMountsParentsFirstHonouringCanmountAndLegacy(t *testing.T) {
	r := newRig(t,
		"tank/envs/web1 filesystem none inherited_from_tank off",
		"tank/envs/web1/data filesystem none inherited_from_tank on",
		"tank/envs/web1/data/var filesystem none inherited_from_tank on",
		"tank/envs/web1/data/usr filesystem none inherited_from_tank on",
		"tank/envs/web1/data/usr/local filesystem none inherited_from_tank on",
		"tank/envs/web1/data/noauto filesystem none inherited_from_tank noauto",
		"tank/envs/web1/data/off filesystem none inherited_from_tank off",
		"tank/envs/web1/data/off/inner filesystem none inherited_from_tank on",
		"tank/envs/web1/data/.m filesystem legacy local on",
		"tank/envs/web1/data/jails filesystem legacy local on",
		"tank/envs/web1/data/jails/14 filesystem legacy inherited_from_tank/envs/web1/data/jails on",
		"tank/envs/web1/data@snap snapshot - - -",
		"tank/envs/web1/system filesystem /usr/jails/jails-system/web1-old local on",
	)
	b := r.backend(t)
	steps, err := r.expand(t, b)
	require.NoError(t, err)
	d, s := r.data(), r.system()
	assert.Equal(t, [][]string{
		{"zfs", "set", "mountpoint=" + d, "tank/envs/web1/data"},
		{"zfs", "mount", "tank/envs/web1/data"},
		{"mount", "-t", "zfs", "tank/envs/web1/data/.m", d + "/.m"},
		{"mount", "-t", "zfs", "tank/envs/web1/data/jails", d + "/jails"},
		{"mount", "-t", "zfs", "tank/envs/web1/data/jails/14", d + "/jails/14"},
		{"zfs", "mount", "tank/envs/web1/data/off/inner"},
		{"zfs", "mount", "tank/envs/web1/data/usr"},
		{"zfs", "mount", "tank/envs/web1/data/usr/local"},
		{"zfs", "mount", "tank/envs/web1/data/var"},
		{"zfs", "set", "mountpoint=" + s, "tank/envs/web1/system"},
		{"zfs", "mount", "tank/envs/web1/system"},
	}, argvs(steps))
	assert.Len(t, r.rec.Argvs(), 1, "planning ran only the one tree query: %v", r.rec.Argvs())

	// The records undo each mount by its own target, children first.
	var m *plan.Mount
	for _, st := range steps {
		if mm, ok := st.(*zfsMount); ok && mm.Target == d+"/usr/local" {
			m = mm.Mount
		}
	}
	require.NotNil(t, m)
	assert.Equal(t, mounttab.Want{Source: "tank/envs/web1/data/usr/local"}, m.Want)
	assert.Equal(t, []string{"umount", d + "/usr/local"}, m.Undo().Argv)
	assert.Equal(t, state.KindUnmount, m.Undo().Kind)

	r.rec.Cmds = nil
	steps, err = r.expand(t, r.backend(t, "ZFS_MOUNT_NOAUTO=1", "ZFS_MOUNT_LEGACY=0"))
	require.NoError(t, err)
	got := argvs(steps)
	assert.Contains(t, got, []string{"zfs", "mount", "tank/envs/web1/data/noauto"})
	for _, a := range got {
		assert.NotEqual(t, "mount", a[0], "legacy datasets left to fstab: %v", a)
	}
}

func TestFreeBSDAndLinuxArgv(t *testing.T) {
	assert.Equal(t, []string{"mount", "-t", "zfs", "zroot/poudriere/data/.m", "/usr/local/poudriere/data/.m"},
		FreeBSDLegacyMountArgv("zroot/poudriere/data/.m", "/usr/local/poudriere/data/.m"))
	assert.Equal(t, []string{"umount", "/p/.m"}, FreeBSDUnmountArgv("zroot/p/.m", "/p/.m", true, false))
	assert.Equal(t, []string{"umount", "-f", "/p/.m"}, FreeBSDUnmountArgv("zroot/p/.m", "/p/.m", true, true))
	assert.Equal(t, []string{"zfs", "umount", "zroot/p"}, FreeBSDUnmountArgv("zroot/p", "/p", false, false))
	assert.Equal(t, []string{"zfs", "umount", "-f", "zroot/p"}, FreeBSDUnmountArgv("zroot/p", "/p", false, true))
	assert.Equal(t, []string{"mount", "-t", "zfs", "tank/a", "/a"}, LinuxLegacyMountArgv("tank/a", "/a"))
	assert.Equal(t, []string{"umount", "/a"}, LinuxUnmountArgv("tank/a", "/a", false, false))
	assert.Equal(t, []string{"umount", "-f", "/a"}, LinuxUnmountArgv("tank/a", "/a", true, true))
}

func TestIdempotentTreePlansNoChange(t *testing.T) {
	r := newRig(t,
		"tank/envs/web1/data filesystem "+"X"+" local on",
		"tank/envs/web1/system filesystem "+"Y"+" local on",
	)
	r.fz.datasets[0] = strings.Replace(r.fz.datasets[0], "X", r.data(), 1)
	r.fz.datasets[1] = strings.Replace(r.fz.datasets[1], "Y", r.system(), 1)
	steps, err := r.expand(t, r.backend(t))
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"zfs", "mount", "tank/envs/web1/data"}, {"zfs", "mount", "tank/envs/web1/system"}}, argvs(steps),
		"no zfs set when the mountpoint is already right")
}

func TestDatasetMountedElsewhereIsAnError(t *testing.T) {
	r := newRig(t,
		"tank/envs/web1/data filesystem /tank/envs/web1/data inherited_from_tank on",
		"tank/envs/web1/system filesystem none inherited_from_tank on",
	)
	r.table = mounttab.Table{{Source: "tank/envs/web1/data", Target: "/tank/envs/web1/data", FSType: "zfs"}}
	steps, err := r.expand(t, r.backend(t))
	require.Error(t, err)
	assert.Equal(t, sysexits.CantCreat, sysexits.Code(err))
	assert.Contains(t, err.Error(), "mounted on /tank/envs/web1/data")
	assert.Empty(t, steps)
}

func TestChildWithItsOwnMountpointIsRefused(t *testing.T) {
	r := newRig(t,
		"tank/envs/web1/data filesystem none inherited_from_tank on",
		"tank/envs/web1/data/x filesystem /srv/x local on",
		"tank/envs/web1/system filesystem none inherited_from_tank on",
	)
	_, err := r.expand(t, r.backend(t))
	require.Error(t, err)
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
	assert.Contains(t, err.Error(), "zfs inherit mountpoint tank/envs/web1/data/x")
}

func TestMissingDatasetWithoutImage(t *testing.T) {
	r := newRig(t, "tank/envs filesystem none local on", "tank/envs/web1/data filesystem none inherited_from_tank on")
	_, err := r.expand(t, r.backend(t))
	require.Error(t, err)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Contains(t, err.Error(), "tank/envs/web1/system")
	assert.Contains(t, err.Error(), "ZFS_CLONE_FROM")
}

func TestRootThatDoesNotExist(t *testing.T) {
	r := newRig(t)
	_, err := r.expand(t, r.backend(t))
	require.Error(t, err)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Contains(t, err.Error(), "ZFS_ROOT dataset tank/envs does not exist")
}

func TestCloneFromImage(t *testing.T) {
	r := newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1", "tank/images/base/system@v1"}
	r.env.Dirs[environment.Fstab] = filepath.Join(r.dir, "jails-fstab", "web1")
	steps, err := r.expand(t, r.backend(t, "ZFS_CLONE_FROM=tank/images/base@v1"), environment.Data, environment.System, environment.Fstab)
	require.NoError(t, err)
	d, s, f := r.data(), r.system(), r.env.Dir(environment.Fstab)
	assert.Equal(t, [][]string{
		{"zfs", "create", "-o", "canmount=off", "tank/envs/web1"},
		{"zfs", "clone", "-o", "mountpoint=" + d, "tank/images/base@v1", "tank/envs/web1/data"},
		{"zfs", "mount", "tank/envs/web1/data"},
		{"zfs", "clone", "-o", "mountpoint=" + s, "tank/images/base/system@v1", "tank/envs/web1/system"},
		{"zfs", "mount", "tank/envs/web1/system"},
		{"zfs", "create", "-o", "mountpoint=" + f, "tank/envs/web1/fstab"},
		{"zfs", "mount", "tank/envs/web1/fstab"},
	}, argvs(steps))
	for _, st := range steps {
		if u := st.Undo(); u != nil {
			assert.NotContains(t, strings.Join(u.Argv, " "), "destroy", "nothing is ever destroyed")
			assert.Equal(t, state.KindUnmount, u.Kind, "only mounts are undone: %v", u.Argv)
		}
	}
}

func TestCloneSourceThatDoesNotExist(t *testing.T) {
	r := newRig(t, "tank/envs filesystem none local on")
	_, err := r.expand(t, r.backend(t, "ZFS_CLONE_FROM=tank/images/base@nope"))
	require.Error(t, err)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Contains(t, err.Error(), "ZFS_CLONE_FROM snapshot tank/images/base@nope does not exist")
}

func TestBadConfigValues(t *testing.T) {
	for _, kv := range []string{
		"ZFS_ROOT=tank/my envs",
		"ZFS_ROOT=tank/envs@snap",
		"ZFS_ROOT=/tank/envs",
		"ZFS_CLONE_FROM=tank/images/base",
		"ZFS_CLONE_FROM=tank/images/base@a b",
		"ZFS_POOL=tank/x",
		"ZFS_IMPORT_DIR=relative/dir",
		"ZFS_IMPORT_FORCE=maybe",
	} {
		_, err := config.Load(config.Sources{Environ: []string{kv}})
		if assert.Error(t, err, kv) {
			assert.Equal(t, sysexits.Config, sysexits.Code(err), kv)
			assert.Contains(t, err.Error(), strings.SplitN(kv, "=", 2)[0], kv)
		}
	}
	cfg, err := config.Load(config.Sources{Environ: []string{"ZFS_POOL=%j"}})
	require.NoError(t, err)
	_, err = New(cfg)
	assert.Equal(t, sysexits.Config, sysexits.Code(err), "ZFS_ROOT is required")

	// A template that only a real jname makes invalid is caught when planning.
	r := newRig(t)
	r.env.Name = "1web"
	b := r.backend(t, "ZFS_POOL=%j")
	_, err = b.Steps(r.env, []environment.Role{environment.Data})
	require.Error(t, err)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Contains(t, err.Error(), "begin with a letter")
}

// TestPoolImportRecordedAndExportedOnlyWhenImportedHere runs the engine, so
// the record is what mnt-stop will undo.
func TestPoolImportRecordedAndExportedOnlyWhenImportedHere(t *testing.T) {
	r := newRig(t)
	r.fz.datasets = []string{
		"envs_web1/web1/data filesystem " + r.data() + " local on",
		"envs_web1/web1/system filesystem " + r.system() + " local on",
	}
	// "zfs mount" shows up in the fake mount table, so the mounts verify.
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if c.Argv[0] == "zfs" && c.Argv[1] == "mount" {
			ds := c.Argv[2]
			target := r.data()
			if strings.HasSuffix(ds, "system") {
				target = r.system()
			}
			r.table = append(r.table, mounttab.Mount{Source: ds, Target: target, FSType: "zfs"})
		}
		if c.Argv[0] == "umount" {
			r.table = r.table[:len(r.table)-1]
		}
		if c.Argv[0] == "zpool" && c.Argv[1] == "import" {
			r.fz.pools = []string{"envs_web1"}
		}
		return r.fz.respond(c)
	}
	eng := &plan.Engine{Sys: r.sys, Store: state.Store{Dir: filepath.Join(r.dir, "state")}}
	cfg, err := config.Load(config.Sources{Environ: []string{"ZFS_ROOT=envs_%j", "ZFS_POOL=envs_%j", "ZFS_IMPORT_DIR=/dev/shared"}})
	require.NoError(t, err)
	b, err := New(cfg)
	require.NoError(t, err)
	steps, err := b.Steps(r.env, []environment.Role{environment.Data, environment.System})
	require.NoError(t, err)

	base := state.Record{JName: "web1", Backend: "zfs"}
	require.NoError(t, eng.Attach(context.Background(), base, steps))
	assert.Contains(t, r.rec.Argvs(), []string{"zpool", "import", "-N", "-o", "cachefile=none", "-d", "/dev/shared", "envs_web1"})
	for _, a := range r.rec.Argvs() {
		assert.NotContains(t, a, "-f", "never -f unless ZFS_IMPORT_FORCE=1")
	}
	rec, err := eng.Record("web1")
	require.NoError(t, err)
	require.Len(t, rec.Actions, 3)
	assert.Equal(t, []string{"zpool", "export", "envs_web1"}, rec.Actions[0].Argv, "the import is recorded first, so it is undone last")

	// Second run: nothing imported, nothing mounted, the record unchanged.
	r.rec.Cmds = nil
	require.NoError(t, eng.Attach(context.Background(), base, steps))
	for _, a := range r.rec.Argvs() {
		assert.NotEqual(t, "import", a[1], "already imported")
		assert.NotEqual(t, "mount", a[1], "already mounted")
	}
	again, _ := eng.Record("web1")
	assert.Equal(t, rec.Actions, again.Actions)

	r.rec.Cmds = nil
	require.NoError(t, eng.Detach(context.Background(), "web1"))
	assert.Equal(t, [][]string{{"umount", r.system()}, {"umount", r.data()}, {"zpool", "export", "envs_web1"}}, r.rec.Argvs())
}

func TestPoolImportedByOthersIsNotRecorded(t *testing.T) {
	r := newRig(t)
	r.fz.pools = []string{"shared"}
	b := r.backend(t, "ZFS_POOL=shared", "ZFS_IMPORT_FORCE=1")
	top, err := b.Steps(r.env, []environment.Role{environment.Data})
	require.NoError(t, err)
	more, err := top[0].(plan.Expander).Expand(context.Background(), r.sys)
	require.NoError(t, err)
	assert.Empty(t, more, "a pool imported already is not imported, nor recorded for export")

	r.fz.pools = nil
	more, err = top[0].(plan.Expander).Expand(context.Background(), r.sys)
	require.NoError(t, err)
	require.Len(t, more, 1)
	assert.Equal(t, []string{"zpool", "import", "-N", "-o", "cachefile=none", "-f", "shared"}, more[0].(*importStep).argv)
}

func TestPoolInUseOnAnotherNodeIs77(t *testing.T) {
	r := newRig(t)
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if c.Argv[1] == "import" {
			return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: "cannot import 'shared': pool may be in use from other system, it was last accessed by node2 (hostid: 0x1234)"}
		}
		return r.fz.respond(c)
	}
	eng := &plan.Engine{Sys: r.sys, Store: state.Store{Dir: filepath.Join(r.dir, "state")}}
	steps, err := r.backend(t, "ZFS_POOL=shared").Steps(r.env, []environment.Role{environment.Data})
	require.NoError(t, err)
	err = eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps)
	require.Error(t, err)
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
	assert.Contains(t, err.Error(), "ZFS_IMPORT_FORCE=1 only if that node is down")
	assert.Contains(t, err.Error(), "last accessed by node2")

	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if c.Argv[1] == "import" {
			return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: "cannot import 'shared': no such pool available"}
		}
		return r.fz.respond(c)
	}
	err = eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Contains(t, err.Error(), "ZFS_IMPORT_DIR")
}

func TestVolumeAsRoleIs65(t *testing.T) {
	r := newRig(t, "tank/envs/web1/data volume - - -", "tank/envs/web1/system filesystem none inherited_from_tank on")
	_, err := r.expand(t, r.backend(t))
	require.Error(t, err)
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
	assert.Contains(t, err.Error(), "is a volume, not a filesystem")
}

func TestForeignMountAtTargetBeforeSetIs73(t *testing.T) {
	r := newRig(t, "tank/envs/web1/data filesystem none inherited_from_tank on")
	r.table = mounttab.Table{{Source: "tmpfs", Target: r.data(), FSType: "tmpfs"}}
	eng := &plan.Engine{Sys: r.sys, Store: state.Store{Dir: filepath.Join(r.dir, "state")}}
	steps, err := r.backend(t).Steps(r.env, []environment.Role{environment.Data})
	require.NoError(t, err)
	err = eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps)
	require.Error(t, err)
	assert.Equal(t, sysexits.CantCreat, sysexits.Code(err))
	assert.Contains(t, err.Error(), "already has tmpfs (tmpfs) mounted")
	for _, a := range r.rec.Argvs() {
		assert.NotEqual(t, "set", a[1], "the mountpoint is not touched")
	}
}

// TestAutoMountsAreMadeByTheirOwnSteps: zfs set mountpoint mounts the tree
// by itself when the old value was none; those mounts are undone at once and
// made again by the mount steps, so that a later failure rolls them back.
func TestAutoMountsAreMadeByTheirOwnSteps(t *testing.T) {
	r := newRig(t,
		"tank/envs/web1/data filesystem none inherited_from_tank on",
		"tank/envs/web1/data/usr filesystem none inherited_from_tank on",
	)
	d := r.data()
	failMount := ""
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		a := c.Argv
		switch {
		case a[0] == "zfs" && a[1] == "set":
			r.table = append(r.table,
				mounttab.Mount{Source: "tank/envs/web1/data", Target: d, FSType: "zfs"},
				mounttab.Mount{Source: "tank/envs/web1/data/usr", Target: d + "/usr", FSType: "zfs"})
		case a[0] == "zfs" && a[1] == "mount":
			if a[2] == failMount {
				return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: "cannot mount: I/O error"}
			}
			target := d + strings.TrimPrefix(a[2], "tank/envs/web1/data")
			r.table = append(r.table, mounttab.Mount{Source: a[2], Target: target, FSType: "zfs"})
		case a[0] == "umount":
			for i := len(r.table) - 1; i >= 0; i-- {
				if r.table[i].Target == a[1] {
					r.table = append(r.table[:i], r.table[i+1:]...)
					break
				}
			}
		}
		return r.fz.respond(c)
	}
	eng := &plan.Engine{Sys: r.sys, Store: state.Store{Dir: filepath.Join(r.dir, "state")}}
	b := r.backend(t)
	steps, err := b.Steps(r.env, []environment.Role{environment.Data})
	require.NoError(t, err)
	require.NoError(t, eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps))
	assert.Equal(t, [][]string{
		zfsGet("tank/envs/web1"),
		{"zfs", "set", "mountpoint=" + d, "tank/envs/web1/data"},
		{"umount", d + "/usr"},
		{"umount", d},
		{"zfs", "mount", "tank/envs/web1/data"},
		{"zfs", "mount", "tank/envs/web1/data/usr"},
	}, r.rec.Argvs())
	rec, _ := eng.Record("web1")
	require.Len(t, rec.Actions, 2, "both mounts are this run's, recorded")
	require.NoError(t, eng.Detach(context.Background(), "web1"))
	assert.Empty(t, r.table)

	// The same with the child's mount failing: the parent is rolled back.
	// (The fake mounts leave the usr directory made for the child in the
	// target itself.)
	r.sys.AllowNonEmpty = true
	r.rec.Cmds, failMount = nil, "tank/envs/web1/data/usr"
	require.NoError(t, os.RemoveAll(filepath.Join(r.dir, "state")))
	err = eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps)
	require.Error(t, err)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Empty(t, r.table, "everything this run mounted is unmounted again")
	assert.Equal(t, []string{"umount", d}, r.rec.Argvs()[len(r.rec.Argvs())-1])
}

func zfsGet(ds string) []string {
	return []string{"zfs", "get", "-H", "-o", "name,property,value,source", "-r", "type,mountpoint,canmount", ds}
}

func TestMountRetriedWhileZFSSaysBusy(t *testing.T) {
	r := newRig(t, "tank/envs/web1/data filesystem X local on")
	d := r.data()
	r.fz.datasets[0] = strings.Replace(r.fz.datasets[0], "X", d, 1)
	busy := 2
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if c.Argv[0] == "zfs" && c.Argv[1] == "mount" {
			if busy > 0 {
				busy--
				return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: "cannot mount 'tank/envs/web1/data': mountpoint or dataset is busy"}
			}
			r.table = append(r.table, mounttab.Mount{Source: c.Argv[2], Target: d, FSType: "fuse.zfs"})
		}
		return r.fz.respond(c)
	}
	eng := &plan.Engine{Sys: r.sys, Store: state.Store{Dir: filepath.Join(r.dir, "state")}}
	steps, err := r.backend(t).Steps(r.env, []environment.Role{environment.Data})
	require.NoError(t, err)
	require.NoError(t, eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps))
	assert.Equal(t, 0, busy)
	assert.Len(t, r.table, 1)

	// Any other failure is not retried.
	r.table, busy = nil, 0
	r.rec.Cmds = nil
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if c.Argv[0] == "zfs" && c.Argv[1] == "mount" {
			return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: "cannot mount: I/O error"}
		}
		return r.fz.respond(c)
	}
	require.NoError(t, os.RemoveAll(filepath.Join(r.dir, "state")))
	err = eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps)
	require.Error(t, err)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Len(t, r.rec.Argvs(), 2, "one query, one mount: %v", r.rec.Argvs())
}

// TestCloneMountIsThisRunsWork: zfs clone mounts the clone by itself; the
// mount step claims it, so a later failure unmounts it again (and destroys
// nothing).
func TestCloneMountIsThisRunsWork(t *testing.T) {
	r := newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1"}
	d := r.data()
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		a := c.Argv
		switch {
		case a[0] == "zfs" && a[1] == "clone":
			r.table = append(r.table, mounttab.Mount{Source: a[len(a)-1], Target: d, FSType: "zfs"})
		case a[0] == "zfs" && a[1] == "create" && strings.HasSuffix(a[len(a)-1], "/system"):
			return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: "cannot create: out of space"}
		case a[0] == "umount":
			r.table = nil
		}
		return r.fz.respond(c)
	}
	eng := &plan.Engine{Sys: r.sys, Store: state.Store{Dir: filepath.Join(r.dir, "state")}}
	steps, err := r.backend(t, "ZFS_CLONE_FROM=tank/images/base@v1").Steps(r.env, []environment.Role{environment.Data, environment.System})
	require.NoError(t, err)
	err = eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps)
	require.Error(t, err)
	assert.Equal(t, sysexits.CantCreat, sysexits.Code(err))
	assert.Contains(t, err.Error(), "create empty dataset tank/envs/web1/system")
	var tail []string
	for _, a := range r.rec.Argvs() {
		tail = append(tail, strings.Join(a[:2], " "))
		assert.NotEqual(t, "destroy", a[1])
	}
	assert.Equal(t, []string{"zfs get", "zfs list", "zfs list", "zfs create", "zfs clone", "zfs create", "umount " + d}, tail)
	assert.Empty(t, r.table, "the clone's mount is rolled back")
}

// TestExampleConfigsLoad keeps the examples in step with the keys.
func TestExampleConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("../../examples/zfs/*.conf")
	more, _ := filepath.Glob("../../examples/zfs/*/*.conf")
	files = append(files, more...)
	require.GreaterOrEqual(t, len(files), 3)
	for _, f := range files {
		cfg, err := config.LoadFile(f)
		require.NoError(t, err, f)
		assert.Empty(t, cfg.Warnings, f)
		assert.Equal(t, "zfs", cfg.Get(config.Backend), f)
		_, err = New(cfg)
		assert.NoError(t, err, f)
	}
}

func TestUnmountedRoleDatasetIsWarned(t *testing.T) {
	r := newRig(t,
		"tank/envs/web1/data filesystem none inherited_from_tank off",
		"tank/envs/web1/data/usr filesystem none inherited_from_tank on",
	)
	steps, err := r.expand(t, r.backend(t), environment.Data)
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		{"zfs", "set", "mountpoint=" + r.data(), "tank/envs/web1/data"},
		{"zfs", "mount", "tank/envs/web1/data/usr"},
	}, argvs(steps), "canmount=off: skipped, its children mounted")
	assert.Contains(t, r.log.String(), "tank/envs/web1/data is not mounted on "+r.data()+" (canmount=off")
}
