//go:build linux || freebsd

// Package newbackend shows what adding a storage backend takes: one folder
// under hooks/ and one line in hooks/hooks.go (with its import). The test
// writes a throw-away backend, lays it over the tree with go build -overlay
// (the tree itself is not touched), builds the programs and runs a start
// and a stop with BACKEND set to it, end to end.
package newbackend

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/testenv"
)

// probeSource is the whole backend: each role is attached by a command
// that appends a line to a trace file, and detached by another.
const probeSource = `// Package probe is a throw-away backend of the newbackend test.
package probe

import (
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
)

type backend struct{}

// New is the factory hooks/hooks.go registers.
func New(*config.Config) (plan.Backend, error) { return backend{}, nil }

func (backend) Steps(env *environment.Env, roles []environment.Role) ([]plan.Step, error) {
	var steps []plan.Step
	for _, r := range roles {
		trace := "echo \"$1 $2 $3\" >> %s"
		steps = append(steps, &plan.Command{ID: "probe:" + string(r), What: "probe " + string(r),
			Cmd:      run.Cmd{Argv: []string{"sh", "-c", trace, "sh", "attach", env.Name, string(r)}},
			UndoArgv: []string{"sh", "-c", trace, "sh", "detach", env.Name, string(r)}})
	}
	return steps, nil
}
`

func TestOneFolderAndOneLine(t *testing.T) {
	testenv.Require(t, "go", "sh")
	root := testenv.RepoRoot()
	tmp := t.TempDir()
	trace := filepath.Join(tmp, "trace")

	// The folder.
	probe := filepath.Join(tmp, "probe.go")
	testenv.WriteFile(t, probe, fmt.Sprintf(probeSource, trace), 0o644)
	// The line (and its import).
	orig, err := os.ReadFile(filepath.Join(root, "hooks", "hooks.go"))
	require.NoError(t, err)
	registry := strings.Replace(string(orig), "\t\t\"nullfs\": nullfs.New,\n", "\t\t\"nullfs\": nullfs.New,\n\t\t\"probe\": probe.New,\n", 1)
	registry = strings.Replace(registry, "import (\n", "import (\n\t\"github.com/envhooks/envhooks/hooks/probe\"\n", 1)
	require.Equal(t, strings.Count(string(orig), "\n")+2, strings.Count(registry, "\n"), "one registry line and its import")
	hooksGo := filepath.Join(tmp, "hooks.go")
	testenv.WriteFile(t, hooksGo, registry, 0o644)

	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(root, "hooks", "probe", "probe.go"): probe,
		filepath.Join(root, "hooks", "hooks.go"):          hooksGo,
	}})
	require.NoError(t, err)
	overlayFile := filepath.Join(tmp, "overlay.json")
	testenv.WriteFile(t, overlayFile, string(overlay), 0o644)
	bin := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-overlay", overlayFile, "-o", bin+"/", "./cmd/envhooks-attach", "./cmd/mnt-stop", "./cmd/envctl")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build -overlay: %s", out)

	conf := filepath.Join(tmp, "envhooks.conf")
	testenv.WriteFile(t, conf, fmt.Sprintf("BACKEND=probe\nSTATE_DIR=%s/state\nSYSLOG=0\n", tmp), 0o644)
	env := []string{"ENVHOOKS_RUNDIR=" + filepath.Join(tmp, "run")}
	d, s := filepath.Join(tmp, "jails-data", "web1-data"), filepath.Join(tmp, "jails-system", "web1")
	start := []string{"-c", conf, "-j", "web1", "-d", d, "-s", s}

	// The programs built from the tree alone know no such backend: the
	// registry is the one list of names.
	r := testenv.Run(t, env, testenv.Bin(t, "envhooks-attach"), start...)
	assert.Equal(t, 78, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "probe")
	assert.NoFileExists(t, trace)

	r = testenv.Run(t, env, filepath.Join(bin, "envhooks-attach"), start...)
	require.Equal(t, 0, r.Code, r.Stderr)
	r = testenv.Run(t, env, filepath.Join(bin, "envhooks-attach"), start...)
	require.Equal(t, 0, r.Code, "again: %s", r.Stderr)
	r = testenv.Run(t, env, filepath.Join(bin, "envctl"), "-c", conf, "keys")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "probe", "envctl keys lists the new backend among BACKEND's values")
	r = testenv.Run(t, env, filepath.Join(bin, "mnt-stop"), "-c", conf, "-j", "web1")
	require.Equal(t, 0, r.Code, r.Stderr)
	got, err := os.ReadFile(trace)
	require.NoError(t, err)
	// A command step has no way to tell it is in place, so the second
	// start runs it again (as the exec backend's hook is asked again).
	assert.Equal(t, "attach web1 data\nattach web1 system\nattach web1 data\nattach web1 system\ndetach web1 system\ndetach web1 data\n", string(got))
	assert.NoFileExists(t, filepath.Join(tmp, "state", "web1.state"), "the stop left no record")
}
