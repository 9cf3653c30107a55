//go:build linux

package cbsd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/dist/cbsd"
	"github.com/envhooks/envhooks/hooks"
	nfshook "github.com/envhooks/envhooks/hooks/nfs"
	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/attach"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
	"github.com/envhooks/envhooks/tests/cbsd/fbsd"
	"github.com/envhooks/envhooks/tests/cbsd/replay"
	"github.com/envhooks/envhooks/tests/testenv"
)

// fbsdHooks runs envhooks' own code in this process against the model of
// FreeBSD's kernel, where the programs could only see Linux's: mnt_start
// is mnt-start's session, and envhooks' master_poststop.d script is what
// the script does (its own shell is exercised by the Linux replay): leave
// the directory and run mnt-stop with the flags it derives from its path.
type fbsdHooks struct {
	t    *testing.T
	k    *fbsd.Kernel
	cfg  string
	log  bytes.Buffer
	runs []replay.ScriptRun
}

func (h *fbsdHooks) session(env *environment.Env) *attach.Session {
	cfg, err := config.Load(config.DefaultSources(h.cfg, env.Name))
	require.NoError(h.t, err)
	return &attach.Session{Env: env, Config: cfg, Backends: hooks.Registry(), Log: logging.NewTo("envhooks", &h.log, true),
		Runner: h.k, Kernel: h.k, ReadMounts: h.k.ReadMounts}
}

func (h *fbsdHooks) MntStart(_ string, argv []string) error {
	opts, err := args.Parse(append([]string{"mnt-start"}, argv...), args.Required{DataAndSystem: true})
	require.NoError(h.t, err)
	return h.session(opts.Env()).Start(context.Background())
}

func (h *fbsdHooks) MasterScripts(dir string) error {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		raw, err := os.ReadFile(p)
		require.NoError(h.t, err)
		script := cbsd.Poststop()
		switch {
		case bytes.Equal(raw, script.VMText):
			h.runs = append(h.runs, replay.ScriptRun{Path: p, Output: "stays attached"})
		case bytes.Equal(raw, script.Text):
			sysdir := filepath.Dir(dir)
			jname := filepath.Base(sysdir)
			workdir := strings.TrimSuffix(sysdir, "/jails-system/"+jname)
			opts, err := args.Parse([]string{"mnt-stop", "-j", jname, "-d", workdir + "/jails-data/" + jname + "-data",
				"-f", workdir + "/jails-fstab/" + jname, "-r", workdir + "/jails-rcconf", "-s", sysdir}, args.Required{})
			require.NoError(h.t, err)
			h.log.Reset()
			err = h.session(opts.Env()).Stop(context.Background())
			h.runs = append(h.runs, replay.ScriptRun{Path: p, Code: sysexits.Code(err), Output: h.log.String() + errText(err)})
		default:
			h.t.Errorf("no model for the master script %s", p)
		}
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fbsdNode is a node whose kernel follows FreeBSD's rules.
func fbsdNode(t *testing.T, c *cluster, name string) (*replay.Node, *fbsdHooks, *fbsd.Kernel, string) {
	home := filepath.Join(c.root, name)
	workdir := filepath.Join(home, "usr", "jails")
	k := fbsd.New()
	k.Real, k.RunDir = true, filepath.Join(home, "run")
	cfg := filepath.Join(home, "envhooks.conf")
	testenv.WriteFile(t, cfg, "BACKEND=nullfs\nNULLFS_ROOT="+c.dfs+"\n"+c.leases+"NODE_NAME="+name+"\nWORKDIR="+workdir+
		"\nSTATE_DIR="+home+"/state\nINVENTORY_DIR="+home+"/inventory\nRUNNING_CHECK=jls -j %j jid\nSYSLOG=0\nUNMOUNT_TIMEOUT=1\n", 0o644)
	h := &fbsdHooks{t: t, k: k, cfg: cfg}
	n, err := replay.New(name, workdir, filepath.Join(home, "basejail"), filepath.Join(home, "ports"), k.RunDir, k, h)
	require.NoError(t, err)
	t.Cleanup(func() {
		// The model's real binds, newest first.
		tab, _ := k.Table()
		for i := len(tab) - 1; i > 0; i-- {
			k.Unmount(tab[i].Target, true)
		}
	})
	return n, h, k, cfg
}

// TestFreeBSDJstopDetachesCBSDsLayers replays jcreate, jstart, jstop,
// jstart, jstop on the model of FreeBSD's kernel: with baserw=0 the jail
// root carries nullfs mounts of ${data}/etc, ${data}/var/cache/distfiles
// ... (the jail's fstab and mountbase), with baserw=1 /usr/ports is
// mounted inside the data directory. FreeBSD refuses to unmount the data
// directory under either (mnt_uppers; a covered vnode), and jstop runs the
// poststop script before its jcleanup; the script's mnt-stop unmounts
// them first, once jls says the jail is gone, and every jstop leaves
// nothing mounted.
func TestFreeBSDJstopDetachesCBSDsLayers(t *testing.T) {
	for _, baserw := range []bool{false, true} {
		t.Run(map[bool]string{false: "baserw0", true: "baserw1"}[baserw], func(t *testing.T) {
			c := newCluster(t, "file")
			n, h, k, cfg := fbsdNode(t, c, "a")
			c.provision("web1")
			ok(t, testenv.Run(t, []string{"ENVHOOKS_CONFIG=" + cfg}, testenv.Bin(t, "envctl"), "lease", "acquire", "jname=web1"))
			require.NoError(t, n.JCreate("web1", replay.JailOptions{BaseRW: baserw, MountPorts: true, MntStart: "mnt-start"}))
			script := cbsd.Poststop()
			testenv.WriteFile(t, script.Path(filepath.Join(n.Workdir, "jails-system", "web1")), string(script.Text), 0o755)
			for round := 1; round <= 2; round++ {
				require.NoError(t, n.JStart("web1"), "round %d", round)
				tab, _ := k.Table()
				layered := 0
				for _, m := range tab {
					if m.FSType == "nullfs" && strings.HasPrefix(m.Source, filepath.Join(n.Workdir, "jails-data", "web1-data")+"/") ||
						strings.HasPrefix(m.Target, filepath.Join(n.Workdir, "jails-data", "web1-data")+"/") {
						layered++
					}
				}
				require.NotZero(t, layered, "jstart put CBSD's mounts on the data directory")
				require.NoError(t, n.JStop("web1"), "round %d", round)
				require.Len(t, h.runs, round)
				run := h.runs[round-1]
				assert.Equal(t, 0, run.Code, "round %d: the poststop script's mnt-stop: %s", round, run.Output)
				tab, _ = k.Table()
				assert.Len(t, tab, 1, "round %d: only / is left mounted: %v", round, tab)
			}
			assert.FileExists(t, c.shared("data", "web1", "etc", "rc.conf"))
		})
	}
}

// TestFreeBSDLayersOfARunningJailStay: mnt-stop run while the jail runs
// (jls finds it) takes nothing away, neither CBSD's mounts nor its own,
// and says why (75).
func TestFreeBSDLayersOfARunningJailStay(t *testing.T) {
	c := newCluster(t, "file")
	n, h, k, cfg := fbsdNode(t, c, "a")
	c.provision("web1")
	ok(t, testenv.Run(t, []string{"ENVHOOKS_CONFIG=" + cfg}, testenv.Bin(t, "envctl"), "lease", "acquire", "jname=web1"))
	require.NoError(t, n.JCreate("web1", replay.JailOptions{MountPorts: true, MntStart: "mnt-start"}))
	require.NoError(t, n.JStart("web1"))
	before, _ := k.Table()
	env := environment.CBSDDirs(n.Workdir, "web1")
	err := h.session(&environment.Env{Name: "web1", Dirs: env}).Stop(context.Background())
	require.Error(t, err)
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err))
	assert.Contains(t, err.Error(), "web1 is running (jls -j web1 jid exited 0)")
	after, _ := k.Table()
	assert.Equal(t, before, after, "a running jail keeps every mount")
}

// TestFreeBSDHungNFSServer is umount(8)'s case for -N: against an NFS
// server that no longer answers, umount (and umount -f) wait; the unmount
// is killed at COMMAND_TIMEOUT and, with FORCE_UNMOUNT=1, umount -N
// dismounts without asking the server. Without it the answer is 69.
func TestFreeBSDHungNFSServer(t *testing.T) {
	for _, force := range []bool{false, true} {
		k := fbsd.New()
		dir := t.TempDir()
		target := filepath.Join(dir, "jails-data", "web1-data")
		require.NoError(t, os.MkdirAll(target, 0o755))
		src := nfshook.Source("10.0.0.1", "/nfs/data/web1")
		step := &plan.Mount{Target: target, Want: nfshook.FreeBSDWant(src), Argv: nfshook.FreeBSDMountArgv([]string{"-orw", "-overs=4", "-ohard"}, src, target),
			UnmountArgv: []string{"umount", target}, ForceArgv: nfshook.FreeBSDForceUnmountArgv(target), What: "mount NFS " + src}
		eng := &plan.Engine{Sys: &plan.System{Run: k, Log: logging.Discard(), Out: &bytes.Buffer{}, CommandTimeout: 300 * time.Millisecond,
			UnmountTimeout: 5 * time.Second, ForceUnmount: force, ReadMounts: k.ReadMounts, Kernel: k}, Store: state.Store{Dir: filepath.Join(dir, "state")}}
		require.NoError(t, eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "nfs"}, []plan.Step{step}))
		k.Hang("10.0.0.1", true)
		start := time.Now()
		err := eng.Detach(context.Background(), "web1")
		took := time.Since(start)
		tab, _ := k.Table()
		if !force {
			assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
			assert.Contains(t, err.Error(), "FORCE_UNMOUNT=1")
			assert.Len(t, tab, 2, "still mounted")
		} else {
			require.NoError(t, err)
			assert.Len(t, tab, 1, "dismounted")
			assert.Contains(t, k.Calls, "umount -f "+target, "umount -N did it")
		}
		assert.Less(t, took, 3*time.Second, "no wait for UNMOUNT_TIMEOUT once the unmount hung")
	}
}

// TestFreeBSDModel checks the model's own rules against what it cites.
func TestFreeBSDModel(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string) string {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, p), 0o755))
		return filepath.Join(dir, p)
	}
	k := fbsd.New()
	data, etc, root := mk("data"), mk("data/etc"), mk("root/etc")
	require.NoError(t, k.Nullfs(mk("dfs"), data, false))
	require.NoError(t, k.Nullfs(etc, root, false))
	assert.ErrorContains(t, k.Unmount(data, false), "busy", "mnt_uppers")
	assert.ErrorContains(t, k.Unmount(data, true), "busy", "forced too, vfs.recursive_forced_unmount=0")
	require.NoError(t, k.Unmount(root, false))
	inner := mk("data/usr/ports")
	require.NoError(t, k.Nullfs(mk("ports"), inner, false))
	assert.ErrorContains(t, k.Unmount(data, false), "busy", "a covered vnode")
	require.NoError(t, k.Unmount(data, true), "vflush(FORCECLOSE)")
	tab, _ := k.Table()
	assert.Equal(t, inner, tab[len(tab)-1].Target, "the inner mount stays listed")
	assert.ErrorContains(t, k.Unmount(mk("nothing"), false), "invalid argument")
}
