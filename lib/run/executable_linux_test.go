package run

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every way another user could change what a configured executable is
// gets it refused, before it runs.
func TestOpenExecutableRefusesWhatOthersCouldChange(t *testing.T) {
	safe := safeDir(t)
	good := script(t, safe, "good", "exit 0\n")
	require.NoError(t, CheckExecutable(good))

	tmp := t.TempDir() // under /tmp, mode 1777
	inTmp := script(t, tmp, "hook", "exit 0\n")
	err := CheckExecutable(inTmp)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "directory /tmp is writable by group or others (mode 1777)")

	open := filepath.Join(safe, "open")
	require.NoError(t, os.Mkdir(open, 0o755))
	hook := script(t, open, "hook", "exit 0\n")
	require.NoError(t, os.Chmod(open, 0o775))
	assert.ErrorContains(t, CheckExecutable(hook), "directory "+open+" is writable by group or others (mode 0775)")
	require.NoError(t, os.Chmod(open, 0o755))
	require.NoError(t, os.Chown(open, 65534, 0))
	assert.ErrorContains(t, CheckExecutable(hook), "directory "+open+" is owned by uid 65534, not root")
	require.NoError(t, os.Chown(open, 0, 0))
	require.NoError(t, CheckExecutable(hook))

	require.NoError(t, os.Chmod(hook, 0o775))
	assert.ErrorContains(t, CheckExecutable(hook), "writable by group or others (mode 0775)")
	require.NoError(t, os.Chmod(hook, 0o755))
	require.NoError(t, os.Chown(hook, 65534, 65534))
	assert.ErrorContains(t, CheckExecutable(hook), "owned by uid 65534, not root")
	require.NoError(t, os.Chown(hook, 0, 0))
	require.NoError(t, os.Chmod(hook, 0o644))
	assert.ErrorContains(t, CheckExecutable(hook), "not an executable file")

	// A symlink in a safe place to a file in an unsafe one, and the other
	// way round: both paths are checked.
	link := filepath.Join(safe, "link")
	require.NoError(t, os.Symlink(inTmp, link))
	assert.ErrorContains(t, CheckExecutable(link), "directory /tmp is writable")
	tmpLink := filepath.Join(tmp, "link")
	require.NoError(t, os.Symlink(good, tmpLink))
	assert.ErrorContains(t, CheckExecutable(tmpLink), "directory /tmp is writable")

	fifo := filepath.Join(safe, "fifo")
	require.NoError(t, mkfifo(fifo))
	assert.ErrorContains(t, CheckExecutable(fifo), "not an executable file", "a FIFO is refused without blocking")
	assert.ErrorContains(t, CheckExecutable(safe), "not an executable file")
	assert.Error(t, CheckExecutable(filepath.Join(safe, "missing")))
	assert.ErrorContains(t, CheckExecutable("no-such-program-here"), "not on PATH")
	assert.ErrorContains(t, CheckExecutable("relative/hook"), "not an absolute path")
	require.NoError(t, CheckExecutable("true"), "a name is found on PATH, in root's directories")
}

// The runner applies the same check: a configured command in an unsafe
// place never runs.
func TestConfiguredCommandInAnUnsafePlaceNeverRuns(t *testing.T) {
	tmp := t.TempDir()
	ran := filepath.Join(tmp, "ran")
	hook := script(t, tmp, "hook", "touch "+ran+"\n")
	_, err := osRunner{}.Run(context.Background(), Cmd{Argv: []string{hook}, Configured: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "writable by group or others")
	assert.NoFileExists(t, ran)
	_, err = osRunner{}.Run(context.Background(), Cmd{Argv: []string{hook}})
	require.NoError(t, err, "the same file as a plain command runs: the check is for what the configuration names")
	assert.FileExists(t, ran)
}
