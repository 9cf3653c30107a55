//go:build linux

package cbsd_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/tests/cbsd/replay"
	"github.com/envhooks/envhooks/tests/testenv"
)

// cluster is the shared storage (a directory with the data/ system/ fstab/
// rcconf/ layout, attached with BACKEND=nullfs) and the lease store that
// every node of a test sees.
type cluster struct {
	t      *testing.T
	root   string
	dfs    string
	leases string // the configuration lines of the lease store
}

func newCluster(t *testing.T, driver string) *cluster {
	testenv.Require(t, "sh")
	root := t.TempDir()
	t.Cleanup(func() {
		// Mounts first, newest first, so removing the directory never
		// reaches through one.
		lines := testenv.MountsUnder(t, root)
		for i := len(lines) - 1; i >= 0; i-- {
			if f := strings.Fields(lines[i]); len(f) > 4 {
				unix.Unmount(f[4], unix.MNT_DETACH)
			}
		}
	})
	c := &cluster{t: t, root: root, dfs: filepath.Join(root, "dfs")}
	testenv.SharedLeaseDir(t, filepath.Join(c.dfs, "leases"))
	prefix := fmt.Sprintf("/cbsd-%d", time.Now().UnixNano())
	switch driver {
	case "file":
		c.leases = "LEASE_DIR=" + filepath.Join(c.dfs, "leases") + "\n"
	case "nfs":
		srv := nfsServer(t)
		c.leases = fmt.Sprintf("LEASE_BACKEND=nfs\nLEASE_NFS_SERVER=127.0.0.1\nLEASE_NFS_EXPORT=%s\nLEASE_DIR=%s%s\n", srv.Export, srv.Export, prefix)
	case "etcd":
		c.leases = fmt.Sprintf("LEASE_BACKEND=etcd\nLEASE_DIR=%s\nETCD_ENDPOINTS=%s\n", prefix, strings.Join(etcdCluster(t).Endpoints(), ","))
	default:
		t.Fatalf("no lease driver %s", driver)
	}
	return c
}

// node is one CBSD node: its workdir, its envhooks configuration, its CBSD
// (the replay, with the real programs as hooks) and the cbsd program
// envctl runs for CBSD_DELEGATE=1.
type node struct {
	c                    *cluster
	name                 string
	home, workdir, cfg   string
	cbsd                 *replay.Node
	hooks                *replay.ProgramHooks
	wrapper, mntStart    string
	runDir, base, portsD string
}

// node makes a node whose workdir is home/<workdir>; extra is added to its
// configuration.
func (c *cluster) node(name, workdir string, extra ...string) *node {
	t := c.t
	home := filepath.Join(c.root, name)
	n := &node{c: c, name: name, home: home, workdir: filepath.Join(home, workdir), cfg: filepath.Join(home, "envhooks.conf"),
		runDir: filepath.Join(home, "run"), base: filepath.Join(home, "basejail"), portsD: filepath.Join(home, "ports"),
		wrapper: filepath.Join(testenv.SafeDir(t), "cbsd"), mntStart: testenv.Bin(t, "mnt-start")}
	testenv.WriteFile(t, n.cfg, fmt.Sprintf(`BACKEND=nullfs
NULLFS_ROOT=%s
%sNODE_NAME=%s
WORKDIR=%s
STATE_DIR=%s/state
INVENTORY_DIR=%s/inventory
RUNNING_CHECK=exists:%s/%%j
CBSD_COMMAND=%s
SYSLOG=0
UNMOUNT_TIMEOUT=2
%s
`, c.dfs, c.leases, name, n.workdir, home, home, n.runDir, n.wrapper, strings.Join(extra, "\n")), 0o644)
	bin := filepath.Dir(testenv.Bin(t, "mnt-stop"))
	n.hooks = &replay.ProgramHooks{Bin: bin, Env: []string{"ENVHOOKS_CONFIG=" + n.cfg}}
	var err error
	n.cbsd, err = replay.New(name, n.workdir, n.base, n.portsD, n.runDir, replay.OSKernel{}, n.hooks)
	require.NoError(t, err)
	raw, err := json.Marshal(map[string]any{"Name": name, "Workdir": n.workdir, "Base": n.base, "Ports": n.portsD,
		"RunDir": n.runDir, "Bin": bin, "Env": n.hooks.Env})
	require.NoError(t, err)
	testenv.WriteFile(t, filepath.Join(home, "node.json"), string(raw), 0o644)
	testenv.WriteFile(t, n.wrapper, fmt.Sprintf("#!/bin/sh\nexec %s %s \"$@\"\n", fakeCBSD(t), filepath.Join(home, "node.json")), 0o755)
	return n
}

func (n *node) envctl(args ...string) testenv.Result { return n.envctlEnv(nil, args...) }

func (n *node) envctlEnv(env []string, args ...string) testenv.Result {
	return testenv.Run(n.c.t, append([]string{"ENVHOOKS_CONFIG=" + n.cfg}, env...), testenv.Bin(n.c.t, "envctl"), args...)
}

// mounts lists the mount points under the node's workdir.
func (n *node) mounts() []string {
	var out []string
	for _, l := range testenv.MountsUnder(n.c.t, n.workdir) {
		if f := strings.Fields(l); len(f) > 4 {
			out = append(out, strings.TrimPrefix(f[4], n.workdir+"/"))
		}
	}
	return out
}

// provision makes a new environment's directories on the shared storage,
// what envctl provision does on an NFS server: the nullfs backend attaches
// only directories that exist.
func (c *cluster) provision(jname string) {
	for _, role := range []string{"data", "system", "fstab", "rcconf"} {
		require.NoError(c.t, os.MkdirAll(c.shared(role, jname), 0o755))
	}
}

// shared is a path on the shared storage.
func (c *cluster) shared(parts ...string) string {
	return filepath.Join(append([]string{c.dfs}, parts...)...)
}

func (n *node) dir(parts ...string) string {
	return filepath.Join(append([]string{n.workdir}, parts...)...)
}

func ok(t *testing.T, r testenv.Result) {
	t.Helper()
	require.Equal(t, 0, r.Code, "stdout: %s\nstderr: %s", r.Stdout, r.Stderr)
}

// poststop returns the one run of envhooks' master_poststop.d script since
// the last call, failing the test when it did not run.
func (n *node) poststop(t *testing.T) replay.ScriptRun {
	t.Helper()
	var found []replay.ScriptRun
	for _, r := range n.hooks.Last() {
		if strings.HasSuffix(r.Path, "/master_poststop.d/envhooks-mnt-stop") {
			found = append(found, r)
		}
	}
	require.Len(t, found, 1, "CBSD ran envhooks' poststop script once")
	return found[0]
}

func read(t *testing.T, p string) string {
	t.Helper()
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(raw)
}
