//go:build linux

// Package lxc runs real LXC containers whose root file system comes from
// shared storage through mnt-start and mnt-stop as LXC's pre-start and
// post-stop hooks, and moves one between two nodes with envctl
// cregister/cunregister. Each node is a mount namespace of its own with an
// LXC_PATH of its own; a shared directory stands in for the storage
// (BACKEND=nullfs), leases are files on it.
package lxc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/testenv"
)

func TestMain(m *testing.M) {
	testenv.MainTeardown(m, func() {
		if templateDir != "" {
			os.RemoveAll(filepath.Dir(templateDir))
		}
	})
}

type cluster struct {
	t         *testing.T
	root, dfs string
}

type node struct {
	c                      *cluster
	name, home, lxcpath    string
	cfg                    string
	ns                     *exec.Cmd
	startedContainers      map[string]bool
	mntStart, mntStop, ctl string
}

func newCluster(t *testing.T) *cluster {
	testenv.Require(t, "lxc-start", "lxc-create", "lxc-stop", "lxc-attach", "lxc-wait", "busybox", "unshare", "nsenter")
	root := t.TempDir()
	c := &cluster{t: t, root: root, dfs: filepath.Join(root, "dfs")}
	testenv.SharedLeaseDir(t, filepath.Join(c.dfs, "leases"))
	return c
}

// node starts a mount namespace that plays one node until the test ends.
func (c *cluster) node(name, extra string) *node {
	home := filepath.Join(c.root, name)
	n := &node{c: c, name: name, home: home, lxcpath: filepath.Join(home, "lxc"), cfg: filepath.Join(home, "envhooks.conf"),
		startedContainers: map[string]bool{}, mntStart: testenv.Bin(c.t, "mnt-start"), mntStop: testenv.Bin(c.t, "mnt-stop"), ctl: testenv.Bin(c.t, "envctl")}
	require.NoError(c.t, os.MkdirAll(n.lxcpath, 0o755))
	testenv.WriteFile(c.t, n.cfg, fmt.Sprintf(`BACKEND=nullfs
NULLFS_ROOT=%[1]s
LEASE_DIR=%[1]s/leases
NODE_NAME=%[2]s
LXC_PATH=%[3]s
STATE_DIR=%[4]s/state
INVENTORY_DIR=%[4]s/inventory
SYSLOG=0
UNMOUNT_TIMEOUT=2
%[5]s`, c.dfs, name, n.lxcpath, home, extra), 0o644)
	n.ns = exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "3600")
	n.ns.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(c.t, n.ns.Start())
	c.t.Cleanup(func() {
		n.ns.Process.Signal(syscall.SIGKILL)
		n.ns.Wait()
	})
	require.Eventually(c.t, func() bool {
		self, _ := os.Readlink("/proc/self/ns/mnt")
		other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.ns.Process.Pid))
		return err == nil && other != self
	}, 5*time.Second, 5*time.Millisecond)
	// Registered after the holder's cleanup, so it runs first: no
	// container outlives the test.
	c.t.Cleanup(func() {
		for name := range n.startedContainers {
			n.in("lxc-stop", "-P", n.lxcpath, "-n", name, "-k")
		}
	})
	return n
}

// in runs a program in the node's mount namespace with its configuration
// (LXC passes its environment on to the hooks).
func (n *node) in(prog string, args ...string) testenv.Result {
	all := append([]string{"-t", fmt.Sprint(n.ns.Process.Pid), "-m", "--", prog}, args...)
	return testenv.Run(n.c.t, []string{"ENVHOOKS_CONFIG=" + n.cfg, "ENVHOOKS_RUNDIR=" + filepath.Join(n.home, "run")}, "nsenter", all...)
}

func (n *node) envctl(args ...string) testenv.Result { return n.in(n.ctl, args...) }

// lxcStart starts a container as a daemon, logging its errors afresh to
// lxcLog.
func (n *node) lxcStart(name string) testenv.Result {
	n.startedContainers[name] = true
	log := filepath.Join(n.home, name+".log")
	os.Remove(log)
	return n.in("lxc-start", "-P", n.lxcpath, "-n", name, "-l", "ERROR", "-o", log)
}

// lxcLog is what LXC logged for the last lxcStart.
func (n *node) lxcLog(name string) string {
	raw, _ := os.ReadFile(filepath.Join(n.home, name+".log"))
	return string(raw)
}

func (n *node) lxcStop(name string) testenv.Result {
	return n.in("lxc-stop", "-P", n.lxcpath, "-n", name, "-t", "20")
}

// lxcState is what lxc-info says of the container.
func (n *node) lxcState(name string) string {
	r := n.in("lxc-info", "-P", n.lxcpath, "-n", name, "-s")
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(r.Stdout), "State:"))
}

// inside runs a shell command inside the running container.
func (n *node) inside(name, script string) testenv.Result {
	return n.in("lxc-attach", "-P", n.lxcpath, "-n", name, "--", "/bin/sh", "-c", script)
}

// mounts lists the node's mount points under its LXC_PATH.
func (n *node) mounts() []string {
	r := n.in("cat", "/proc/self/mountinfo")
	require.Equal(n.c.t, 0, r.Code)
	return testenv.MountPoints(r.Stdout, n.lxcpath)
}

func (n *node) containerDir(name string) string { return filepath.Join(n.lxcpath, name) }

// busyboxContainer makes container name with lxc-create's busybox template
// (no download), moves its root file system onto the shared storage
// (data/<name>) and leaves its config in node n's LXC_PATH, made to run
// here (no network, no AppArmor profile) with envhooks' hooks, as an
// operator would set it up.
func (c *cluster) busyboxContainer(n *node, name, hooks string) {
	scratch := template(c.t)
	require.NoError(c.t, os.MkdirAll(filepath.Join(c.dfs, "data"), 0o755))
	require.NoError(c.t, os.MkdirAll(filepath.Join(c.dfs, "system", name), 0o755))
	r := testenv.Run(c.t, nil, "cp", "-a", filepath.Join(scratch, "rootfs"), filepath.Join(c.dfs, "data", name))
	require.Equal(c.t, 0, r.Code, r.Stderr)
	testenv.WriteFile(c.t, filepath.Join(c.dfs, "data", name, "shared.txt"), "the data of "+name+"\n", 0o644)
	raw, err := os.ReadFile(filepath.Join(scratch, "config"))
	require.NoError(c.t, err)
	var lines []string
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "lxc.net."), strings.HasPrefix(line, "lxc.apparmor."):
		case strings.HasPrefix(line, "lxc.uts.name"):
			lines = append(lines, "lxc.uts.name = "+name)
		default:
			lines = append(lines, strings.ReplaceAll(line, scratch, n.containerDir(name)))
		}
	}
	lines = append(lines, "lxc.net.0.type = empty", "lxc.apparmor.profile = unconfined", hooks)
	testenv.WriteFile(c.t, filepath.Join(n.containerDir(name), "config"), strings.Join(lines, "\n")+"\n", 0o640)
}

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
)

// template is a busybox container made once per test binary with
// lxc-create -t busybox; tests copy it.
func template(t *testing.T) string {
	templateOnce.Do(func() {
		var scratch string
		if scratch, templateErr = os.MkdirTemp("", "envhooks-lxc-template-"); templateErr != nil {
			return
		}
		out, err := exec.Command("lxc-create", "-P", scratch, "-n", "busybox", "-t", "busybox").CombinedOutput()
		if err != nil {
			templateErr = fmt.Errorf("lxc-create -t busybox: %v\n%s", err, out)
		}
		templateDir = filepath.Join(scratch, "busybox")
	})
	require.NoError(t, templateErr)
	return templateDir
}

func (n *node) hooks() string {
	return fmt.Sprintf("lxc.hook.pre-start = %s\nlxc.hook.post-stop = %s", n.mntStart, n.mntStop)
}

func ok(t *testing.T, r testenv.Result, what string) {
	t.Helper()
	require.Equal(t, 0, r.Code, "%s\nstdout: %s\nstderr: %s", what, r.Stdout, r.Stderr)
}

// The hooks alone, no envctl, no leases: lxc-start attaches the root file
// system from the shared storage before the container starts, what the
// container writes lands there, lxc-stop detaches it; with
// lxc.hook.version = 1 (operands in the environment) too.
func TestHooksAttachTheRootFileSystem(t *testing.T) {
	for _, version := range []string{"0", "1"} {
		t.Run("lxc.hook.version="+version, func(t *testing.T) {
			c := newCluster(t)
			a := c.node("a", "LEASE_DIR=\n")
			c.busyboxContainer(a, "web1", a.hooks()+"\nlxc.hook.version = "+version)
			assert.Empty(t, a.mounts())

			ok(t, a.lxcStart("web1"), "lxc-start")
			require.Equal(t, "RUNNING", a.lxcState("web1"))
			dir := a.containerDir("web1")
			assert.ElementsMatch(t, []string{dir + "/rootfs", dir + "/system"}, a.mounts(), "the pre-start hook attached root and system")
			r := a.inside("web1", "cat /shared.txt && echo written-inside > /root/inside.txt")
			ok(t, r, "lxc-attach")
			assert.Equal(t, "the data of web1\n", r.Stdout)
			got, err := os.ReadFile(filepath.Join(c.dfs, "data", "web1", "root", "inside.txt"))
			require.NoError(t, err, "the write went to the shared storage")
			assert.Equal(t, "written-inside\n", string(got))

			ok(t, a.lxcStop("web1"), "lxc-stop")
			assert.Equal(t, "STOPPED", a.lxcState("web1"))
			assert.Empty(t, a.mounts(), "the post-stop hook detached everything")

			// Started again, the hook attaches again: nothing stacked.
			ok(t, a.lxcStart("web1"), "second lxc-start")
			assert.Len(t, a.mounts(), 2)
			ok(t, a.lxcStop("web1"), "second lxc-stop")
			assert.Empty(t, a.mounts())
		})
	}
}

// A missing source on the shared storage fails the pre-start hook, and
// with it lxc-start: the container does not start on an empty local
// directory.
func TestHookFailureStopsTheStart(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", "LEASE_DIR=\n")
	c.busyboxContainer(a, "web1", a.hooks())
	require.NoError(t, os.RemoveAll(filepath.Join(c.dfs, "system", "web1")))
	r := a.lxcStart("web1")
	assert.NotEqual(t, 0, r.Code, "lxc-start must fail when its pre-start hook does")
	assert.NotEqual(t, "RUNNING", a.lxcState("web1"))
	assert.Empty(t, a.mounts(), "all or nothing: the root is not left attached")
	log := a.lxcLog("web1")
	assert.Contains(t, log, "Script exited with status 69", "storage unavailable")
	assert.Contains(t, log, "Failed to run lxc.hook.pre-start", "LXC says which hook failed")
}

// The migration users run: register on a, start, write, stop, unregister
// (refused while it runs), register on b, start there with a's data, and a
// start on a, which no longer owns it, refused by the hook.
func TestMigrateAContainerBetweenNodes(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", ""), c.node("b", "")
	c.busyboxContainer(a, "web1", a.hooks())

	// Leases are on: an unregistered container does not start anywhere.
	r := a.lxcStart("web1")
	assert.NotEqual(t, 0, r.Code)
	assert.Contains(t, a.lxcLog("web1"), "Script exited with status 77", "refused by the hook: owned by no node")
	assert.Empty(t, a.mounts())

	ok(t, a.envctl("cregister", "web1"), "cregister on a")
	dirA := a.containerDir("web1")
	assert.ElementsMatch(t, []string{dirA + "/rootfs", dirA + "/system"}, a.mounts())
	shared, err := os.ReadFile(filepath.Join(c.dfs, "system", "web1", "config"))
	require.NoError(t, err, "the config travels with the data")
	assert.Contains(t, string(shared), "lxc.rootfs.path = dir:"+dirA+"/rootfs")

	ok(t, a.lxcStart("web1"), "lxc-start on a")
	ok(t, a.inside("web1", "echo written-on-a > /root/a.txt"), "write on a")
	r = a.envctl("cunregister", "web1")
	assert.Equal(t, 75, r.Code, "a running container is not given up (lxc-wait): %s", r.Stderr)
	assert.Contains(t, r.Stderr, "web1 is running")
	assert.Equal(t, "RUNNING", a.lxcState("web1"))
	ok(t, a.lxcStop("web1"), "lxc-stop on a")
	assert.Empty(t, a.mounts())

	// b cannot take it while a owns it.
	r = b.envctl("cregister", "web1")
	assert.Equal(t, 77, r.Code, r.Stderr)
	assert.Empty(t, b.mounts())

	ok(t, a.envctl("cunregister", "web1"), "cunregister on a")
	assert.Empty(t, a.mounts())

	ok(t, b.envctl("cregister", "web1"), "cregister on b")
	dirB := b.containerDir("web1")
	local, err := os.ReadFile(filepath.Join(dirB, "config"))
	require.NoError(t, err, "b's LXC got the config")
	assert.Contains(t, string(local), "lxc.rootfs.path = dir:"+dirB+"/rootfs", "moved to b's LXC_PATH")
	assert.NotContains(t, string(local), dirA)
	ok(t, b.lxcStart("web1"), "lxc-start on b")
	r = b.inside("web1", "cat /root/a.txt /shared.txt")
	ok(t, r, "read on b")
	assert.Equal(t, "written-on-a\nthe data of web1\n", r.Stdout, "the data moved without a copy")

	// a still has the config, but not the lease: its hook refuses.
	r = a.lxcStart("web1")
	assert.NotEqual(t, 0, r.Code, "a container owned elsewhere does not start")
	assert.Contains(t, a.lxcLog("web1"), "Script exited with status 77", "refused by the hook: owned by another node")
	assert.NotEqual(t, "RUNNING", a.lxcState("web1"))
	assert.Empty(t, a.mounts(), "nothing was attached on a")
	assert.Equal(t, "RUNNING", b.lxcState("web1"), "b's container is untouched")

	r = b.envctl("--json", "status", "jname=web1")
	ok(t, r, "status on b")
	assert.Regexp(t, regexp.MustCompile(`"kind": "container"`), r.Stdout)
	assert.Contains(t, r.Stdout, `"state": "registered-here"`)
	assert.Contains(t, r.Stdout, `"descriptor_on_shared_storage": true`)

	ok(t, b.lxcStop("web1"), "lxc-stop on b")
	ok(t, b.envctl("cunregister", "web1"), "cunregister on b")
	ok(t, a.envctl("cregister", "web1"), "back to a")
	ok(t, a.lxcStart("web1"), "lxc-start on a again")
	r = a.inside("web1", "cat /root/a.txt")
	ok(t, r, "read on a")
	assert.Equal(t, "written-on-a\n", r.Stdout)
	ok(t, a.lxcStop("web1"), "lxc-stop on a again")
}
