// Package exec attaches storage envhooks does not ship by calling an
// external executable (EXEC_HOOK) with CBSD's own hook flags and a verb:
//
//	EXEC_HOOK -d DATA [-f FSTAB] -j JNAME [-r RCCONF] -s SYSDATA start|stop
//
// The verb comes last, as an operand, so a getopt-based CBSD mnt_start
// script works unchanged. The hook must be idempotent; it, and every
// directory above it, must be owned by root and writable by nobody else
// (run.OpenExecutable); start and stop each run under EXEC_TIMEOUT, and at
// that deadline the hook dies with every process it started.
package exec

import (
	"fmt"
	"path/filepath"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

var (
	hookKey    = config.Define(config.Key{Name: "EXEC_HOOK", Doc: "exec backend: the executable called as EXEC_HOOK -d .. -j .. -s .. start|stop", Check: config.IsAbsPath})
	timeoutKey = config.Define(config.Key{Name: "EXEC_TIMEOUT", Default: "60", Doc: "exec backend: seconds EXEC_HOOK start, and EXEC_HOOK stop, may run before they are killed with every process they started", Check: config.IsSeconds})
)

// Backend is the exec backend.
type Backend struct {
	hook string
	cfg  *config.Config
}

// New checks EXEC_HOOK before anything runs: a hook that others could
// rewrite would run their code as root.
func New(cfg *config.Config) (plan.Backend, error) {
	hook := cfg.Get(hookKey)
	if hook == "" {
		return nil, sysexits.New(sysexits.Config, "BACKEND=exec needs EXEC_HOOK, the absolute path of the executable to call")
	}
	// Checked here to fail early with the key's file and line; the runner
	// checks again, and runs what it checked, each time.
	if err := run.CheckExecutable(hook); err != nil {
		return nil, cfg.Errorf(hookKey, "%v", err)
	}
	return &Backend{hook: filepath.Clean(hook), cfg: cfg}, nil
}

// Argv is the hook command for verb.
func (b *Backend) Argv(env *environment.Env, roles []environment.Role, verb string) []string {
	argv := []string{b.hook, "-d", env.Dir(environment.Data)}
	if f := env.Dir(environment.Fstab); f != "" {
		argv = append(argv, "-f", f)
	}
	argv = append(argv, "-j", env.Name)
	if r := env.Dir(environment.RCConf); r != "" {
		argv = append(argv, "-r", r)
	}
	return append(argv, "-s", env.Dir(environment.System), verb)
}

func (b *Backend) Steps(env *environment.Env, roles []environment.Role) ([]plan.Step, error) {
	return []plan.Step{&plan.Command{
		ID:       "exec:" + b.hook,
		What:     fmt.Sprintf("run %s start for %s", b.hook, env.Name),
		Cmd:      run.Cmd{Argv: b.Argv(env, roles, "start"), Timeout: b.cfg.Seconds(timeoutKey), Configured: true},
		UndoArgv: b.Argv(env, roles, "stop"),
	}}, nil
}
