package ssh

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// shells are the POSIX shells a remote account may have here.
func shells(t testing.TB) []string {
	var out []string
	for _, sh := range []string{"sh", "dash", "bash"} {
		if p, err := exec.LookPath(sh); err == nil {
			out = append(out, p)
		}
	}
	require.NotEmpty(t, out, "no POSIX shell")
	return out
}

// roundTrip gives shell the quoted line as sshd does (shell -c LINE) with
// printf in front, and returns the words the shell handed printf.
func roundTrip(t testing.TB, shell string, argv []string) []string {
	line, err := RemoteCommand(append([]string{"printf", `%s\0`}, argv...))
	require.NoError(t, err)
	out, err := exec.Command(shell, "-c", line).Output()
	require.NoError(t, err, "%s -c %s", shell, line)
	words := strings.Split(string(out), "\x00")
	return words[:len(words)-1]
}

func randomWord(r *rand.Rand) string {
	const alphabet = " \t'\"\\$`!*?[]{}()<>|&;#~=%^@,./:-_aZ9\x01\x7f\u00e9\xff"
	n := r.Intn(12)
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[r.Intn(len(alphabet))])
	}
	return b.String()
}

// TestRemoteCommandRoundTrips: every argv without NUL, newline or CR comes
// out of the remote shell exactly as it went in, with every shell here.
func TestRemoteCommandRoundTrips(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, shell := range shells(t) {
		for range 100 {
			argv := make([]string, 1+r.Intn(5))
			for i := range argv {
				argv[i] = randomWord(r)
			}
			assert.Equal(t, argv, roundTrip(t, shell, argv), shell)
		}
	}
}

func FuzzRemoteCommand(f *testing.F) {
	for _, seed := range []string{"", "plain", "it's", `a "b" $HOME`, "`id`", "$(id)", "x;rm -rf /", "*", "~root", "a\tb", "\\", "'''", "-n", "%j"} {
		f.Add(seed)
	}
	shell := shells(f)[0]
	f.Fuzz(func(t *testing.T, word string) {
		argv := []string{word, "fixed", word}
		if strings.ContainsAny(word, "\x00\n\r") {
			_, err := RemoteCommand(argv)
			require.Error(t, err)
			assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
			return
		}
		assert.Equal(t, argv, roundTrip(t, shell, argv))
	})
}

func TestRemoteCommandRefusesWhatCshCannotQuote(t *testing.T) {
	for _, bad := range []string{"a\nb", "a\rb", "a\x00b"} {
		_, err := RemoteCommand([]string{"envctl", bad})
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), "%q", bad)
	}
}

func testConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := parse(t, text)
	require.NoError(t, err)
	return cfg
}

func parse(t *testing.T, text string) (*config.Config, error) {
	p := filepath.Join(t.TempDir(), "test.conf")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return config.LoadFile(p)
}

func TestArgvIsBatchModeWithTimeoutAndMappedDestination(t *testing.T) {
	c := New(testConfig(t, "SSH_DESTINATIONS=\"b=root@10.0.0.2 c=ssh://root@c.example.org:2222\"\nSSH_OPTIONS=\"-i /root/.ssh/id_x -F /etc/x\"\nSSH_CONNECT_TIMEOUT=7\n"), nil)
	argv, err := c.Argv("b", []string{"envctl", "jregister", "jname=web 1"})
	require.NoError(t, err)
	assert.Equal(t, []string{"/usr/bin/ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=7", "-o", "ServerAliveInterval=7", "-o", "ServerAliveCountMax=3", "-i", "/root/.ssh/id_x", "-F", "/etc/x", "--", "root@10.0.0.2", "envctl jregister 'jname=web 1'"}, argv)
	argv, err = c.Argv("d", []string{"envctl"})
	require.NoError(t, err)
	assert.Equal(t, "d", argv[len(argv)-2], "an unlisted node is reached at its own name")
	assert.Equal(t, "ssh://root@c.example.org:2222", c.Destination("c"))
}

func TestBadDestinationsAreConfigErrors(t *testing.T) {
	for _, bad := range []string{"SSH_DESTINATIONS=b", "SSH_DESTINATIONS=b=-oProxyCommand=x", "SSH_DESTINATIONS=\"b/c=x\"", "SSH_OPTIONS=\"-v -- x\""} {
		_, err := parse(t, bad+"\n")
		assert.Error(t, err, bad)
	}
}

func TestRunClassifiesFailures(t *testing.T) {
	rec := &run.Recorder{}
	c := New(testConfig(t, ""), rec)
	rec.Respond = func(cmd run.Cmd) (run.Result, error) {
		return run.Result{}, &run.Error{Cmd: cmd, ExitCode: 77, Stderr: "envctl: web is owned by a"}
	}
	_, err := c.Run(context.Background(), "b", []string{"envctl", "jregister", "web"})
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err), "the remote envctl's code passes through")
	var se *Error
	require.True(t, errors.As(err, &se))
	assert.False(t, se.Unreachable)
	assert.Contains(t, err.Error(), "on node b: envctl: web is owned by a")

	rec.Respond = func(cmd run.Cmd) (run.Result, error) {
		return run.Result{}, &run.Error{Cmd: cmd, ExitCode: 255, Stderr: "ssh: connect to host b port 22: Connection refused"}
	}
	_, err = c.Run(context.Background(), "b", []string{"envctl"})
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	require.True(t, errors.As(err, &se))
	assert.True(t, se.Unreachable)
	assert.Contains(t, err.Error(), "cannot reach node b over ssh")
	rec.Respond = func(cmd run.Cmd) (run.Result, error) {
		assert.Equal(t, 300*time.Second, cmd.Timeout)
		return run.Result{Stdout: []byte("ok\n")}, nil
	}
	res, err := c.Run(context.Background(), "b", []string{"envctl"})
	require.NoError(t, err)
	assert.True(t, bytes.Equal([]byte("ok\n"), res.Stdout))
}
