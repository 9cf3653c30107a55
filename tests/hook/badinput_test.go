package hook

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/envhooks/envhooks/tests/testenv"
)

// assertOneLineError checks the contract for every failure: the right
// sysexits code, exactly one line on stderr that names the problem, and no
// change on disk.
func assertOneLineError(t *testing.T, n *node, code int, mention string, prog string, args ...string) {
	t.Helper()
	before := n.snapshot()
	r := testenv.Run(t, nil, testenv.Bin(t, prog), args...)
	assert.Equal(t, code, r.Code, "%v: %s", args, r.Stderr)
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	assert.Len(t, lines, 1, "%v: want one line, got %q", args, r.Stderr)
	assert.Contains(t, r.Stderr, mention, "%v", args)
	assert.NotContains(t, r.Stderr, "panic", "%v", args)
	assert.Equal(t, before, n.snapshot(), "%v changed something", args)
}

func TestBadFlags(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	d, s := filepath.Join(n.workdir, "d"), filepath.Join(n.workdir, "s")
	c := []string{"-c", n.cfg}
	cases := []struct {
		args    []string
		mention string
	}{
		{[]string{"-d", d, "-s", s}, "-j JNAME is required"},
		{[]string{"-j", "web1", "-s", s}, "-d DATA is required"},
		{[]string{"-j", "web1", "-d", d}, "-s SYSDATA is required"},
		{[]string{"-j", "web1", "-d", d, "-s", s, "-q"}, "unknown option"},
		{[]string{"-j", "web1", "-d", "rel/dir", "-s", s}, "absolute path"},
		{[]string{"-j", "web1", "-d", d, "-s", s, "extra"}, "unexpected argument"},
		{[]string{"-j", "web1", "-d", d, "-s"}, "missing"},
		{[]string{"-j", "web1", "-d", "/", "-s", s}, "refusing to use /"},
	}
	for _, tc := range cases {
		assertOneLineError(t, n, 64, tc.mention, "mnt-start", append(c, tc.args...)...)
	}
	assertOneLineError(t, n, 64, "-j JNAME is required", "mnt-stop", c...)
}

func TestBadJNames(t *testing.T) {
	n := newNode(t, "")
	d, s := filepath.Join(n.workdir, "d"), filepath.Join(n.workdir, "s")
	for _, j := range []string{"../x", "a b", "$(id)", strings.Repeat("a", 65), "a/b", "..", ".", "-x", "web1;reboot", ""} {
		assertOneLineError(t, n, 65, "jname", "mnt-start", "-c", n.cfg, "-j", j, "-d", d, "-s", s)
		assertOneLineError(t, n, 65, "jname", "mnt-stop", "-c", n.cfg, "-j", j)
	}
}

func TestBadConfigFiles(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	dir := t.TempDir()
	cases := []struct {
		content string
		mention string
		code    int
	}{
		{"BACKEND=nullfs\nNULLFS_ROOT=" + n.dfs + "\nCOMMAND_TIMEOUT=soon\n", "bad.conf:3: COMMAND_TIMEOUT", 78},
		{"BACKEND=tape\n", "bad.conf:1: BACKEND", 78},
		{"BACKEND=nullfs\nNULLFS_ROOT=relative/dir\n", "bad.conf:2: NULLFS_ROOT", 78},
		{"BACKEND=nullfs\nMOUNT_FSTAB=perhaps\n", "MOUNT_FSTAB", 78},
		{"BACKEND=nullfs\n", "NULLFS_ROOT", 78},
		{"STATE_DIR=" + n.state + "\n", "no storage backend configured", 78},
		{"BACKEND=exec\nEXEC_HOOK=/nonexistent/hook\n", "EXEC_HOOK", 78},
		{"BACKEND=\"nullfs\n", "bad.conf", 78},
	}
	for _, tc := range cases {
		p := filepath.Join(dir, "bad.conf")
		testenv.WriteFile(t, p, tc.content+fmt.Sprintf("STATE_DIR=%s\nSYSLOG=0\n", n.state), 0o644)
		assertOneLineError(t, n, tc.code, tc.mention, "mnt-start", append([]string{"-c", p}, n.jailArgs("web1")...)...)
	}
	assertOneLineError(t, n, 78, "missing.conf", "mnt-start", append([]string{"-c", filepath.Join(dir, "missing.conf")}, n.jailArgs("web1")...)...)
}

// An unknown key is a warning (a typo), not a failure.
func TestUnknownKeyWarns(t *testing.T) {
	n := newNode(t, "NULLFS_RO0T=/typo\n")
	n.create("web1")
	r := n.start("web1")
	requireOK(t, r)
	assert.Contains(t, r.Stderr, "unknown key NULLFS_RO0T")
	requireOK(t, n.stop("web1"))
}

// A deprecated key still works, and mnt-start and mnt-stop each say once,
// in one line, which key replaces it; a bad value under it is refused
// under the name the operator wrote.
func TestDeprecatedKeyWarnsAndStillCounts(t *testing.T) {
	n := newNode(t, "ISCSI_PREFLIGHT_TIMEOUT=4\n")
	n.create("web1")
	want := n.cfg + ":7: ISCSI_PREFLIGHT_TIMEOUT is deprecated, replaced by PREFLIGHT_TIMEOUT"
	for _, r := range []testenv.Result{n.start("web1"), n.stop("web1")} {
		requireOK(t, r)
		assert.Equal(t, 1, strings.Count(r.Stderr, "ISCSI_PREFLIGHT_TIMEOUT"), "one warning: %s", r.Stderr)
		assert.Contains(t, r.Stderr, want)
	}
	testenv.WriteFile(t, n.cfg+".bad", "ISCSI_PREFLIGHT_TIMEOUT=soon\n", 0o644)
	assertOneLineError(t, n, 78, `ISCSI_PREFLIGHT_TIMEOUT="soon"`, "mnt-start", append([]string{"-c", n.cfg + ".bad"}, n.jailArgs("web1")...)...)
}

// The per-environment file beside the global one overrides it.
func TestPerEnvironmentConfig(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	testenv.WriteFile(t, filepath.Join(filepath.Dir(n.cfg), "envhooks.d", "web1.conf"), "MOUNT_FSTAB=0\n", 0o644)
	requireOK(t, n.start("web1"))
	assert.Len(t, n.mounts(), 2, "fstab is off for web1 only")
	requireOK(t, n.stop("web1"))
	_ = os.Remove
}

// One configuration file serves mnt-start, mnt-stop and envctl: none of
// them calls another's keys unknown.
func TestEveryProgramKnowsEveryKey(t *testing.T) {
	n := newNode(t, "INVENTORY_DIR=/var/tmp/inv\nRUNNING_CHECK=false\nPARALLEL=2\nCBSD_DELEGATE=0\nLEASE_BACKEND=file\n")
	n.create("web1")
	r := n.start("web1")
	requireOK(t, r)
	assert.NotContains(t, r.Stderr, "unknown key")
	r = n.stop("web1")
	requireOK(t, r)
	assert.NotContains(t, r.Stderr, "unknown key")
}
