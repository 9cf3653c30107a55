//go:build linux

// Package libvirt calls dist/libvirt/envhooks the way libvirtd calls its
// hooks: installed as /etc/libvirt/hooks/qemu and /etc/libvirt/hooks/lxc,
// run with libvirtd's environment only (LC_ALL, PATH, HOME, USER, LOGNAME),
// the operands of each step of a guest's life, the domain XML on standard
// input, and envhooks installed in /usr/local/bin with its configuration in
// /etc/envhooks.conf. /etc and /usr/local/bin are overlays inside the
// tests' private mount namespace, so nothing changes outside it.
package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/tests/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// libvirtd's environment for hooks (virCommandAddEnvPassCommon).
var libvirtdEnv = []string{"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "USER=root", "LOGNAME=root"}

const root = "/var/lib/libvirt/envhooks"

type host struct {
	t        *testing.T
	dfs, tmp string
}

// overlay makes dir writable for the test only: an overlay of a
// temporary upper directory on it, in the private mount namespace.
func overlay(t *testing.T, tmp, dir string) {
	up, work := filepath.Join(tmp, "upper"+strings.ReplaceAll(dir, "/", "-")), filepath.Join(tmp, "work"+strings.ReplaceAll(dir, "/", "-"))
	require.NoError(t, os.MkdirAll(up, 0o755))
	require.NoError(t, os.MkdirAll(work, 0o755))
	require.NoError(t, syscall.Mount("overlay", dir, "overlay", 0, "lowerdir="+dir+",upperdir="+up+",workdir="+work))
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
}

// newHost installs envhooks and the hook as a package and an operator
// would: the binaries in /usr/local/bin, the hook as libvirt's qemu and lxc
// hooks, the configuration in /etc/envhooks.conf.
func newHost(t *testing.T, config string) *host {
	testenv.Require(t, "sh")
	tmp := t.TempDir()
	h := &host{t: t, dfs: filepath.Join(tmp, "dfs"), tmp: tmp}
	for _, dir := range []string{"/etc", "/usr/local/bin", "/var/lib"} {
		overlay(t, tmp, dir)
	}
	for _, prog := range []string{"mnt-start", "envhooks-attach", "mnt-stop", "envctl"} {
		raw, err := os.ReadFile(testenv.Bin(t, prog))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile("/usr/local/bin/"+prog, raw, 0o755))
	}
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "dist", "libvirt", "envhooks"))
	require.NoError(t, err)
	for _, hook := range []string{"qemu", "lxc"} {
		testenv.WriteFile(t, "/etc/libvirt/hooks/"+hook, string(script), 0o755)
	}
	testenv.WriteFile(t, "/etc/envhooks.conf", fmt.Sprintf("BACKEND=nullfs\nNULLFS_ROOT=%s\nSTATE_DIR=%s/state\nSYSLOG=0\nUNMOUNT_TIMEOUT=1\n%s", h.dfs, tmp, config), 0o644)
	t.Cleanup(func() {
		for _, m := range testenv.MountsUnder(t, root) {
			syscall.Unmount(strings.Fields(m)[4], syscall.MNT_DETACH)
		}
	})
	return h
}

// guest puts a guest's directories on the shared storage.
func (h *host) guest(name string) {
	for _, role := range []string{"data", "system"} {
		require.NoError(h.t, os.MkdirAll(filepath.Join(h.dfs, role, name), 0o755))
	}
	testenv.WriteFile(h.t, filepath.Join(h.dfs, "data", name, "disk0.img"), "the disk of "+name+"\n", 0o644)
}

// domainXML is a domain as libvirtd hands it to the hook, padded past a
// pipe's buffer so that a hook that does not read it must still not hang
// libvirtd (which ignores EPIPE on a hook's standard input, as Go does).
func domainXML(name, driver string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<domain type='%s'>\n  <name>%s</name>\n  <uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>\n  <memory unit='KiB'>524288</memory>\n", driver, name)
	if driver == "lxc" {
		fmt.Fprintf(&b, "  <os><type>exe</type><init>/sbin/init</init></os>\n  <devices>\n    <filesystem type='mount'><source dir='%s/%s/data'/><target dir='/'/></filesystem>\n", root, name)
	} else {
		fmt.Fprintf(&b, "  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n    <disk type='file' device='disk'><source file='%s/%s/data/disk0.img'/><target dev='vda' bus='virtio'/></disk>\n", root, name)
	}
	for b.Len() < 256<<10 {
		b.WriteString("    <!-- padding: a large domain with many devices -->\n")
	}
	b.WriteString("  </devices>\n</domain>\n")
	return b.Bytes()
}

type result struct {
	code           int
	stdout, stderr string
}

// hook runs /etc/libvirt/hooks/<driver> as libvirtd does.
func hook(t *testing.T, driver, guest, op, subop, extra string) result {
	t.Helper()
	cmd := exec.Command("/etc/libvirt/hooks/"+driver, guest, op, subop, extra)
	cmd.Env = libvirtdEnv
	cmd.Stdin = bytes.NewReader(domainXML(guest, driver))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("%s hook %s %s %s hung", driver, guest, op, subop)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

func mounted(t *testing.T, guest string) []string {
	var out []string
	for _, m := range testenv.MountsUnder(t, filepath.Join(root, guest)) {
		out = append(out, strings.Fields(m)[4])
	}
	return out
}

// A guest's whole life as libvirtd drives it, for both drivers: prepare
// attaches, start/started/stopped and the XML filters do nothing, release
// detaches, with the shutoff reason of libvirt 10.5+ and the '-' of older
// ones.
func TestGuestLifecycle(t *testing.T) {
	h := newHost(t, "")
	for _, c := range []struct{ driver, guest, reason string }{{"qemu", "vm1", "shutdown"}, {"lxc", "ct1", "destroyed"}, {"qemu", "vm2", "-"}} {
		h.guest(c.guest)
		r := hook(t, c.driver, c.guest, "prepare", "begin", "-")
		require.Equal(t, 0, r.code, "prepare: %s", r.stderr)
		assert.ElementsMatch(t, []string{root + "/" + c.guest + "/data", root + "/" + c.guest + "/system"}, mounted(t, c.guest))
		disk, err := os.ReadFile(filepath.Join(root, c.guest, "data", "disk0.img"))
		require.NoError(t, err)
		assert.Equal(t, "the disk of "+c.guest+"\n", string(disk))

		for _, step := range [][2]string{{"start", "begin"}, {"started", "begin"}, {"migrate", "begin"}, {"restore", "begin"}, {"reconnect", "begin"}, {"stopped", "end"}} {
			r := hook(t, c.driver, c.guest, step[0], step[1], "-")
			assert.Equal(t, 0, r.code, "%s %s: %s", step[0], step[1], r.stderr)
			assert.Empty(t, r.stdout, "%s: no output (for migrate and restore: the XML unchanged)", step[0])
			assert.Len(t, mounted(t, c.guest), 2, "%s leaves the storage alone", step[0])
		}
		// libvirt calls prepare again for a guest started after a failed
		// start: nothing stacks.
		require.Equal(t, 0, hook(t, c.driver, c.guest, "prepare", "begin", "-").code)
		assert.Len(t, mounted(t, c.guest), 2)

		r = hook(t, c.driver, c.guest, "release", "end", c.reason)
		require.Equal(t, 0, r.code, "release: %s", r.stderr)
		assert.Empty(t, mounted(t, c.guest))
		// A second release (libvirtd restarted meanwhile) is fine.
		require.Equal(t, 0, hook(t, c.driver, c.guest, "release", "end", c.reason).code)
	}
}

// What libvirtd logs when the start must not go on: one line on standard
// error and the hook's sysexits code.
func TestPrepareFailuresAbortTheStart(t *testing.T) {
	h := newHost(t, "")
	r := hook(t, "qemu", "nostorage", "prepare", "begin", "-")
	assert.Equal(t, 69, r.code, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	assert.Contains(t, r.stderr, "nostorage")
	assert.Empty(t, mounted(t, "nostorage"))

	r = hook(t, "qemu", "bad name", "prepare", "begin", "-")
	assert.Equal(t, 65, r.code, r.stderr)
	r = hook(t, "qemu", "../etc", "prepare", "begin", "-")
	assert.Equal(t, 65, r.code, r.stderr)
	r = hook(t, "qemu", "vm1", "prepare", "", "")
	assert.Equal(t, 0, r.code, "libvirt always passes four operands; prepare without begin is not ours")
	cmd := exec.Command("/etc/libvirt/hooks/qemu", "vm1")
	cmd.Env = libvirtdEnv
	err := cmd.Run()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee))
	assert.Equal(t, 64, ee.ExitCode())
	assert.Empty(t, testenv.MountsUnder(t, root))
	_, err = os.Stat(filepath.Join(h.dfs, "data", "nostorage"))
	assert.True(t, os.IsNotExist(err), "nothing was created on the storage")
}

// With leases on, a guest owned by another node does not start here.
func TestGuestOwnedElsewhereDoesNotStart(t *testing.T) {
	tmp := t.TempDir()
	leases := filepath.Join(tmp, "leases")
	testenv.SharedLeaseDir(t, leases)
	h := newHost(t, fmt.Sprintf("LEASE_DIR=%s\nNODE_NAME=here\n", leases))
	h.guest("vm1")
	_, err := (&lease.FileStore{Dir: leases}).Acquire(context.Background(), "vm1", "there")
	require.NoError(t, err)
	got := hook(t, "qemu", "vm1", "prepare", "begin", "-")
	assert.Equal(t, 77, got.code, got.stderr)
	assert.Contains(t, got.stderr, "owned by node there")
	assert.Empty(t, mounted(t, "vm1"))
}
