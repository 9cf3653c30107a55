package hookcli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/run"
)

// shellBackend attaches each role by running script with the role's name:
// a throw-away backend whose commands leave a trace the test reads.
type shellBackend struct{ script string }

func (b shellBackend) Steps(env *environment.Env, roles []environment.Role) ([]plan.Step, error) {
	var steps []plan.Step
	for _, r := range roles {
		steps = append(steps, &plan.Command{ID: "sh:" + string(r), What: "attach " + string(r),
			Cmd: run.Cmd{Argv: []string{"sh", "-c", b.script, "sh", "attach", string(r)}}, UndoArgv: []string{"sh", "-c", b.script, "sh", "detach", string(r)}})
	}
	return steps, nil
}

type rig struct {
	dir, conf, trace string
}

func newRig(t *testing.T, script, extra string) *rig {
	r := &rig{dir: t.TempDir()}
	r.conf, r.trace = filepath.Join(r.dir, "envhooks.conf"), filepath.Join(r.dir, "trace")
	require.NoError(t, os.WriteFile(r.conf, []byte(fmt.Sprintf("BACKEND=sh\nSTATE_DIR=%s/state\nSYSLOG=0\n%s", r.dir, extra)), 0o600))
	t.Setenv(quick.DirEnv, filepath.Join(r.dir, "run"))
	if script == "" {
		script = `echo "$1 $2" >> ` + r.trace
	}
	backends = backend.Registry{"sh": func(*config.Config) (plan.Backend, error) { return shellBackend{script: script}, nil }}
	return r
}

var backends backend.Registry

func (r *rig) run(verb Verb, argv ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	req := args.Required{DataAndSystem: verb.notes}
	code := Main(append([]string{"mnt-start", "-c", r.conf}, argv...), req, verb, backends, &out, &errOut)
	return code, out.String(), errOut.String()
}

func flags(jname string) []string {
	d := environment.CBSDDirs("/usr/jails", jname)
	return []string{"-d", d["data"], "-j", jname, "-s", d["system"]}
}

func TestStartThenStop(t *testing.T) {
	r := newRig(t, "", "")
	code, out, errOut := r.run(Start, flags("web1")...)
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, out)
	code, _, errOut = r.run(Stop, "-j", "web1")
	require.Equal(t, 0, code, errOut)
	trace, err := os.ReadFile(r.trace)
	require.NoError(t, err)
	assert.Equal(t, "attach data\nattach system\ndetach system\ndetach data\n", string(trace))
}

func TestDryRunPrintsAndRunsNothing(t *testing.T) {
	r := newRig(t, "", "")
	code, out, errOut := r.run(Start, append([]string{"-n"}, flags("web1")...)...)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, 2, strings.Count(out, "\n"), out)
	assert.Contains(t, out, "sh -c ")
	assert.NoFileExists(t, r.trace)
}

// Every failure is one line on stderr with its sysexits code, however the
// input tries to forge a second one.
func TestFailuresAreOneLine(t *testing.T) {
	r := newRig(t, "", "")
	for _, tc := range []struct {
		argv    []string
		code    int
		mention string
	}{
		{[]string{"-\nmnt-start: attached j1"}, 64, `unknown option: -\n (usage`},
		{append(flags("web1"), "extra\nmnt-start: attached j1"), 64, `"extra\nmnt-start: attached j1"`},
		{[]string{"-j", "web1\nmnt-start: attached j1", "-d", "/d", "-s", "/s"}, 65, `"web1\nmnt-start: attached j1"`},
		{[]string{"-j", "web1", "-d", "/d\n/x", "-s", "/s"}, 64, `"/d\n/x"`},
		{[]string{"-j", "web1", "-d", "/d", "-s", "\x1b[2K/s"}, 64, `\x1b[2K`},
	} {
		code, out, errOut := r.run(Start, tc.argv...)
		assert.Equal(t, tc.code, code, "%q: %s", tc.argv, errOut)
		assert.Empty(t, out)
		assert.Equal(t, 1, strings.Count(errOut, "\n"), "%q: %q", tc.argv, errOut)
		assert.Contains(t, errOut, tc.mention, "%q", tc.argv)
		assert.NotContains(t, errOut, "\x1b")
	}
	assert.NoFileExists(t, r.trace)
}

func TestBadConfigValueIs78WithFileAndLine(t *testing.T) {
	r := newRig(t, "", "COMMAND_TIMEOUT=soon\n")
	code, _, errOut := r.run(Start, flags("web1")...)
	assert.Equal(t, 78, code)
	assert.Contains(t, errOut, "envhooks.conf:4: COMMAND_TIMEOUT")
	assert.Equal(t, 1, strings.Count(errOut, "\n"))
}

// HOOK_TIMEOUT bounds the run, and the message names it.
func TestHookTimeoutBoundsTheRunAndIsNamed(t *testing.T) {
	r := newRig(t, "sleep 30", "HOOK_TIMEOUT=1\nCOMMAND_TIMEOUT=60\n")
	code, _, errOut := r.run(Start, flags("web1")...)
	assert.Equal(t, 69, code)
	assert.Contains(t, errOut, "sh was killed: HOOK_TIMEOUT=1s passed")
	assert.NotContains(t, errOut, "1m0s")
}
