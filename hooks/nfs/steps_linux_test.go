package nfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// These run the backend through the real engine, so they expect this OS's
// syntax (Linux); the FreeBSD syntax is covered by the argv tests.

func env(root, jname string, fstab bool) *environment.Env {
	e := &environment.Env{Name: jname, Dirs: map[environment.Role]string{
		environment.Data:   filepath.Join(root, "jails-data", jname+"-data"),
		environment.System: filepath.Join(root, "jails-system", jname),
		environment.RCConf: filepath.Join(root, "jails-rcconf"),
	}}
	if fstab {
		e.Dirs[environment.Fstab] = filepath.Join(root, "jails-fstab", jname)
	}
	return e
}

// rig runs the backend's steps through the real engine with a recorder for
// commands and an in-memory mount table that "mount" and "umount" change.
type rig struct {
	mu     sync.Mutex
	table  mounttab.Table
	rec    *run.Recorder
	eng    *plan.Engine
	out    bytes.Buffer
	failOn string // a mount target whose mount fails as with no NFS client
}

func newRig(t *testing.T, dryRun bool) *rig {
	r := &rig{}
	r.rec = &run.Recorder{Respond: r.respond}
	r.eng = &plan.Engine{
		Sys: &plan.System{Run: r.rec, Log: logging.Discard(), DryRun: dryRun, Out: &r.out,
			ReadMounts: func() (mounttab.Table, error) {
				r.mu.Lock()
				defer r.mu.Unlock()
				return append(mounttab.Table(nil), r.table...), nil
			}},
		Store: state.Store{Dir: t.TempDir()},
	}
	if dryRun {
		r.eng.Sys.Run = run.DryRun{Out: &r.out}
	}
	return r
}

func (r *rig) respond(c run.Cmd) (run.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch c.Argv[0] {
	case "mount":
		src, tgt := c.Argv[len(c.Argv)-2], c.Argv[len(c.Argv)-1]
		if tgt == r.failOn {
			return run.Result{}, &run.Error{Cmd: c, ExitCode: 32, Stderr: "mount: " + tgt + ": unknown filesystem type 'nfs4'."}
		}
		r.table = append(r.table, mounttab.Mount{Source: src, Target: tgt, FSType: c.Argv[2]})
	case "umount":
		tgt := c.Argv[len(c.Argv)-1]
		for i, m := range r.table {
			if m.Target == tgt {
				r.table = append(r.table[:i], r.table[i+1:]...)
				break
			}
		}
	}
	return run.Result{}, nil
}

func TestStepsMountEveryRoleAfterThePreflight(t *testing.T) {
	b := mustBackend(t, "NFS_SERVER=\"172.16.0.1\"\nNFS_SERVER_ROOT_DIR=\"/nfs\"\nMOUNT_NFS_OPT=\""+sampleOpts+"\"\nNFS_MOUNT_TIMEOUT=45\n")
	var probed []string
	b.Probe = func(_ context.Context, paths []string) error { probed = paths; return nil }
	root := t.TempDir()
	e := env(root, "jail1", true)
	roles := []environment.Role{environment.Data, environment.System, environment.Fstab}
	steps, err := b.Steps(e, roles)
	require.NoError(t, err)
	r := newRig(t, false)
	require.NoError(t, r.eng.Attach(context.Background(), state.Record{JName: "jail1", Backend: "nfs"}, steps))
	assert.Equal(t, []string{"/nfs/data/jail1", "/nfs/system/jail1", "/nfs/fstab/jail1"}, probed)
	o := "rw,vers=4,rsize=32768,wsize=32768,acregmax=3,acdirmin=3,acdirmax=3,hard,proto=tcp,timeo=300"
	assert.Equal(t, [][]string{
		{"mount", "-t", "nfs4", "-o", o, "172.16.0.1:/nfs/data/jail1", e.Dir(environment.Data)},
		{"mount", "-t", "nfs4", "-o", o, "172.16.0.1:/nfs/system/jail1", e.Dir(environment.System)},
		{"mount", "-t", "nfs4", "-o", o, "172.16.0.1:/nfs/fstab/jail1", e.Dir(environment.Fstab)},
	}, r.rec.Argvs())
	for _, c := range r.rec.Cmds {
		assert.Equal(t, "45s", c.Timeout.String(), "NFS_MOUNT_TIMEOUT bounds the mount command")
	}

	// Idempotent: a second run mounts nothing.
	before := len(r.rec.Cmds)
	require.NoError(t, r.eng.Attach(context.Background(), state.Record{JName: "jail1", Backend: "nfs"}, steps))
	assert.Len(t, r.rec.Cmds, before)

	// Detach unmounts in reverse with plain umount, never lazy.
	require.NoError(t, r.eng.Detach(context.Background(), "jail1"))
	assert.Equal(t, [][]string{
		{"umount", e.Dir(environment.Fstab)},
		{"umount", e.Dir(environment.System)},
		{"umount", e.Dir(environment.Data)},
	}, r.rec.Argvs()[before:])
}

func TestPerRoleDirectoriesReplaceTheRoot(t *testing.T) {
	b := mustBackend(t, "NFS_SERVER=\"[fd00::5]\"\nNFS_SERVER_ROOT_DIR=\"/nfs\"\nNFS_SERVER_DATA_DIR=\"/fast/data/\"\n")
	d, err := b.Remote("web1", environment.Data)
	require.NoError(t, err)
	assert.Equal(t, "/fast/data/web1", d)
	s, err := b.Remote("web1", environment.System)
	require.NoError(t, err)
	assert.Equal(t, "/nfs/system/web1", s)
	assert.Equal(t, []string{"/fast/data", "/nfs"}, b.bases([]environment.Role{environment.Data, environment.System}))

	noRoot := mustBackend(t, "NFS_SERVER=nfs\nNFS_SERVER_DATA_DIR=/d\n")
	_, err = noRoot.Remote("web1", environment.System)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Contains(t, err.Error(), "NFS_SERVER_SYSTEM_DIR")
}

func TestAMountTheKernelRefusesRollsBack(t *testing.T) {
	b := mustBackend(t, "NFS_SERVER=10.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\n")
	b.Probe = func(context.Context, []string) error { return nil }
	e := env(t.TempDir(), "jail1", false)
	steps, err := b.Steps(e, []environment.Role{environment.Data, environment.System})
	require.NoError(t, err)
	r := newRig(t, false)
	r.failOn = e.Dir(environment.System)
	err = r.eng.Attach(context.Background(), state.Record{JName: "jail1", Backend: "nfs"}, steps)
	require.Error(t, err)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Contains(t, err.Error(), "unknown filesystem type 'nfs4'")
	assert.Empty(t, r.table, "the data mount made before the failure is undone")
	assert.Equal(t, []string{"umount", e.Dir(environment.Data)}, r.rec.Argvs()[len(r.rec.Cmds)-1])
}

func TestAFailedPreflightRunsNothing(t *testing.T) {
	b := mustBackend(t, "NFS_SERVER=10.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\nNFS_AUTO_CREATE=1\n")
	var probed []string
	b.Probe = func(_ context.Context, paths []string) error {
		probed = paths
		return sysexits.New(sysexits.Unavailable, "preflight: dead")
	}
	steps, err := b.Steps(env(t.TempDir(), "jail1", false), []environment.Role{environment.Data, environment.System})
	require.NoError(t, err)
	r := newRig(t, false)
	err = r.eng.Attach(context.Background(), state.Record{JName: "jail1", Backend: "nfs"}, steps)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Empty(t, r.rec.Cmds)
	assert.Equal(t, []string{"/nfs"}, probed, "with NFS_AUTO_CREATE the root is checked, not the missing directories")
}

func TestDryRunPrintsTheMountsAndTheProvisioning(t *testing.T) {
	b := mustBackend(t, "NFS_SERVER=172.16.0.1\nNFS_SERVER_ROOT_DIR=/nfs\nMOUNT_NFS_OPT=\"-orw -overs=4 -ohard\"\nNFS_AUTO_CREATE=1\n")
	b.Probe = func(context.Context, []string) error { return nil }
	root := t.TempDir()
	e := env(root, "jail1", false)
	steps, err := b.Steps(e, []environment.Role{environment.Data, environment.System})
	require.NoError(t, err)
	r := newRig(t, true)
	require.NoError(t, r.eng.Attach(context.Background(), state.Record{JName: "jail1", Backend: "nfs"}, steps))
	assert.Equal(t, strings.Join([]string{
		"# create the missing directories of jail1 on 172.16.0.1 (NFS_AUTO_CREATE=1)",
		"mkdir -p " + e.Dir(environment.Data),
		"mount -t nfs4 -o rw,vers=4,hard 172.16.0.1:/nfs/data/jail1 " + e.Dir(environment.Data),
		"mkdir -p " + e.Dir(environment.System),
		"mount -t nfs4 -o rw,vers=4,hard 172.16.0.1:/nfs/system/jail1 " + e.Dir(environment.System),
	}, "\n")+"\n", r.out.String())
	_, err = os.Stat(e.Dir(environment.Data))
	assert.True(t, errors.Is(err, os.ErrNotExist), "a dry run creates nothing")
}

func TestJNamesWithSlashesAreRefusedBeforeAnyPath(t *testing.T) {
	b := mustBackend(t, "NFS_SERVER=10.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\n")
	b.Probe = func(context.Context, []string) error { t.Fatal("probed"); return nil }
	for _, j := range []string{"../etc", "a/b", "..", "/abs"} {
		_, err := b.Steps(&environment.Env{Name: j, Dirs: map[environment.Role]string{environment.Data: "/x", environment.System: "/y"}}, []environment.Role{environment.Data})
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), j)
		cfg, _ := loadConfig(t, "NFS_SERVER=10.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\n")
		err = Provision(context.Background(), cfg, j, nil, logging.Discard(), false)
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), j)
	}
}

func TestPreflightNeverOutlastsTheMountTimeout(t *testing.T) {
	b := mustBackend(t, "NFS_SERVER=10.0.0.1\nPREFLIGHT_TIMEOUT=10\nNFS_MOUNT_TIMEOUT=4\n")
	assert.Equal(t, "4s", b.preflight.String())
	b = mustBackend(t, "NFS_SERVER=10.0.0.1\n")
	assert.Equal(t, "3s", b.preflight.String())
}
