package zfs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/backend"
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
	// Each name asked about that does not exist is reported on stderr; the
	// others are still listed; the exit is 1 when any was missing.
	answer := func(names []string, lines func(name string) string) (run.Result, error) {
		var out, errs strings.Builder
		for _, name := range names {
			if l := lines(name); l != "" {
				out.WriteString(l)
			} else {
				fmt.Fprintf(&errs, "cannot open '%s': dataset does not exist\n", name)
			}
		}
		res := run.Result{Stdout: []byte(out.String()), Stderr: []byte(errs.String())}
		if errs.Len() > 0 {
			return res, &run.Error{Cmd: c, ExitCode: 1, Stderr: strings.TrimSpace(errs.String()[strings.LastIndex(strings.TrimSpace(errs.String()), "\n")+1:])}
		}
		return res, nil
	}
	switch {
	case a[0] == "zpool" && a[1] == "list":
		for _, p := range f.pools {
			if p == a[len(a)-1] {
				return run.Result{Stdout: []byte(p + "\n")}, nil
			}
		}
		return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: fmt.Sprintf("cannot open '%s': no such pool", a[len(a)-1])}
	case a[0] == "zfs" && a[1] == "get":
		return answer(a[7:], func(name string) string {
			var out strings.Builder
			for _, d := range f.datasets {
				w := strings.Fields(d)
				if w[0] == name || strings.HasPrefix(w[0], name+"/") && !strings.Contains(name, "@") {
					src := strings.ReplaceAll(w[3], "_", " ")
					fmt.Fprintf(&out, "%s\ttype\t%s\t-\n%s\tmountpoint\t%s\t%s\n%s\tcanmount\t%s\t%s\n", w[0], w[1], w[0], w[2], src, w[0], w[4], "default")
				}
			}
			for _, sn := range f.snapshots {
				if sn == name {
					fmt.Fprintf(&out, "%s\ttype\tsnapshot\t-\n%s\tmountpoint\t-\t-\n%s\tcanmount\t-\t-\n", sn, sn, sn)
				}
			}
			return out.String()
		})
	case a[0] == "zfs" && a[1] == "list":
		return answer(a[5:], func(name string) string {
			for _, d := range f.datasets {
				if strings.Fields(d)[0] == name {
					return name + "\n"
				}
			}
			return ""
		})
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
	// mu guards fz and table while the provisioning's concurrent
	// creations run commands; a fail callback that changes them takes it.
	mu sync.Mutex
}

func newRig(t *testing.T, datasets ...string) *rig {
	r := &rig{fz: &fakeZFS{datasets: datasets}, dir: t.TempDir()}
	r.rec = &run.Recorder{Respond: r.fz.respond}
	r.sys = &plan.System{Run: r.rec, Log: logging.NewTo("test", &r.log, true), Out: &bytes.Buffer{},
		CommandTimeout: 5 * time.Second, UnmountTimeout: time.Second,
		ReadMounts: func() (mounttab.Table, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.table, nil
		}}
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
		case *provision:
			if s.parent != "" {
				out = append(out, s.parentArgv())
			}
			for _, c := range s.creations {
				out = append(out, c.argv)
			}
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
		{"zfs", "get", "-H", "-o", "name,property,value,source", "-r", "type,mountpoint,canmount", "tank/envs/web1",
			"tank/images/base@v1", "tank/images/base/data@v1", "tank/images/base/system@v1", "tank/images/base/fstab@v1"},
	}, r.rec.Argvs(), "one query: the environment's tree and the image snapshots together")
	assert.Equal(t, [][]string{
		{"zfs", "create", "-o", "canmount=off", "tank/envs/web1"},
		{"zfs", "clone", "-o", "mountpoint=" + d, "tank/images/base@v1", "tank/envs/web1/data"},
		{"zfs", "clone", "-o", "mountpoint=" + s, "tank/images/base/system@v1", "tank/envs/web1/system"},
		{"zfs", "create", "-o", "mountpoint=" + f, "tank/envs/web1/fstab"},
		{"zfs", "mount", "tank/envs/web1/data"},
		{"zfs", "mount", "tank/envs/web1/system"},
		{"zfs", "mount", "tank/envs/web1/fstab"},
	}, argvs(steps))
	for _, st := range steps {
		if u := st.Undo(); u != nil {
			assert.NotContains(t, strings.Join(u.Argv, " "), "destroy", "mnt-stop never destroys")
			assert.Equal(t, state.KindUnmount, u.Kind, "only mounts are recorded: %v", u.Argv)
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

// TestPoolInUseOnAnotherNodeIs77 uses OpenZFS's own messages (zpool
// import in cmd/zpool/zpool_main.c, and libzfs for a multihost pool): the
// host is named on a line before the last, so the whole stderr is read.
func TestPoolInUseOnAnotherNodeIs77(t *testing.T) {
	for host, stderr := range map[string]string{
		"node2": "cannot import 'shared': pool was previously in use from another system.\n" +
			"Last accessed by node2 (hostid=1a2b3c4d) at Mon Jan  5 10:00:00 2026\n" +
			"The pool can be imported, use 'zpool import -f' to import the pool.\n",
		"node3": "cannot import 'shared': pool is imported on host 'node3' (hostid=2b3c4d5e).\n" +
			"Export the pool on the other system, then run 'zpool import'.\n",
	} {
		r := newRig(t)
		r.rec.Respond = func(c run.Cmd) (run.Result, error) {
			if c.Argv[1] == "import" {
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				return run.Result{Stderr: []byte(stderr)}, &run.Error{Cmd: c, ExitCode: 1, Stderr: lines[len(lines)-1]}
			}
			return r.fz.respond(c)
		}
		eng := &plan.Engine{Sys: r.sys, Store: state.Store{Dir: filepath.Join(r.dir, "state")}}
		steps, err := r.backend(t, "ZFS_POOL=shared").Steps(r.env, []environment.Role{environment.Data})
		require.NoError(t, err)
		err = eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps)
		require.Error(t, err)
		assert.Equal(t, sysexits.NoPerm, sysexits.Code(err), host)
		assert.Contains(t, err.Error(), "imported by "+host+":", host)
		assert.Contains(t, err.Error(), "ZFS_IMPORT_FORCE=1 only if "+host+" is down")
	}
	r := newRig(t)
	eng := &plan.Engine{Sys: r.sys, Store: state.Store{Dir: filepath.Join(r.dir, "state")}}
	steps, err := r.backend(t, "ZFS_POOL=shared").Steps(r.env, []environment.Role{environment.Data})
	require.NoError(t, err)
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

// autoMount makes the rig's zfs clone and zfs create mount what they make,
// as they do, and umount and zfs destroy act on the table; fail answers
// for the commands a test wants to fail (nil: not this one).
func (r *rig) autoMount(fail func(a []string) error) {
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		a := c.Argv
		// fail runs unlocked: a test's fail may wait for another command.
		if fail != nil {
			if err := fail(a); err != nil {
				return run.Result{Stderr: []byte(err.(*run.Error).Stderr + "\n")}, err
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case a[0] == "zfs" && (a[1] == "clone" || a[1] == "create"):
			if mp, ok := strings.CutPrefix(a[3], "mountpoint="); ok {
				r.table = append(r.table, mounttab.Mount{Source: a[len(a)-1], Target: mp, FSType: "zfs"})
			}
			r.fz.datasets = append(r.fz.datasets, a[len(a)-1]+" filesystem none local on")
		case a[0] == "umount":
			for i, m := range r.table {
				if m.Target == a[len(a)-1] {
					r.table = append(r.table[:i:i], r.table[i+1:]...)
					break
				}
			}
		case a[0] == "zfs" && a[1] == "destroy":
			for i, d := range r.fz.datasets {
				if strings.Fields(d)[0] == a[2] {
					r.fz.datasets = append(r.fz.datasets[:i:i], r.fz.datasets[i+1:]...)
					break
				}
			}
		}
		return r.fz.respond(c)
	}
}

func fails(c []string, stderr string) error {
	return &run.Error{Cmd: run.Cmd{Argv: c}, ExitCode: 1, Stderr: stderr}
}

func (r *rig) attach(t *testing.T, kv ...string) error {
	t.Helper()
	eng := &plan.Engine{Sys: r.sys, Store: state.Store{Dir: filepath.Join(r.dir, "state")}}
	steps, err := r.backend(t, kv...).Steps(r.env, []environment.Role{environment.Data, environment.System})
	require.NoError(t, err)
	return eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "zfs"}, steps)
}

func (r *rig) names() []string {
	var out []string
	for _, d := range r.fz.datasets {
		out = append(out, strings.Fields(d)[0])
	}
	return out
}

// TestProvisioningClaimsTheCreationsMounts: the new datasets are made at
// once after their parent, and the mounts zfs made are recorded as this
// run's, for mnt-stop.
func TestProvisioningClaimsTheCreationsMounts(t *testing.T) {
	inKernel(t, true)
	r := newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1"}
	r.autoMount(nil)
	require.NoError(t, r.attach(t, "ZFS_CLONE_FROM=tank/images/base@v1"))
	d, s := r.data(), r.system()
	argv := r.rec.Argvs()
	require.Len(t, argv, 4, "%v", argv)
	assert.Equal(t, []string{"zfs", "create", "-o", "canmount=off", "tank/envs/web1"}, argv[1])
	assert.ElementsMatch(t, [][]string{
		{"zfs", "clone", "-o", "mountpoint=" + d, "tank/images/base@v1", "tank/envs/web1/data"},
		{"zfs", "create", "-o", "mountpoint=" + s, "tank/envs/web1/system"},
	}, argv[2:], "the two creations, in either order: they run at once")
	rec, err := (&state.Store{Dir: filepath.Join(r.dir, "state")}).Load("web1")
	require.NoError(t, err)
	require.NotNil(t, rec)
	require.Len(t, rec.Actions, 2)
	assert.Equal(t, "mount:"+d, rec.Actions[0].ID)
	assert.Equal(t, "mount:"+s, rec.Actions[1].ID)
	assert.Contains(t, r.log.String(), "created dataset tank/envs/web1 (canmount=off)")
}

// inKernel makes the test run as where ZFS is in the kernel (parallel
// creations) or not (zfs-fuse: one at a time).
func inKernel(t *testing.T, yes bool) {
	was := parallelCreations
	parallelCreations = func() bool { return yes }
	t.Cleanup(func() { parallelCreations = was })
}

// TestCreationsRunAtOnce: each creation waits until the other has started;
// run one after the other, the first would wait in vain.
func TestCreationsRunAtOnce(t *testing.T) {
	inKernel(t, true)
	r := newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1"}
	var started sync.WaitGroup
	started.Add(2)
	both := make(chan struct{})
	go func() { started.Wait(); close(both) }()
	r.autoMount(func(a []string) error {
		if a[0] == "zfs" && (a[1] == "clone" || a[1] == "create") && strings.HasPrefix(a[3], "mountpoint=") {
			started.Done()
			select {
			case <-both:
			case <-time.After(3 * time.Second):
				return fails(a, "test: the other creation never started while this one ran")
			}
		}
		return nil
	})
	require.NoError(t, r.attach(t, "ZFS_CLONE_FROM=tank/images/base@v1"))
}

// TestCreationsOneAtATimeUnderZFSFuse: without kernel ZFS no two creations
// overlap (zfs-fuse deadlocks on mounts at the same time, and its zfs
// create and zfs clone mount), and after a failure the next is not started.
func TestCreationsOneAtATimeUnderZFSFuse(t *testing.T) {
	inKernel(t, false)
	r := newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1"}
	var running, overlaps atomic.Int32
	r.autoMount(func(a []string) error {
		if a[0] == "zfs" && (a[1] == "clone" || a[1] == "create") && strings.HasPrefix(a[3], "mountpoint=") {
			if running.Add(1) > 1 {
				overlaps.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
			running.Add(-1)
		}
		return nil
	})
	require.NoError(t, r.attach(t, "ZFS_CLONE_FROM=tank/images/base@v1"))
	assert.Zero(t, overlaps.Load())
	d, s := r.data(), r.system()
	assert.Equal(t, [][]string{
		{"zfs", "clone", "-o", "mountpoint=" + d, "tank/images/base@v1", "tank/envs/web1/data"},
		{"zfs", "create", "-o", "mountpoint=" + s, "tank/envs/web1/system"},
	}, r.rec.Argvs()[2:], "in role order")

	r = newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1"}
	r.autoMount(func(a []string) error {
		if a[0] == "zfs" && a[1] == "clone" {
			return fails(a, "cannot create 'tank/envs/web1/data': out of space")
		}
		return nil
	})
	require.Error(t, r.attach(t, "ZFS_CLONE_FROM=tank/images/base@v1"))
	assert.Equal(t, [][]string{
		{"zfs", "get", "-H", "-o", "name,property,value,source", "-r", "type,mountpoint,canmount", "tank/envs/web1", "tank/images/base@v1", "tank/images/base/data@v1", "tank/images/base/system@v1"},
		{"zfs", "create", "-o", "canmount=off", "tank/envs/web1"},
		{"zfs", "clone", "-o", "mountpoint=" + r.data(), "tank/images/base@v1", "tank/envs/web1/data"},
		{"zfs", "list", "-H", "-o", "name", "tank/envs/web1/data"},
		{"zfs", "destroy", "tank/envs/web1"},
	}, r.rec.Argvs(), "the system dataset is not started after the data clone failed")
	assert.Equal(t, []string{"tank/envs"}, r.names())
}

// TestFailedCreationUndoesThisRunsDatasets: the system dataset cannot be
// made; the data clone, made and mounted at the same time, is unmounted and
// destroyed, then the parent, and nothing is recorded.
func TestFailedCreationUndoesThisRunsDatasets(t *testing.T) {
	inKernel(t, true)
	r := newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1"}
	d := r.data()
	r.autoMount(func(a []string) error {
		if a[0] == "zfs" && a[1] == "create" && strings.HasSuffix(a[len(a)-1], "/system") {
			return fails(a, "cannot create 'tank/envs/web1/system': out of space")
		}
		return nil
	})
	err := r.attach(t, "ZFS_CLONE_FROM=tank/images/base@v1")
	require.Error(t, err)
	assert.Equal(t, sysexits.CantCreat, sysexits.Code(err))
	assert.Contains(t, err.Error(), "create empty dataset tank/envs/web1/system")
	assert.Contains(t, err.Error(), "out of space")
	assert.NotContains(t, err.Error(), "rollback left")
	argv := r.rec.Argvs()
	require.Len(t, argv, 8, "%v", argv)
	assert.Equal(t, [][]string{
		{"zfs", "list", "-H", "-o", "name", "tank/envs/web1/system"},
		{"umount", d},
		{"zfs", "destroy", "tank/envs/web1/data"},
		{"zfs", "destroy", "tank/envs/web1"},
	}, argv[4:], "whether the failed creation made its dataset is asked; what was made goes, children first")
	assert.Empty(t, r.table, "the clone's mount is undone")
	assert.Equal(t, []string{"tank/envs"}, r.names(), "no dataset of this run is left")
	rec, _ := (&state.Store{Dir: filepath.Join(r.dir, "state")}).Load("web1")
	if rec != nil {
		assert.Empty(t, rec.Actions)
	}
	assert.Contains(t, r.log.String(), "rolled back: destroyed dataset tank/envs/web1/data")
}

// TestCreatedButNotMountedIsDestroyed: zfs clone made the dataset but could
// not mount it and failed; it is this run's and goes too.
func TestCreatedButNotMountedIsDestroyed(t *testing.T) {
	r := newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1"}
	r.autoMount(func(a []string) error {
		if a[0] == "zfs" && a[1] == "clone" {
			r.mu.Lock()
			r.fz.datasets = append(r.fz.datasets, a[len(a)-1]+" filesystem none local on")
			r.mu.Unlock()
			return fails(a, "cannot mount '"+r.data()+"': directory is not empty")
		}
		return nil
	})
	err := r.attach(t, "ZFS_CLONE_FROM=tank/images/base@v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot clone tank/images/base@v1 as tank/envs/web1/data")
	assert.Equal(t, []string{"tank/envs"}, r.names(), "the unmounted clone is destroyed too")
	assert.Empty(t, r.table)
}

// TestDatasetThatExistedIsLeftAlone: zfs says the system dataset exists
// (made by someone else since the plan was made): it is not this run's, so
// neither it nor the parent that now holds it is destroyed, and the error
// says what was left.
func TestDatasetThatExistedIsLeftAlone(t *testing.T) {
	inKernel(t, true)
	r := newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1"}
	r.autoMount(func(a []string) error {
		switch {
		case a[0] == "zfs" && a[1] == "create" && strings.HasSuffix(a[len(a)-1], "/system"):
			r.mu.Lock()
			r.fz.datasets = append(r.fz.datasets, a[len(a)-1]+" filesystem none local on")
			r.mu.Unlock()
			return fails(a, "cannot create 'tank/envs/web1/system': dataset already exists")
		case a[0] == "zfs" && a[1] == "destroy" && a[2] == "tank/envs/web1":
			return fails(a, "cannot destroy 'tank/envs/web1': filesystem has children")
		}
		return nil
	})
	err := r.attach(t, "ZFS_CLONE_FROM=tank/images/base@v1")
	require.Error(t, err)
	assert.Equal(t, sysexits.CantCreat, sysexits.Code(err))
	assert.Contains(t, err.Error(), "dataset already exists")
	assert.Contains(t, err.Error(), "the rollback left what this run created: tank/envs/web1 ")
	for _, a := range r.rec.Argvs() {
		assert.NotEqual(t, []string{"zfs", "list", "-H", "-o", "name", "tank/envs/web1/system"}, a, "zfs said it existed: not asked")
		assert.NotEqual(t, []string{"zfs", "destroy", "tank/envs/web1/system"}, a, "not this run's")
	}
	assert.ElementsMatch(t, []string{"tank/envs", "tank/envs/web1", "tank/envs/web1/system"}, r.names())
	assert.Empty(t, r.table, "the data clone's mount is undone")
}

// TestMissingRootFoundByTheFirstCreation: with ZFS_CLONE_FROM, ZFS_ROOT is
// not looked up before a real run; the creation of the environment's
// dataset finds it missing, with the same error, and nothing else is done.
func TestMissingRootFoundByTheFirstCreation(t *testing.T) {
	r := newRig(t)
	r.fz.snapshots = []string{"tank/images/base@v1"}
	r.autoMount(func(a []string) error {
		if a[0] == "zfs" && a[1] == "create" && a[len(a)-1] == "tank/envs/web1" {
			return fails(a, "cannot create 'tank/envs/web1': parent does not exist")
		}
		return nil
	})
	err := r.attach(t, "ZFS_CLONE_FROM=tank/images/base@v1")
	require.Error(t, err)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Contains(t, err.Error(), "ZFS_ROOT dataset tank/envs does not exist: create it")
	assert.Len(t, r.rec.Argvs(), 2, "the query and the failed creation: %v", r.rec.Argvs())
	assert.NoDirExists(t, r.data(), "no mount point made")
	assert.NoDirExists(t, r.system())
}

// TestMissingRootAndImage: both missing: ZFS_ROOT is named first, as before
// the query was merged.
func TestMissingRootAndImage(t *testing.T) {
	r := newRig(t)
	_, err := r.expand(t, r.backend(t, "ZFS_CLONE_FROM=tank/images/base@v1"))
	require.Error(t, err)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Contains(t, err.Error(), "ZFS_ROOT dataset tank/envs does not exist")
}

// TestProvisioningDryRun prints exactly the commands a real run runs, in
// the order it starts them, and the mount points it would make.
func TestProvisioningDryRun(t *testing.T) {
	r := newRig(t, "tank/envs filesystem none local on")
	r.fz.snapshots = []string{"tank/images/base@v1", "tank/images/base/system@v1"}
	steps, err := r.expand(t, r.backend(t, "ZFS_CLONE_FROM=tank/images/base@v1"))
	require.NoError(t, err)
	var out bytes.Buffer
	r.sys.DryRun, r.sys.Run, r.sys.Out = true, run.DryRun{Next: r.sys.Run, Out: &out}, &out
	for i := 0; i < 3; i++ { // the same every time
		out.Reset()
		for _, st := range steps {
			done, err := st.Done(context.Background(), r.sys)
			require.NoError(t, err)
			if !done {
				require.NoError(t, st.Apply(context.Background(), r.sys))
			}
		}
		d, s := r.data(), r.system()
		assert.Equal(t, "zfs create -o canmount=off tank/envs/web1\n"+
			"mkdir -p "+d+"\n"+
			"mkdir -p "+s+"\n"+
			"zfs clone -o mountpoint="+d+" tank/images/base@v1 tank/envs/web1/data\n"+
			"zfs clone -o mountpoint="+s+" tank/images/base/system@v1 tank/envs/web1/system\n", out.String())
	}
	assert.NoDirExists(t, r.data())
}

// TestProvisioningWaves: a mount point below another new one waits for it.
func TestProvisioningWaves(t *testing.T) {
	p := &provision{creations: []creation{
		{ds: "p/e/j/data", target: "/j/data"},
		{ds: "p/e/j/system", target: "/j/data/sys"},
		{ds: "p/e/j/fstab", target: "/j/fstab"},
		{ds: "p/e/j/rcconf", target: "/j/data/sys/rc"},
	}}
	var got [][]string
	for _, w := range p.waves() {
		var names []string
		for _, c := range w {
			names = append(names, c.ds)
		}
		got = append(got, names)
	}
	assert.Equal(t, [][]string{{"p/e/j/data", "p/e/j/fstab"}, {"p/e/j/system"}, {"p/e/j/rcconf"}}, got)
	p.creations = p.creations[:1]
	assert.Len(t, p.waves(), 1)
	assert.True(t, within("/j/data", "/j/data"))
	assert.False(t, within("/j/data2", "/j/data"))
	assert.True(t, within("/j/data/x", "/"))
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
		assert.Equal(t, "zfs", cfg.Get(backend.Key), f)
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

// TestCBSDJnamesZFSCannotHold: CBSD accepts '@' and '%' in a jname
// (validate_jname); a dataset name cannot hold them (65, nothing runs).
func TestCBSDJnamesZFSCannotHold(t *testing.T) {
	r := newRig(t)
	for _, j := range []string{"a@b", "%x"} {
		env := &environment.Env{Name: j, Dirs: environment.CBSDDirs("/usr/jails", j)}
		_, err := r.backend(t).Steps(env, []environment.Role{environment.Data})
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), j)
	}
	assert.Empty(t, r.rec.Argvs())
}
