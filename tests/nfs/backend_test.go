//go:build linux

package nfs_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/hooks/nfs"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/nfsclient"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

// node is one CBSD node's view: a workdir with the four directories, a
// state directory, and a config file.
type node struct {
	root, conf, state string
}

func newNode(t *testing.T, conf string) *node {
	t.Helper()
	n := &node{root: t.TempDir()}
	n.state = filepath.Join(n.root, "state")
	n.conf = filepath.Join(n.root, "envhooks.conf")
	testenv.WriteFile(t, n.conf, conf+fmt.Sprintf("STATE_DIR=%q\nSYSLOG=0\n", n.state), 0o644)
	return n
}

func (n *node) hookArgs(jname string, extra ...string) []string {
	args := append([]string{"-c", n.conf}, extra...)
	return append(args,
		"-d", filepath.Join(n.root, "jails-data", jname+"-data"),
		"-f", filepath.Join(n.root, "jails-fstab", jname),
		"-j", jname,
		"-r", filepath.Join(n.root, "jails-rcconf"),
		"-s", filepath.Join(n.root, "jails-system", jname))
}

func (n *node) mnt(t *testing.T, prog, jname string, extra ...string) testenv.Result {
	t.Helper()
	return testenv.Run(t, nil, testenv.Bin(t, prog), n.hookArgs(jname, extra...)...)
}

// assertNothingAttached checks the mount table and the state record.
func (n *node) assertNothingAttached(t *testing.T, jname string) {
	t.Helper()
	assert.Empty(t, testenv.MountsUnder(t, n.root), "nothing may stay mounted")
	rec, err := state.Store{Dir: n.state}.Load(jname)
	require.NoError(t, err)
	if rec != nil {
		assert.Empty(t, rec.Actions, "no attached action may stay recorded for %s", jname)
	}
}

func serverConf(s string, opts string) string {
	return serverConfAt("127.0.0.1", s, opts)
}

func serverConfAt(server, s string, opts string) string {
	return fmt.Sprintf("NFS_SERVER=%q\nNFS_SERVER_ROOT_DIR=%q\nMOUNT_NFS_OPT=%q\nPREFLIGHT_TIMEOUT=3\nNFS_MOUNT_TIMEOUT=10\n", server, s, opts)
}

const (
	v4opts = "-orw -overs=4 -ohard -oproto=tcp"
	v3opts = "-orw -overs=3 -otcp"
)

// The preflight passes against the live server for v3 and v4: a dry run
// probes for real and prints the mounts it would make.
func TestPreflightPassesAgainstGanesha(t *testing.T) {
	s := startServer(t)
	root := mkExport(t, s, "pre")
	for _, role := range []string{"data", "system", "fstab"} {
		mkExport(t, s, filepath.Join("pre", role, "jail1"))
	}
	for _, tc := range []struct{ opts, fstype string }{{v4opts, "nfs4"}, {v3opts, "nfs"}} {
		n := newNode(t, serverConf(root, tc.opts))
		r := n.mnt(t, "mnt-start", "jail1", "-n")
		require.Equal(t, 0, r.Code, "stderr: %s", r.Stderr)
		assert.Contains(t, r.Stdout, fmt.Sprintf("mount -t %s -o ", tc.fstype))
		assert.Contains(t, r.Stdout, "127.0.0.1:"+root+"/data/jail1 "+filepath.Join(n.root, "jails-data", "jail1-data"))
		assert.Contains(t, r.Stdout, "127.0.0.1:"+root+"/fstab/jail1 ")
		n.assertNothingAttached(t, "jail1")
	}
}

// The same over IPv6 loopback, bare and bracketed: go-nfs-client builds
// addresses with "%s:%d", so the brackets must reach it intact.
func TestPreflightAndProvisionOverIPv6(t *testing.T) {
	s := startServer(t)
	if nfsclient.ProbeTCP(context.Background(), "::1", nfsclient.NFSPort) != nil {
		if testenv.CI() {
			t.Fatal("no IPv6 loopback in the test's network namespace: under CI=true this is a failure, not a skip")
		}
		t.Skip("no IPv6 loopback in this namespace")
	}
	root := mkExport(t, s, "v6")
	for _, server := range []string{"::1", "[::1]"} {
		for _, opts := range []string{v4opts, v3opts} {
			// proto=tcp is IPv4 only (mount_nfs(8); Linux too refuses it
			// for an IPv6 address): tcp6 is the spelling here.
			opts = strings.Replace(opts, "-oproto=tcp", "-oproto=tcp6", 1)
			n := newNode(t, serverConfAt(server, root, opts)+"NFS_AUTO_CREATE=1\n")
			r := n.mnt(t, "mnt-start", "jail1", "-n")
			require.Equal(t, 0, r.Code, "%s %s stderr: %s", server, opts, r.Stderr)
			assert.Contains(t, r.Stdout, "'[::1]:"+root+"/data/jail1' ", "shell-quoted, brackets kept")
		}
	}
	p := filepath.Join(t.TempDir(), "envhooks.conf")
	testenv.WriteFile(t, p, serverConfAt("::1", root, strings.Replace(v4opts, "-oproto=tcp", "-oproto=tcp6", 1)), 0o644)
	cfg, err := config.LoadFile(p)
	require.NoError(t, err)
	require.NoError(t, nfs.Provision(context.Background(), cfg, "jail6", []environment.Role{environment.Data}, logging.Discard(), false))
	fi, err := os.Stat(filepath.Join(root, "data", "jail6"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
}

// A directory the server does not offer fails the preflight with 69 and a
// line that names the server and the path, for v3 and v4.
func TestMissingExportFailsPreflight(t *testing.T) {
	s := startServer(t)
	missing := filepath.Join(s.Export, "no-such-root")
	for _, opts := range []string{v3opts, v4opts} {
		n := newNode(t, serverConf(missing, opts))
		r := n.mnt(t, "mnt-start", "jail1")
		t.Logf("%s: %s", opts, r.Stderr)
		assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
		assert.Contains(t, r.Stderr, "NFS server 127.0.0.1")
		assert.Contains(t, r.Stderr, "port 111")
		assert.Contains(t, r.Stderr, missing+"/data/jail1")
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %q", r.Stderr)
		n.assertNothingAttached(t, "jail1")
	}
}

func provisionConfig(t *testing.T, root string, extra string) *config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "envhooks.conf")
	testenv.WriteFile(t, p, serverConf(root, v4opts)+extra, 0o644)
	cfg, err := config.LoadFile(p)
	require.NoError(t, err)
	return cfg
}

// Provisioning creates the four directories on the server with the
// configured mode and owner, through NFS RPC only, and a second run
// changes nothing.
func TestProvisionCreatesTheDirectoriesIdempotently(t *testing.T) {
	s := startServer(t)
	root := mkExport(t, s, "prov")
	cfg := provisionConfig(t, root, "NFS_CREATE_MODE=0750\nNFS_CREATE_OWNER=\"1001:1002\"\nNFS_SERVER_FSTAB_DIR=\""+mkExport(t, s, "own-fstab")+"\"\n")
	ctx := context.Background()
	require.NoError(t, nfs.Provision(ctx, cfg, "jail1", nil, logging.Discard(), false))

	want := []string{"prov/data/jail1", "prov/system/jail1", "prov/rcconf/jail1", "own-fstab/jail1"}
	mtimes := map[string]time.Time{}
	for _, rel := range want {
		fi, err := os.Stat(filepath.Join(s.Export, rel))
		require.NoError(t, err, rel)
		assert.True(t, fi.IsDir(), rel)
		assert.Equal(t, fs.FileMode(0o750), fi.Mode().Perm(), rel)
		st := fi.Sys().(*syscall.Stat_t)
		assert.Equal(t, []uint32{1001, 1002}, []uint32{st.Uid, st.Gid}, rel)
		mtimes[rel] = fi.ModTime()
	}
	_, err := os.Stat(filepath.Join(root, "fstab"))
	assert.True(t, os.IsNotExist(err), "NFS_SERVER_FSTAB_DIR replaces <root>/fstab")

	// The same seen through the NFS client, as another node would.
	c, err := nfsclient.Dial(ctx, "127.0.0.1", root, nfsclient.Options{Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer c.Close()
	info, err := c.Stat(ctx, "data/jail1")
	require.NoError(t, err)
	assert.True(t, info.IsDir)
	assert.Equal(t, fs.FileMode(0o750), info.Mode)
	assert.Equal(t, uint32(1001), info.UID)

	// Again: nothing changes, not even a timestamp.
	testenv.WriteFile(t, filepath.Join(root, "data", "jail1", "keep"), "data\n", 0o644)
	mtimes["prov/data/jail1"] = mustMtime(t, filepath.Join(root, "data", "jail1"))
	require.NoError(t, nfs.Provision(ctx, cfg, "jail1", nil, logging.Discard(), false))
	for _, rel := range want {
		assert.Equal(t, mtimes[rel], mustMtime(t, filepath.Join(s.Export, rel)), rel)
	}
	_, err = os.Stat(filepath.Join(root, "data", "jail1", "keep"))
	assert.NoError(t, err)
}

func mustMtime(t *testing.T, p string) time.Time {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.ModTime()
}

// A path element that is a file, not a directory, is a clear error (73).
func TestProvisionRefusesAFileInTheWay(t *testing.T) {
	s := startServer(t)
	root := mkExport(t, s, "inway")
	testenv.WriteFile(t, filepath.Join(root, "data"), "not a dir\n", 0o644)
	err := nfs.Provision(context.Background(), provisionConfig(t, root, ""), "jail1", []environment.Role{environment.Data}, logging.Discard(), false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "127.0.0.1:"+root+"/data/jail1")
}

// The kernel here has no NFS client: with a live server the preflight
// passes, provisioning (NFS_AUTO_CREATE=1) creates the directories, and the
// real mount command fails. That must be a clear one-line error, exit 69,
// nothing mounted and no state record.
func TestKernelRefusalRollsBack(t *testing.T) {
	testenv.Require(t, "mount")
	s := startServer(t)
	root := mkExport(t, s, "refuse")
	n := newNode(t, serverConf(root, v4opts)+"NFS_AUTO_CREATE=1\n")
	r := n.mnt(t, "mnt-start", "jail1")
	t.Logf("%s", r.Stderr)
	assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "cannot mount NFS 127.0.0.1:"+root+"/data/jail1 on "+filepath.Join(n.root, "jails-data", "jail1-data"))
	assert.Contains(t, r.Stderr, "mount exited")
	n.assertNothingAttached(t, "jail1")
	// Provisioning happened before the mount and stays: it is idempotent
	// and the next start needs it.
	_, err := os.Stat(filepath.Join(root, "data", "jail1"))
	assert.NoError(t, err)

	// mnt-stop after the failed start has nothing to undo.
	r = n.mnt(t, "mnt-stop", "jail1")
	assert.Equal(t, 0, r.Code, "stderr: %s", r.Stderr)
}

// deadServer is a loopback listener that accepts and never answers: what a
// hung NFS server looks like from a client.
func deadServer(t *testing.T) int {
	t.Helper()
	addr, stop, err := testnet.Silent()
	require.NoError(t, err)
	t.Cleanup(stop)
	return addr.Port
}

// A hung server fails mnt-start with 69 within PREFLIGHT_TIMEOUT + 1 s,
// with nothing mounted and no process left behind.
func TestDeadServerFailsWithinThePreflightDeadline(t *testing.T) {
	testenv.Bin(t, "mnt-start") // build first: the clock below is the hook's
	port := deadServer(t)
	n := newNode(t, fmt.Sprintf("NFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\nMOUNT_NFS_OPT=%q\nNFS_PORT=%d\nPREFLIGHT_TIMEOUT=2\n", v4opts, port))
	r := n.mnt(t, "mnt-start", "jail1")
	t.Logf("took %s: %s", r.Took, r.Stderr)
	assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
	assert.Less(t, r.Took, 3*time.Second, "PREFLIGHT_TIMEOUT (2 s) + 1 s")
	assert.Contains(t, r.Stderr, fmt.Sprintf("NFS server 127.0.0.1 port %d", port))
	assert.Contains(t, r.Stderr, "did not answer an NFSv4 NULL call within 2s")
	n.assertNothingAttached(t, "jail1")
	assert.Empty(t, processesMentioning(t, n.root), "no process may be left behind")
}

// processesMentioning lists processes whose command line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(raw), "\x00", " ")
		if strings.Contains(cmd, s) {
			out = append(out, p+": "+cmd)
		}
	}
	return out
}

// Bad input: clear errors with the right exit code, nothing run, nothing
// attached.
func TestBadInputRunsNothing(t *testing.T) {
	for _, tc := range []struct {
		name, conf, jname string
		code              int
		says              string
	}{
		{"option smuggling a command", "NFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\nMOUNT_NFS_OPT=\"-o 'x; reboot'\"\n", "jail1", 78, "MOUNT_NFS_OPT"},
		{"malformed server", "NFS_SERVER=\"127.0.0.1;reboot\"\nNFS_SERVER_ROOT_DIR=/nfs\n", "jail1", 78, "NFS_SERVER"},
		{"server with a path", "NFS_SERVER=\"nfs:/export\"\nNFS_SERVER_ROOT_DIR=/nfs\n", "jail1", 78, "NFS_SERVER"},
		{"relative export path", "NFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=nfs/jails\n", "jail1", 78, "NFS_SERVER_ROOT_DIR"},
		{"jname with a slash", "NFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\n", "../jail1", 65, "jname"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, tc.conf)
			r := n.mnt(t, "mnt-start", tc.jname)
			t.Logf("%s", r.Stderr)
			assert.Equal(t, tc.code, r.Code, "stderr: %s", r.Stderr)
			assert.Contains(t, r.Stderr, tc.says)
			if tc.code == 78 {
				assert.Contains(t, r.Stderr, n.conf+":", "names the file and line")
			}
			assert.Empty(t, r.Stdout)
			assert.Empty(t, testenv.MountsUnder(t, n.root))
			_, err := os.Stat(filepath.Join(n.root, "jails-data"))
			assert.True(t, os.IsNotExist(err), "no mount point was even created")
		})
	}
}
