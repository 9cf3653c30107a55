package hook

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/failures"
	"github.com/envhooks/envhooks/tests/testenv"
)

// The bad-input corpus of the hooks' and envctl's command lines: flags,
// jnames and forged log lines, generated from failure classes. Every case
// must end in one line on stderr with the promised code, no control
// character from the input, a bounded length, and nothing changed.
// corpusCount counts the cases run, for the report at the end.
var corpusCount = map[string]int{}

// forgery payloads: each tries to make a second log line, or to hide or
// rewrite what an operator reads.
var forgeries = []string{
	"\nmnt-start: attached j1",
	"\r\nmnt-start: attached j1",
	"\rmnt-start: attached j1",
	"\x1b[2K\rmnt-start: attached j1",
	"\x1b[1A\x1b[2Kmnt-stop: detached",
	"\x1b]0;owned\x07",
	"\u2028mnt-start: attached j1",
	"\u2029mnt-start: attached j1",
	"\u0085mnt-start: attached j1",
	"\u202emnt-start: attached j1",
	"\u2066evil\u2069",
	"\v\fmnt-start: attached j1",
	"\bmnt-start",
	"\x7fmnt-start",
	"\xff\xfe\nmnt-start: attached j1",
	"\t\nenvctl: registered web1 on node-b",
	strings.Repeat("A", 120000) + "\nmnt-start: attached j1", // near MAX_ARG_STRLEN, 128 KiB
	strings.Repeat("\n", 4096),
}

// checkOneLine is the contract for a refused command line.
func checkOneLine(t *testing.T, n *node, class string, code int, prog string, args ...string) {
	t.Helper()
	corpusCount[class]++
	// A refusal is counted in the run directory's failures (for envctl
	// metrics); that directory is made here so the snapshot may skip it.
	require.NoError(t, os.MkdirAll(failures.Dir(filepath.Join(n.root, "run")), 0o755))
	before := n.snapshot()
	r := testenv.Run(t, []string{n.runDirEnv()}, testenv.Bin(t, prog), args...)
	assert.Equal(t, code, r.Code, "%s %q: %s", prog, args, r.Stderr)
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "%s %q: want one line, got %q", prog, args, r.Stderr)
	assert.True(t, strings.HasSuffix(r.Stderr, "\n"))
	assert.Less(t, len(r.Stderr), 4096, "%s: a bounded line", prog)
	assert.NotContains(t, r.Stderr, "panic")
	assert.NotContains(t, r.Stderr, "goroutine")
	for _, c := range strings.TrimSuffix(r.Stderr, "\n") {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '\u2028' || c == '\u2029' || c == '\u202e' || c == '\u2066' || c == '\u2069' {
			t.Errorf("%s %q: stderr carries control character %U: %q", prog, args, c, r.Stderr)
			break
		}
	}
	assert.Equal(t, before, n.snapshot(), "%s %q changed something", prog, args)
}

func TestCorpusFlags(t *testing.T) {
	leases := t.TempDir()
	n := newNode(t, "LEASE_DIR="+leases+"\n")
	n.create("web1")
	d, s := filepath.Join(n.workdir, "d"), filepath.Join(n.workdir, "s")
	base := func(extra ...string) []string {
		return append([]string{"-c", n.cfg, "-j", "web1", "-d", d, "-s", s}, extra...)
	}
	var cases [][]string
	for _, opt := range []string{"-q", "-x", "-Z", "-0", "--bogus", "--jnam=web1", "--data", "--config", "-", "--=x", "-dd", "---", "--dry-run=yes", "-n1"} {
		cases = append(cases, base(opt))
	}
	for _, flag := range []string{"-d", "-s", "-f", "-r"} {
		for _, bad := range []string{"rel/dir", "./x", "../x", "", "/", "//", "/./", "/a/../", "x"} {
			args := base()
			args = append(args, flag, bad)
			cases = append(cases, args)
		}
	}
	for _, extra := range []string{"extra", "start", "jname=web1", "-", "--", "a b"} {
		if extra == "--" || extra == "-" {
			continue
		}
		cases = append(cases, base(extra))
	}
	cases = append(cases,
		[]string{"-c", n.cfg, "-d", d, "-s", s},
		[]string{"-c", n.cfg, "-j", "web1", "-s", s},
		[]string{"-c", n.cfg, "-j", "web1", "-d", d},
		[]string{"-c", n.cfg, "-j", "web1", "-d", d, "-s"},
		[]string{"-c", n.cfg, "-j"},
		[]string{"-c", "", "-j", "web1", "-d", d, "-s", s},
		[]string{"-c"},
		[]string{"--config", "", "-j", "web1", "-d", d, "-s", s},
	)
	for _, args := range cases {
		checkOneLine(t, n, "flags", 64, "mnt-start", args...)
		checkOneLine(t, n, "flags", 64, "envhooks-attach", args...)
	}
	for _, args := range [][]string{{"-c", n.cfg}, {"-c", n.cfg, "-q", "-j", "web1"}, {"-c", n.cfg, "-j", "web1", "extra"}, {"-c", n.cfg, "-j", "web1", "-d", "rel"}, {"-c", n.cfg, "--bogus", "-j", "web1"}, {"-c", n.cfg, "-j"}} {
		checkOneLine(t, n, "flags", 64, "mnt-stop", args...)
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"lease"}, {"lease", "steal"}, {"--bogus", "list"}, {"keys", "color=red"}, {"keys", "a", "b"},
		{"-c", n.cfg, "status"}, {"-c", n.cfg, "status", "jname=web*"}, {"-c", n.cfg, "jregister", "jname=web1", "--force"},
		{"-c", n.cfg, "jregister", "jname=web1", "--takeover", "--force", "--from", "x"}, {"-c", n.cfg, "jregister", "jname=w*", "rcfile=/x"},
		{"-c", n.cfg, "status", "jname=a", "jname=b"}, {"-c", n.cfg, "status", "a", "b"}, {"-c", n.cfg, "jregister"}, {"-c", n.cfg, "lease", "show"}} {
		checkOneLine(t, n, "flags", 64, "envctl", args...)
	}
}

var badJNames = []string{"../x", "a b", "$(id)", "`id`", strings.Repeat("a", 65), strings.Repeat("a", 100000), "a/b", "/abs", "..", ".", "-x", ".hidden",
	"web1;reboot", "web1|cat", "web1&", "web1>x", "web1<x", "web1'", "web1\"", "web1\\", "web1*", "web1?", "web1[", "web1~", "~web1", "web1#", "web1=", "web1,",
	"web1!", "web1{", "web1}", "web1 ", " web1", "wéb1", "web1\u00a0", "ＷＥＢ１", "web1\t", "web1\x7f", "web1\xff",
	"\x1b[31mweb1", "web1\u202e", "\u200bweb1"}

func TestCorpusJNames(t *testing.T) {
	n := newNode(t, "LEASE_DIR="+t.TempDir()+"\n")
	d, s := filepath.Join(n.workdir, "d"), filepath.Join(n.workdir, "s")
	for _, j := range append(badJNames, "") {
		checkOneLine(t, n, "jnames", 65, "mnt-start", "-c", n.cfg, "-j", j, "-d", d, "-s", s)
		checkOneLine(t, n, "jnames", 65, "mnt-stop", "-c", n.cfg, "-j", j)
		if j != "" && !strings.ContainsAny(j, "*?[") {
			checkOneLine(t, n, "jnames", 65, "envctl", "-c", n.cfg, "status", "jname="+j)
		}
	}
}

func TestCorpusForgedLines(t *testing.T) {
	n := newNode(t, "LEASE_DIR="+t.TempDir()+"\n")
	d, s := filepath.Join(n.workdir, "d"), filepath.Join(n.workdir, "s")
	for _, p := range forgeries {
		checkOneLine(t, n, "forged lines", 64, "mnt-start", "-c", n.cfg, "-"+p)
		checkOneLine(t, n, "forged lines", 64, "mnt-start", "-c", n.cfg, "--x"+p)
		checkOneLine(t, n, "forged lines", 65, "mnt-start", "-c", n.cfg, "-j", "web1"+p, "-d", d, "-s", s)
		checkOneLine(t, n, "forged lines", 64, "mnt-start", "-c", n.cfg, "-j", "web1", "-d", "rel"+p, "-s", s)
		checkOneLine(t, n, "forged lines", 64, "mnt-start", "-c", n.cfg, "-j", "web1", "-d", d, "-s", s, "extra"+p)
		checkOneLine(t, n, "forged lines", 65, "mnt-stop", "-c", n.cfg, "-j", "web1"+p)
		checkOneLine(t, n, "forged lines", 64, "envctl", "-c", n.cfg, "frob"+p)
		checkOneLine(t, n, "forged lines", 64, "envctl", "-c", n.cfg, "status", "color="+p)
		code := 65
		if strings.ContainsAny(p, "*?[") {
			code = 64 // a pattern, where status takes one name
		}
		checkOneLine(t, n, "forged lines", code, "envctl", "-c", n.cfg, "status", "jname=web1"+p)
		checkOneLine(t, n, "forged lines", 78, "mnt-start", "-c", filepath.Join(n.root, "missing"+p+".conf"), "-j", "web1", "-d", d, "-s", s)
	}
}

// A configuration value that tries the same is refused on one line too.
func TestCorpusForgedConfigValues(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	dir := t.TempDir()
	for i, p := range forgeries[:12] {
		conf := filepath.Join(dir, fmt.Sprintf("forged%d.conf", i))
		quoted := strings.NewReplacer("\\", "\\\\", "\"", "\\\"", "\n", "\\n", "\r", "\\r").Replace(p)
		testenv.WriteFile(t, conf, fmt.Sprintf("BACKEND=nullfs\nNULLFS_ROOT=%s\nSTATE_DIR=%s\nSYSLOG=0\nNODE_NAME=\"a%s\"\n", n.dfs, n.state, quoted), 0o644)
		checkOneLine(t, n, "forged lines", 78, "mnt-start", append([]string{"-c", conf}, n.jailArgs("web1")...)...)
		testenv.WriteFile(t, conf, fmt.Sprintf("BACKEND=nullfs%s\n", quoted), 0o644)
		checkOneLine(t, n, "forged lines", 78, "mnt-start", append([]string{"-c", conf}, n.jailArgs("web1")...)...)
	}
}

// Exec hooks that misbehave, and executables in places others can change.
func TestCorpusExecHooks(t *testing.T) {
	safe := testenv.SafeDir(t)
	hook := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(safe, name)
		testenv.WriteFile(t, p, "#!/bin/sh\n"+body, mode)
		return p
	}
	type hookCase struct {
		name, body string
		timeout    int
		code       int
		mention    string
	}
	for _, tc := range []hookCase{
		{"setsid-grandchild", "setsid sleep 300 &\nsleep 300\n", 1, 69, "did not finish within 1s"},
		{"double-fork", "( ( sleep 300 & ) & )\nsleep 300\n", 1, 69, "did not finish within 1s"},
		{"ignores-term", "trap '' TERM INT HUP\nsleep 300\n", 1, 69, "did not finish within 1s"},
		{"new-group", "set -m\nsleep 300 &\nwait\n", 1, 69, "did not finish within 1s"},
		{"exits-nonzero-with-floods", "i=0; while [ $i -lt 2000 ]; do echo \"noise $i\" >&2; i=$((i+1)); done; printf 'forged\\nmnt-start: attached j1' >&2; exit 3\n", 30, 69, "exited 3"},
		{"escape-sequences", "printf '\\033[2K\\rmnt-start: attached j1\\n' >&2; exit 2\n", 30, 69, `\x1b[2K\rmnt-start`},
		{"huge-stderr-line", "head -c 1000000 /dev/zero | tr '\\0' x >&2; exit 4\n", 30, 69, "exited 4"},
		{"floods-stdout", "cat /dev/zero\n", 30, 69, ""},
		{"kills-itself", "kill -9 $$\n", 30, 69, "signal: killed"},
		{"missing-interpreter", "", 30, 69, ""},
	} {
		corpusCount["exec hooks"]++
		body := tc.body
		p := hook(tc.name, body, 0o755)
		if tc.name == "missing-interpreter" {
			testenv.WriteFile(t, p, "#!/nonexistent/interpreter\n", 0o755)
		}
		n := newNode(t, fmt.Sprintf("BACKEND=exec\nEXEC_HOOK=%s\nEXEC_TIMEOUT=%d\n", p, tc.timeout))
		start := time.Now()
		r := n.start("web1")
		assert.Equal(t, tc.code, r.Code, "%s: %s", tc.name, r.Stderr)
		assert.Contains(t, r.Stderr, tc.mention, tc.name)
		assert.Less(t, time.Since(start), 90*time.Second, tc.name)
		lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
		assert.Contains(t, lines[len(lines)-1], "error:", tc.name)
		assert.Less(t, len(r.Stderr), 8192, "%s: bounded", tc.name)
		assert.NotContains(t, r.Stderr, "\x1b", tc.name)
	}
	// Where the hook lives: refused with 78 before it runs.
	tmp := t.TempDir()
	inTmp := filepath.Join(tmp, "hook")
	testenv.WriteFile(t, inTmp, "#!/bin/sh\ntouch "+tmp+"/ran\n", 0o755)
	open := filepath.Join(safe, "open")
	require.NoError(t, os.MkdirAll(open, 0o777))
	require.NoError(t, os.Chmod(open, 0o777))
	inOpen := filepath.Join(open, "hook")
	testenv.WriteFile(t, inOpen, "#!/bin/sh\n", 0o755)
	group := filepath.Join(safe, "group")
	require.NoError(t, os.MkdirAll(group, 0o775))
	require.NoError(t, os.Chmod(group, 0o775))
	inGroup := filepath.Join(group, "hook")
	testenv.WriteFile(t, inGroup, "#!/bin/sh\n", 0o755)
	notRoot := hook("not-root", "", 0o755)
	require.NoError(t, os.Chown(notRoot, 65534, 65534))
	groupWritable := hook("group-writable", "", 0o775)
	require.NoError(t, os.Chmod(groupWritable, 0o775))
	notExec := hook("not-executable", "", 0o644)
	link := filepath.Join(safe, "link-to-tmp")
	require.NoError(t, os.Symlink(inTmp, link))
	fifo := filepath.Join(safe, "fifo")
	require.NoError(t, mkfifo(fifo))
	for _, p := range []string{inTmp, inOpen, inGroup, notRoot, groupWritable, notExec, link, fifo, safe, filepath.Join(safe, "missing"), "relative/hook", "/dev/zero", "/dev/null"} {
		corpusCount["exec hooks"]++
		n := newNode(t, "BACKEND=exec\nEXEC_HOOK="+p+"\n")
		r := n.start("web1")
		assert.Equal(t, 78, r.Code, "%s: %s", p, r.Stderr)
		assert.Contains(t, r.Stderr, "EXEC_HOOK", p)
		assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "%s: %q", p, r.Stderr)
	}
	assert.NoFileExists(t, filepath.Join(tmp, "ran"))
}

// Which deadline fires, and what the message says: every pair of a run's
// deadline and a step's.
func TestCorpusDeadlines(t *testing.T) {
	safe := testenv.SafeDir(t)
	hang := filepath.Join(safe, "hang")
	testenv.WriteFile(t, hang, "#!/bin/sh\nsleep 300\n", 0o755)
	stopHangs := filepath.Join(safe, "stop-hangs")
	testenv.WriteFile(t, stopHangs, "#!/bin/sh\ncase \"$*\" in *stop) sleep 300;; esac\n", 0o755)
	for _, tc := range []struct {
		conf, verb, mention, not string
		code                     int
		lock                     bool
	}{
		{"EXEC_HOOK=" + hang + "\nEXEC_TIMEOUT=300\nHOOK_TIMEOUT=1\n", "start", "killed: HOOK_TIMEOUT=1s passed", "5m0s", 69, false},
		{"EXEC_HOOK=" + hang + "\nEXEC_TIMEOUT=1\nHOOK_TIMEOUT=300\n", "start", "did not finish within 1s", "HOOK_TIMEOUT", 69, false},
		{"EXEC_HOOK=" + hang + "\nEXEC_TIMEOUT=2\nCOMMAND_TIMEOUT=1\n", "start", "did not finish within 2s", "1s", 69, false},
		{"EXEC_HOOK=" + stopHangs + "\nEXEC_TIMEOUT=1\nCOMMAND_TIMEOUT=300\n", "stop", "did not finish within 1s", "5m0s", 69, false},
		{"EXEC_HOOK=" + stopHangs + "\nEXEC_TIMEOUT=300\nHOOK_TIMEOUT=1\n", "stop", "killed: HOOK_TIMEOUT=1s passed", "5m0s", 69, false},
		{"EXEC_HOOK=" + hang + "\nLOCK_TIMEOUT=300\nHOOK_TIMEOUT=1\n", "start", "when HOOK_TIMEOUT=1s passed", "5m0s", 75, true},
		{"EXEC_HOOK=" + hang + "\nLOCK_TIMEOUT=1\nHOOK_TIMEOUT=300\n", "start", "when LOCK_TIMEOUT=1s passed", "HOOK_TIMEOUT", 75, true},
		{"EXEC_HOOK=" + stopHangs + "\nLOCK_TIMEOUT=300\nHOOK_TIMEOUT=1\n", "stop", "when HOOK_TIMEOUT=1s passed", "5m0s", 75, true},
	} {
		corpusCount["deadlines"]++
		n := newNode(t, "BACKEND=exec\n"+tc.conf)
		if tc.verb == "stop" && !tc.lock {
			requireOK(t, n.start("web1"))
		}
		if tc.lock {
			lockFile := filepath.Join(n.state, "web1.lock")
			testenv.WriteFile(t, lockFile, "", 0o600)
			f, err := os.Open(lockFile)
			require.NoError(t, err)
			require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
			defer f.Close()
		}
		var r testenv.Result
		if tc.verb == "start" {
			r = n.start("web1")
		} else {
			r = n.stop("web1")
		}
		assert.Equal(t, tc.code, r.Code, "%q: %s", tc.conf, r.Stderr)
		assert.Contains(t, r.Stderr, tc.mention, tc.conf)
		assert.NotContains(t, r.Stderr, tc.not, tc.conf)
		assert.Less(t, r.Took, 60*time.Second, tc.conf)
	}
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o755) }

// TestCorpusCounts says how many cases the corpus ran (go test -v shows it).
func TestCorpusCounts(t *testing.T) {
	total := 0
	for class, c := range corpusCount {
		t.Logf("bad-input corpus: %s: %d cases", class, c)
		total += c
	}
	t.Logf("bad-input corpus: %d cases in all (this package's command lines, hooks and deadlines)", total)
}
