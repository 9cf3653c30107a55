package dist_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHeartbeatRCScriptFindsItsDaemon runs dist/rc.d/envhooks_heartbeat
// with a stand-in for /etc/rc.subr that prints what the script set, and
// checks it the way rc.subr does: run_rc_command starts $command
// $command_args and, for status and stop, check_pidfile reads $pidfile and
// accepts the process only if the first word of its command line is
// $procname, its base name, or "basename:" (_find_processes). daemon -P
// writes the supervisor's pid, and setproctitle makes its command line
// "daemon: /usr/local/bin/envctl[PID] (daemon)".
func TestHeartbeatRCScriptFindsItsDaemon(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	subr := filepath.Join(dir, "rc.subr")
	require.NoError(t, os.WriteFile(subr, []byte(`load_rc_config() { :; }
run_rc_command() { printf 'command=%s\nargs=%s\npidfile=%s\nprocname=%s\n' "$command" "$command_args" "$pidfile" "$procname"; }
`), 0o644))
	raw, err := os.ReadFile("rc.d/envhooks_heartbeat")
	require.NoError(t, err)
	script := strings.Replace(string(raw), ". /etc/rc.subr", ". "+subr, 1)
	require.NotEqual(t, string(raw), script, "the script sources /etc/rc.subr")
	out, err := exec.Command("sh", "-c", script, "envhooks_heartbeat", "status").Output()
	require.NoError(t, err)
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	assert.Equal(t, "/usr/sbin/daemon", got["command"])
	args := strings.Fields(got["args"])
	require.Contains(t, args, "-P", "daemon writes the supervisor's pid")
	for i, a := range args {
		if a == "-P" {
			assert.Equal(t, got["pidfile"], args[i+1])
		}
	}
	assert.Contains(t, args, "/usr/local/bin/envctl")
	assert.Equal(t, "heartbeat", args[len(args)-1])

	title := "daemon: /usr/local/bin/envctl[4242] (daemon)"
	first := strings.Fields(title)[0]
	base := filepath.Base(got["procname"])
	assert.Contains(t, []string{got["procname"], base, base + ":"}, first,
		"check_pidfile would not recognise the pid in %s as %s", got["pidfile"], got["procname"])
}
