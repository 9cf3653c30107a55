package run

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExitCodeAndStderrTail(t *testing.T) {
	_, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", "echo noise >&2; echo 'mount: /x: special device missing' >&2; exit 32"}})
	var re *Error
	require.True(t, errors.As(err, &re))
	assert.Equal(t, 32, re.ExitCode)
	assert.False(t, re.TimedOut)
	assert.Equal(t, "mount: /x: special device missing", re.Stderr)
	assert.Equal(t, "sh exited 32: mount: /x: special device missing", err.Error())
}

func TestStdoutCaptured(t *testing.T) {
	res, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{"echo", "hello"}})
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(res.Stdout))
}

func TestMissingProgram(t *testing.T) {
	_, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{"/nonexistent/prog"}})
	var re *Error
	require.True(t, errors.As(err, &re))
	assert.Equal(t, -1, re.ExitCode)
	assert.Contains(t, err.Error(), "/nonexistent/prog")
}

// The deadline kills the whole process group: the child's own background
// children die too, and Run returns promptly although they held stderr.
func TestDeadlineKillsProcessGroup(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "pid")
	script := "sleep 300 & echo $! > " + marker + "; sleep 300"
	start := time.Now()
	_, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", script}, Timeout: 300 * time.Millisecond})
	took := time.Since(start)
	var re *Error
	require.True(t, errors.As(err, &re))
	assert.True(t, re.TimedOut)
	assert.Contains(t, err.Error(), "did not finish within 300ms")
	assert.Less(t, took, 5*time.Second, "Run must return soon after the deadline")
	raw, rerr := os.ReadFile(marker)
	require.NoError(t, rerr)
	pid := strings.TrimSpace(string(raw))
	// The grandchild is gone (or a zombie about to be reaped by init).
	require.Eventually(t, func() bool {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		return err != nil || strings.Contains(string(stat), ") Z ")
	}, 5*time.Second, 20*time.Millisecond, "background child %s survived the deadline", pid)
}

func TestQuoteRoundTripsThroughSh(t *testing.T) {
	argv := []string{"mount", "-o", "rw,vers=4", "it's", "a b", "", "$(id)", "`x`", "semi;colon", "back\\slash", "ünï"}
	line := Quote(argv)
	got, err := exec.Command("sh", "-c", "for a in "+line+"; do printf '[%s]\\n' \"$a\"; done").Output()
	require.NoError(t, err)
	var want strings.Builder
	for _, a := range argv {
		want.WriteString("[" + a + "]\n")
	}
	assert.Equal(t, want.String(), string(got))
	assert.Equal(t, "mount --bind /a /b", Quote([]string{"mount", "--bind", "/a", "/b"}), "plain words stay unquoted")
}

func TestSecretArgvIsNeverPrinted(t *testing.T) {
	c := Cmd{Argv: []string{"iscsictl", "-A", "-s", "hunter2"}, Secret: true}
	assert.NotContains(t, c.String(), "hunter2")
	var b strings.Builder
	_, err := DryRun{Out: &b}.Run(context.Background(), c)
	require.NoError(t, err)
	assert.NotContains(t, b.String(), "hunter2")
	assert.Contains(t, b.String(), "iscsictl")
}

func TestRecorder(t *testing.T) {
	r := &Recorder{Respond: func(c Cmd) (Result, error) {
		if c.Argv[0] == "fail" {
			return Result{}, &Error{Cmd: c, ExitCode: 1}
		}
		return Result{Stdout: []byte("ok")}, nil
	}}
	res, err := r.Run(context.Background(), Cmd{Argv: []string{"a", "b"}})
	require.NoError(t, err)
	assert.Equal(t, "ok", string(res.Stdout))
	_, err = r.Run(context.Background(), Cmd{Argv: []string{"fail"}})
	assert.Error(t, err)
	assert.Equal(t, [][]string{{"a", "b"}, {"fail"}}, r.Argvs())
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{max: 8}
	tb.Write([]byte("0123456789"))
	tb.Write([]byte("ab"))
	assert.Equal(t, "456789ab", string(tb.Bytes()))
}

// The dry run is a decorator: what only reads goes to the runner it wraps,
// what would change something is printed and reported done.
func TestDryRunPassesReadsAndPrintsWrites(t *testing.T) {
	rec := &Recorder{Respond: func(c Cmd) (Result, error) { return Result{Stdout: []byte("tank/web1\n")}, nil }}
	var out strings.Builder
	dry := DryRun{Next: rec, Out: &out}
	res, err := dry.Run(context.Background(), Cmd{Argv: []string{"zfs", "list", "-H"}, ReadOnly: true})
	require.NoError(t, err)
	assert.Equal(t, "tank/web1\n", string(res.Stdout), "the read ran and its answer came back")
	res, err = dry.Run(context.Background(), Cmd{Argv: []string{"zfs", "mount", "tank/web1"}})
	require.NoError(t, err)
	assert.Empty(t, res.Stdout)
	assert.Equal(t, [][]string{{"zfs", "list", "-H"}}, rec.Argvs(), "the write never reached the runner")
	assert.Equal(t, "zfs mount tank/web1\n", out.String(), "only the write is printed")

	_, isDry := New(true, &out).(DryRun)
	assert.True(t, isDry)
	_, isOS := New(false, nil).(osRunner)
	assert.True(t, isOS)
}

// Output is bounded: a command that prints without end is stopped.
func TestStdoutIsBounded(t *testing.T) {
	defer func(m int) { maxStdout = m }(maxStdout)
	maxStdout = 1 << 20
	res, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{"cat", "/dev/zero"}, Timeout: 20 * time.Second})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cat: printed more than")
	assert.LessOrEqual(t, len(res.Stdout), maxStdout)
}

// A command's stderr is copied into messages as one safe line.
func TestStderrTailIsOneSafeLine(t *testing.T) {
	_, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{"sh", "-c", `printf 'fine\nforged\033[2K\rmnt-start: attached j1' >&2; exit 3`}})
	require.Error(t, err)
	assert.Equal(t, `sh exited 3: forged\x1b[2K\rmnt-start: attached j1`, err.Error())
}
