package hook

// The corpus: bad inputs and injected faults, generated from failure
// classes (command lines, jnames, forged log lines, exec hooks, deadlines,
// configuration files, records, symbolic links, kills), each run against
// the real programs and checked against the contract: a promised exit
// code, one line on stderr that names what is wrong, nothing of the input
// echoed, no control character, no hang, no change on disk when the input
// is refused, and never exit 0 with something left attached. corpusCount
// counts the cases by class; TestCorpusCounts, last, reports them.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/failures"
	"github.com/envhooks/envhooks/lib/sysexits"
	"github.com/envhooks/envhooks/tests/testenv"
)

// corpusCount counts the cases run by class, for the report at the end.
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
	what := fmt.Sprintf("%s %.200q", prog, args)
	assert.Equal(t, code, r.Code, "%s: %s", what, r.Stderr)
	assertOneLine(t, r.Stderr, what)
	assert.Equal(t, before, n.snapshot(), "%s changed something", what)
}

func TestCorpusFlags(t *testing.T) {
	n := newNode(t, "LEASE_DIR="+testenv.SharedLeaseDir(t, t.TempDir())+"\n")
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
	n := newNode(t, "LEASE_DIR="+testenv.SharedLeaseDir(t, t.TempDir())+"\n")
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
	n := newNode(t, "LEASE_DIR="+testenv.SharedLeaseDir(t, t.TempDir())+"\n")
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

// secret is planted in bad inputs: no message may repeat it.
const secret = "SECRET-0xdeadbeef"

// badFile is one bad configuration file: how to make it at path, and what
// the one line must name (the path itself when empty).
type badFile struct {
	name    string
	make    func(t *testing.T, path string)
	mention string
}

func content(text string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) { testenv.WriteFile(t, path, text, 0o644) }
}

// badConfigs are the configuration files every program must refuse with 78.
func badConfigs() []badFile {
	special := []badFile{
		{"a FIFO", func(t *testing.T, p string) { require.NoError(t, syscall.Mkfifo(p, 0o644)) }, "FIFO"},
		{"/dev/zero", func(t *testing.T, p string) { require.NoError(t, os.Symlink("/dev/zero", p)) }, "character device"},
		{"/dev/urandom", func(t *testing.T, p string) { require.NoError(t, os.Symlink("/dev/urandom", p)) }, "character device"},
		{"a directory", func(t *testing.T, p string) { require.NoError(t, os.MkdirAll(p, 0o755)) }, "directory"},
		{"a socket", func(t *testing.T, p string) {
			l, err := net.Listen("unix", p)
			require.NoError(t, err)
			t.Cleanup(func() { l.Close() })
		}, "socket"},
		{"a link to a FIFO", func(t *testing.T, p string) {
			require.NoError(t, syscall.Mkfifo(p+".fifo", 0o644))
			require.NoError(t, os.Symlink(p+".fifo", p))
		}, "FIFO"},
		{"2 MiB of comments", content(strings.Repeat("# "+secret+"\n", 2<<20/20)), "too large"},
		{"one 2 MiB line", content("BACKEND=" + strings.Repeat("x", 2<<20)), "too large"},
	}
	texts := map[string]string{
		"garbage last line without newline": "BACKEND=nullfs\n" + secret,
		"garbage last line":                 "BACKEND=nullfs\n" + secret + "\n",
		"garbage first line":                secret + "\nBACKEND=nullfs\n",
		"a bare key":                        "BACKEND\n",
		"a bare word after values":          "BACKEND=nullfs\nMOUNT_FSTAB=1\nnonsense\n",
		"a NUL byte":                        "BACKEND=null\x00fs\n",
		"a NUL line":                        "\x00\n",
		"an unterminated double quote":      "BACKEND=\"nullfs\nMOUNT_FSTAB=1\n" + secret + "\n",
		"an unterminated single quote":      "BACKEND='nullfs\n",
		"text after a closing quote":        "BACKEND=\"nullfs\" " + secret + "\n",
		"a key with a dash":                 "NULLFS-ROOT=/x\n",
		"an empty key":                      "=" + secret + "\n",
		"export alone":                      "export\n",
		"a shell command":                   "echo " + secret + "\n",
		"a shell if":                        "if [ -x /bin/sh ]; then\nBACKEND=nullfs\nfi\n",
		"a byte order mark":                 "\ufeffBACKEND=nullfs\n",
		"JSON":                              `{"BACKEND": "nullfs"}` + "\n",
	}
	for i := 0; i < 6; i++ {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		b := make([]byte, 256+rng.IntN(4096))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		texts[fmt.Sprintf("random bytes %d", i)] = string(b) + secret
	}
	var out []badFile
	out = append(out, special...)
	for name, text := range texts {
		out = append(out, badFile{name, content(text), ""})
	}
	values := map[string]string{
		"COMMAND_TIMEOUT=soon":                           "COMMAND_TIMEOUT",
		"HOOK_TIMEOUT=0":                                 "HOOK_TIMEOUT",
		"HOOK_TIMEOUT=99999999999":                       "HOOK_TIMEOUT",
		"MOUNT_FSTAB=perhaps":                            "MOUNT_FSTAB",
		"NULLFS_ROOT=relative/dir":                       "NULLFS_ROOT",
		"STATE_DIR=state":                                "STATE_DIR",
		"WORKDIR=\"/usr/jails\nx\"":                      "WORKDIR",
		"LEASE_BACKEND=zookeeper":                        "LEASE_BACKEND",
		"NODE_NAME=\"node a\"":                           "NODE_NAME",
		"ETCD_ENDPOINTS=127.0.0.1:1":                     "ETCD_ENDPOINTS",
		"PARALLEL=-1":                                    "PARALLEL",
		"LOCK_TIMEOUT=1e3":                               "LOCK_TIMEOUT",
		"HOOK_TIMEOUT=" + strings.Repeat("9", 900<<10):   "HOOK_TIMEOUT",
		"ETCD_ENDPOINTS=" + strings.Repeat("x", 900<<10): "ETCD_ENDPOINTS",
	}
	for text, key := range values {
		out = append(out, badFile{"value " + text, content(text + "\n"), key})
	}
	return out
}

// A bad configuration file, as the global file (-c) or as the
// environment's own file, for mnt-start, mnt-stop and envctl: 78, one line
// naming it, nothing echoed, nothing changed.
func corpusConfigurationFiles(t *testing.T) int {
	n := newNode(t, "")
	n.create("web1")
	leases := testenv.SharedLeaseDir(t, filepath.Join(n.root, "leases"))
	cases := 0
	for _, bad := range badConfigs() {
		for _, placement := range []string{"global", "per-environment"} {
			dir := t.TempDir()
			global := filepath.Join(dir, "envhooks.conf")
			path := global
			if placement == "global" {
				bad.make(t, global)
			} else {
				raw, err := os.ReadFile(n.cfg)
				require.NoError(t, err)
				testenv.WriteFile(t, global, string(raw)+"LEASE_DIR="+leases+"\n", 0o644)
				path = filepath.Join(dir, "envhooks.d", "web1.conf")
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				bad.make(t, path)
			}
			mention := bad.mention
			if mention == "" || strings.Contains(bad.name, "value") {
				mention = path
			}
			for _, prog := range []struct {
				name string
				args []string
			}{
				{"mnt-start", append([]string{"-c", global}, n.jailArgs("web1")...)},
				{"mnt-stop", []string{"-c", global, "-j", "web1"}},
				{"envctl", []string{"-c", global, "status", "jname=web1"}},
			} {
				cases++
				require.NoError(t, os.MkdirAll(failures.Dir(filepath.Join(n.root, "run")), 0o755)) // see checkOneLine
				before := n.snapshot()
				r := testenv.Run(t, []string{n.runDirEnv()}, testenv.Bin(t, prog.name), prog.args...)
				what := fmt.Sprintf("%s, %s, %s", bad.name, placement, prog.name)
				assert.Equal(t, sysexits.Config, r.Code, "%s: %s", what, r.Stderr)
				assertOneLine(t, r.Stderr, what)
				assert.Contains(t, r.Stderr, mention, what)
				if bad.mention != "" && strings.Contains(bad.name, "value") {
					assert.Contains(t, r.Stderr, bad.mention, what)
				}
				assert.Equal(t, before, n.snapshot(), "%s changed something", what)
			}
		}
	}
	return cases
}

// assertOneLine checks the message contract: one bounded line, no panic,
// nothing of the planted secret, no control character (from the input or
// not) that could forge or hide a line.
func assertOneLine(t *testing.T, stderr, what string) {
	t.Helper()
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "%s: want one line: %q", what, stderr)
	assert.True(t, strings.HasSuffix(stderr, "\n"), "%s: a whole line", what)
	assert.Less(t, len(stderr), maxLine, "%s: a bounded line", what)
	assert.NotContains(t, stderr, secret, what)
	assert.NotContains(t, stderr, "panic", what)
	assert.NotContains(t, stderr, "goroutine", what)
	for _, c := range strings.TrimSuffix(stderr, "\n") {
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c == '\u2028' || c == '\u2029' || c == '\u202e' || c == '\u2066' || c == '\u2069' {
			t.Errorf("%s: stderr carries control character %U: %q", what, c, stderr)
			break
		}
	}
}

// maxLine bounds a refusal's line (lib/oneline cuts what it quotes).
const maxLine = 4096

// damage is one way a record can be damaged.
type damage struct {
	name string
	make func(t *testing.T, path string, good []byte)
}

func damages(good []byte, legacy []byte, rng *rand.Rand) []damage {
	var out []damage
	for cut := 0; cut < len(good); cut += 24 {
		cut := cut
		out = append(out, damage{fmt.Sprintf("cut at byte %d", cut), func(t *testing.T, p string, _ []byte) {
			testenv.WriteFile(t, p, string(good[:cut]), 0o600)
		}})
	}
	for cut := 16; cut < len(legacy); cut += 48 {
		cut := cut
		out = append(out, damage{fmt.Sprintf("0.1's format cut at byte %d", cut), func(t *testing.T, p string, _ []byte) {
			testenv.WriteFile(t, p, string(legacy[:cut]), 0o600)
		}})
	}
	for i := 0; i < 24; i++ {
		at, bit := rng.IntN(len(good)), byte(1)<<rng.UintN(8)
		out = append(out, damage{fmt.Sprintf("bit %d flipped at byte %d", bit, at), func(t *testing.T, p string, _ []byte) {
			b := append([]byte(nil), good...)
			b[at] ^= bit
			testenv.WriteFile(t, p, string(b), 0o600)
		}})
	}
	special := map[string]func(t *testing.T, p string, good []byte){
		"empty":       func(t *testing.T, p string, _ []byte) { testenv.WriteFile(t, p, "", 0o600) },
		"a FIFO":      func(t *testing.T, p string, _ []byte) { require.NoError(t, syscall.Mkfifo(p, 0o600)) },
		"/dev/zero":   func(t *testing.T, p string, _ []byte) { require.NoError(t, os.Symlink("/dev/zero", p)) },
		"a directory": func(t *testing.T, p string, _ []byte) { require.NoError(t, os.MkdirAll(p, 0o700)) },
		"5 MiB":       func(t *testing.T, p string, _ []byte) { testenv.WriteFile(t, p, strings.Repeat(" ", 5<<20), 0o600) },
		"a lease": func(t *testing.T, p string, _ []byte) {
			testenv.WriteFile(t, p, `{"format": "envhooks-lease 2", "jname": "web1"}`, 0o600)
		},
		"another env": func(t *testing.T, p string, g []byte) {
			testenv.WriteFile(t, p, strings.Replace(string(g), `"web1"`, `"web2"`, 1), 0o600)
		},
		"secret lines": func(t *testing.T, p string, _ []byte) { testenv.WriteFile(t, p, secret+"\n"+secret, 0o600) },
		"binary":       func(t *testing.T, p string, _ []byte) { testenv.WriteFile(t, p, "\x00\x01\xff"+secret, 0o600) },
		"wrong types": func(t *testing.T, p string, _ []byte) {
			testenv.WriteFile(t, p, `{"format": "envhooks-state 2", "jname": "web1", "actions": {"a": 1}}`, 0o600)
		},
	}
	for name, f := range special {
		out = append(out, damage{name, f})
	}
	return out
}

// A damaged state record with the environment attached: mnt-start refuses
// it with 65 naming it (or, when the damage left a valid record, answers
// 0 without stacking a mount); mnt-stop detaches everything the plan
// attaches either way and exits 0 or 65: never 0 with a mount left.
func corpusStateRecords(t *testing.T) int {
	n := newNode(t, "")
	n.create("web1")
	requireOK(t, n.start("web1"))
	good, err := os.ReadFile(n.recordPath("web1"))
	require.NoError(t, err)
	legacyRaw, err := os.ReadFile("testdata/written-by-0.1.state")
	require.NoError(t, err)
	legacy := []byte(strings.NewReplacer("@DFS@", n.dfs, "@WORKDIR@", n.workdir).Replace(string(legacyRaw)))
	cases := damages(good, legacy, rand.New(rand.NewPCG(14, 3)))
	for _, d := range cases {
		p := n.recordPath("web1")
		require.NoError(t, os.RemoveAll(p))
		d.make(t, p, good)
		r := n.start("web1")
		switch r.Code {
		case 0:
			assert.Len(t, n.mounts(), 3, "%s: a valid record, nothing stacked", d.name)
		case sysexits.DataErr:
			assertOneLine(t, r.Stderr, d.name)
			assert.Contains(t, r.Stderr, "state record "+p, d.name)
		default:
			t.Errorf("%s: mnt-start exited %d: %s", d.name, r.Code, r.Stderr)
		}
		r = n.stop("web1")
		assert.Contains(t, []int{0, sysexits.DataErr}, r.Code, "%s: %s", d.name, r.Stderr)
		assert.Empty(t, n.mounts(), "%s: mnt-stop exited %d and left mounts", d.name, r.Code)
		// Back to attached, with a good record, for the next case.
		require.NoError(t, os.RemoveAll(p))
		requireOK(t, n.start("web1"))
	}
	return len(cases)
}

// A damaged quick-check note never makes mnt-start answer by itself.
func corpusNotes(t *testing.T) int {
	n := newNode(t, "")
	n.create("web1")
	requireOK(t, n.start("web1"))
	p := filepath.Join(n.root, "run", "web1.quick")
	good, err := os.ReadFile(p)
	require.NoError(t, err)
	legacy, err := os.ReadFile("testdata/written-by-0.1.quick")
	require.NoError(t, err)
	cases := damages(good, legacy, rand.New(rand.NewPCG(14, 4)))
	quick := 0
	for _, d := range cases {
		require.NoError(t, os.RemoveAll(p))
		d.make(t, p, good)
		if answeredQuickly(t, n, nil, "web1") {
			quick++
			raw, _ := os.ReadFile(p)
			assert.JSONEq(t, string(good), string(raw), "%s: only an intact note is trusted", d.name)
		}
	}
	assert.LessOrEqual(t, quick, 2, "only damage that leaves the note intact (trailing white space) may be trusted")
	return len(cases)
}

// Damaged inventory and lease records: envctl status names the damaged one
// with 65, list shows the other environments.
func corpusEnvctlRecords(t *testing.T) int {
	n := newNode(t, "")
	leases := testenv.SharedLeaseDir(t, filepath.Join(n.root, "leases"))
	inv := filepath.Join(n.root, "inventory")
	cfg := filepath.Join(n.root, "etc", "envctl.conf")
	raw, err := os.ReadFile(n.cfg)
	require.NoError(t, err)
	testenv.WriteFile(t, cfg, fmt.Sprintf("%sLEASE_DIR=%s\nINVENTORY_DIR=%s\nNODE_NAME=a\n", raw, leases, inv), 0o644)
	invGood := `{"format": "envhooks-inventory 2", "jname": "web1", "kind": "jail", "node": "a", "registered": "2026-01-01T00:00:00Z", "generation": 1, "descriptor": "jname=\"web1\";\n"}` + "\n"
	leaseGood := `{"format": "envhooks-lease 2", "jname": "web1", "node": "a", "since": "2026-01-01T00:00:00Z", "generation": 1}` + "\n"
	testenv.WriteFile(t, filepath.Join(inv, "web2.json"), strings.ReplaceAll(invGood, "web1", "web2"), 0o644)
	testenv.WriteFile(t, filepath.Join(leases, "web2.lease"), strings.ReplaceAll(leaseGood, "web1", "web2"), 0o644)
	count := 0
	for _, kind := range []struct {
		what, path, good string
		legacy           string
	}{
		{"inventory record", filepath.Join(inv, "web1.json"), invGood, strings.Replace(invGood, `"format": "envhooks-inventory 2", `, "", 1)},
		{"lease record", filepath.Join(leases, "web1.lease"), leaseGood, "node=a\nsince=2026-01-01T00:00:00Z\ngeneration=1\n"},
	} {
		for _, d := range damages([]byte(kind.good), []byte(kind.legacy), rand.New(rand.NewPCG(14, 5))) {
			count++
			for _, p := range []string{filepath.Join(inv, "web1.json"), filepath.Join(leases, "web1.lease")} {
				require.NoError(t, os.RemoveAll(p)) // the last damage may have left a directory or a FIFO
			}
			testenv.WriteFile(t, filepath.Join(inv, "web1.json"), invGood, 0o644)
			testenv.WriteFile(t, filepath.Join(leases, "web1.lease"), leaseGood, 0o644)
			require.NoError(t, os.RemoveAll(kind.path))
			d.make(t, kind.path, []byte(kind.good))
			what := kind.what + ", " + d.name
			r := testenv.Run(t, nil, testenv.Bin(t, "envctl"), "-c", cfg, "status", "web1")
			switch r.Code {
			case 0:
				assert.NotContains(t, r.Stdout, "damaged", what)
			case sysexits.DataErr:
				assertOneLine(t, r.Stderr, what)
				assert.Contains(t, r.Stderr, kind.what+" "+kind.path, what)
				assert.Contains(t, r.Stdout, "damaged", what)
			default:
				t.Errorf("%s: status exited %d: %s", what, r.Code, r.Stderr)
			}
			r = testenv.Run(t, nil, testenv.Bin(t, "envctl"), "-c", cfg, "list")
			assert.Contains(t, []int{0, sysexits.DataErr}, r.Code, "%s: %s", what, r.Stderr)
			assert.Contains(t, r.Stdout, "web2", "%s: the others are listed", what)
		}
	}
	return count
}

// Every combination of links in NULLFS_ROOT, the workdir and a mount point
// (and a source): starts never stack, the stop leaves nothing.
func corpusSymlinks(t *testing.T) int {
	roots := []string{"plain", "absolute link", "relative link", "chain"}
	workdirs := []string{"plain", "link", "parent link"}
	points := []string{"plain", "link"}
	sources := []string{"plain", "link"}
	count := 0
	for _, root := range roots {
		for _, wd := range workdirs {
			for _, point := range points {
				for _, source := range sources {
					count++
					name := fmt.Sprintf("root %s - workdir %s - mount point %s - source %s", root, wd, point, source) // no "," or ";": a workdir holding one is refused
					t.Run(name, func(t *testing.T) {
						n := newNode(t, "")
						n.create("web1")
						args := n.linked(root, wd, point, source)
						run := func(prog string) testenv.Result {
							return testenv.Run(t, []string{n.runDirEnv()}, testenv.Bin(t, prog), append([]string{"-c", n.cfg}, args...)...)
						}
						for i := 0; i < 2; i++ {
							requireOK(t, run("mnt-start"))
							assert.Len(t, n.mountsAll(), 3, "start %d", i+1)
						}
						requireOK(t, run("mnt-stop"))
						assert.Empty(t, n.mountsAll())
					})
				}
			}
		}
	}
	return count
}

// linked sets the node up with links as named, and returns the directory
// flags CBSD would pass.
func (n *node) linked(root, wd, point, source string) []string {
	t := n.t
	switch root {
	case "absolute link":
		require.NoError(t, os.Symlink(n.dfs, filepath.Join(n.root, "dfs-link")))
		n.setConfig("NULLFS_ROOT", filepath.Join(n.root, "dfs-link"))
	case "relative link":
		require.NoError(t, os.Symlink("dfs", filepath.Join(n.root, "dfs-link")))
		n.setConfig("NULLFS_ROOT", filepath.Join(n.root, "dfs-link"))
	case "chain":
		require.NoError(t, os.MkdirAll(filepath.Join(n.root, "a", "b"), 0o755))
		require.NoError(t, os.Symlink("../../dfs", filepath.Join(n.root, "a", "b", "up")))
		require.NoError(t, os.Symlink(filepath.Join(n.root, "a", "b", "up"), filepath.Join(n.root, "top")))
		n.setConfig("NULLFS_ROOT", filepath.Join(n.root, "top"))
	}
	if source == "link" {
		real := filepath.Join(n.root, "elsewhere", "web1")
		require.NoError(t, os.MkdirAll(filepath.Dir(real), 0o755))
		require.NoError(t, os.Rename(filepath.Join(n.dfs, "system", "web1"), real))
		require.NoError(t, os.Symlink("../../elsewhere/web1", filepath.Join(n.dfs, "system", "web1")))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(n.workdir, "jails-data"), 0o755))
	if point == "link" {
		real := filepath.Join(n.root, "real-fstab")
		require.NoError(t, os.MkdirAll(real, 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(n.workdir, "jails-fstab"), 0o755))
		require.NoError(t, os.Symlink(real, filepath.Join(n.workdir, "jails-fstab", "web1")))
	}
	workdir := n.workdir
	switch wd {
	case "link":
		workdir = filepath.Join(n.root, "jails")
		require.NoError(t, os.Symlink(n.workdir, workdir))
	case "parent link":
		require.NoError(t, os.Symlink(filepath.Join(n.root, "usr"), filepath.Join(n.root, "home")))
		workdir = filepath.Join(n.root, "home", "jails")
	}
	return cbsdArgs(workdir, "web1")
}

// Kills: every crash point of a start and a stop (TestKilledAtEveryStep),
// seeded random kills of mnt-start (TestRandomKillsThenStop) and of
// jregister (tests/migrate), an exec hook's start under way; here, the
// random kills of a stop.
func corpusKilledStops(t *testing.T) int {
	n := newNode(t, "")
	n.create("web1")
	requireOK(t, n.start("web1"))
	var took time.Duration
	for i := 0; i < 3; i++ {
		r := n.stop("web1")
		requireOK(t, r)
		took = max(took, r.Took)
		requireOK(t, n.start("web1"))
	}
	rng := rand.New(rand.NewPCG(killSeed, 5))
	const runs = 40
	for i := 0; i < runs; i++ {
		delay := time.Duration(rng.Int64N(int64(took * 13 / 10)))
		n.killAfter("mnt-stop", delay, "-c", n.cfg, "-j", "web1")
		assert.Empty(t, n.unnamed("web1"), "run %d: every mount still attached is in the record", i)
		if i%2 == 0 {
			requireOK(t, n.stop("web1"))
			assert.Empty(t, n.mounts())
		}
		requireOK(t, n.start("web1"))
		assert.Len(t, n.mounts(), 3)
	}
	return runs
}

// TestCorpusRecordsAndFaults runs the corpus of files, records, links and
// kills by class.
func TestCorpusRecordsAndFaults(t *testing.T) {
	for _, p := range []struct {
		class string
		run   func(t *testing.T) int
	}{
		{"configuration files", corpusConfigurationFiles},
		{"state records", corpusStateRecords},
		{"quick-check notes", corpusNotes},
		{"inventory and lease records", corpusEnvctlRecords},
		{"symbolic links", corpusSymlinks},
		{"killed stops", corpusKilledStops},
	} {
		t.Run(p.class, func(t *testing.T) {
			corpusCount[p.class] += p.run(t)
		})
	}
}

// corpusClasses are the classes of a whole run; the kills of
// TestKilledAtEveryStep (20 crash points), TestRandomKillsThenStop (120),
// TestKilledDuringExecHookStart (1) and tests/migrate's
// TestRandomKillsOfRegister (60) belong to the corpus too.
var corpusClasses = []string{"flags", "jnames", "forged lines", "exec hooks", "deadlines",
	"configuration files", "state records", "quick-check notes", "inventory and lease records", "symbolic links", "killed stops"}

const killsElsewhere = 20 + 120 + 1 + 60

// TestCorpusCounts says how many cases the corpus ran (go test -v shows
// it) and, after a whole run, that there were at least 400, kept in CI.
func TestCorpusCounts(t *testing.T) {
	total, whole := 0, true
	for _, class := range corpusClasses {
		t.Logf("bad-input corpus: %s: %d cases", class, corpusCount[class])
		total += corpusCount[class]
		whole = whole && corpusCount[class] > 0
	}
	t.Logf("bad-input corpus: %d cases in all here, and %d kills in the crash tests", total, killsElsewhere)
	if whole {
		assert.GreaterOrEqual(t, total, 400)
	}
}
