// Package running answers one question: does this environment run? It asks
// what the operator configured (RUNNING_CHECK) or, by default, the FreeBSD
// kernel (jls for jails, bhyve's /dev/vmm/<name> for VMs), or LXC for its
// containers. envctl refuses to
// move a running environment on its answer, and mnt-stop asks it before it
// unmounts CBSD's mounts that sit on an environment's storage.
package running

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Kinds of environment, as envctl names them.
const (
	Jail      = "jail"
	VM        = "vm"
	Container = "container"
)

// check is the command that tells whether an environment of kind runs
// here: RUNNING_CHECK (configured: it must pass the checks of a configured
// executable), else the kind's own; none on Linux for jails and VMs.
func check(cfg *config.Config, kind string) (words []string, configured bool) {
	switch words := cfg.Words(config.RunningCheck); {
	case len(words) > 0:
		return words, true
	case kind == Container:
		return LXCCheck(cfg), false
	default:
		return defaultCheck(kind), false
	}
}

// Check runs the check for jname and says how it decided. A check that
// cannot answer (neither 0 nor 1) is an error. runner nil is the OS; the
// check only reads, so it runs in a dry run too.
func Check(ctx context.Context, runner run.Runner, cfg *config.Config, jname, kind string) (bool, string, error) {
	words, configured := check(cfg, kind)
	if len(words) == 0 {
		return false, "no RUNNING_CHECK configured", nil
	}
	argv := make([]string, len(words))
	for i, w := range words {
		argv[i] = strings.ReplaceAll(w, "%j", jname)
	}
	if dev, ok := strings.CutPrefix(argv[0], "exists:"); ok {
		_, err := os.Stat(dev)
		return err == nil, dev + " exists", nil
	}
	if runner == nil {
		runner = run.New(false, nil)
	}
	_, err := runner.Run(ctx, run.Cmd{Argv: argv, Timeout: cfg.Seconds(config.CommandTimeout), ReadOnly: true, Configured: configured})
	var re *run.Error
	switch {
	case err == nil:
		return true, run.Quote(argv) + " exited 0", nil
	case errors.As(err, &re) && re.ExitCode == 1:
		return false, run.Quote(argv), nil
	default:
		return false, run.Quote(argv), err
	}
}

// RefuseIfRunning is Check as a guard: 75 when jname runs or when the
// check cannot tell.
func RefuseIfRunning(ctx context.Context, runner run.Runner, cfg *config.Config, jname, kind string) error {
	on, how, err := Check(ctx, runner, cfg, jname, kind)
	if err != nil {
		return sysexits.New(sysexits.TempFail, "cannot tell whether %s runs (%s): %v", jname, how, err)
	}
	if on {
		return sysexits.New(sysexits.TempFail, "%s is running (%s): stop it first", jname, how)
	}
	return nil
}

// Configured reports whether a check exists for kind on this OS.
func Configured(cfg *config.Config, kind string) bool {
	words, _ := check(cfg, kind)
	return len(words) > 0
}

// LXCCheck asks LXC whether the container runs: lxc-wait exits 0 when it
// is in state RUNNING and 1 when it is not, at once with -t 0.
func LXCCheck(cfg *config.Config) []string {
	return []string{"lxc-wait", "-P", cfg.Get(config.LXCPath), "-n", "%j", "-s", "RUNNING", "-t", "0"}
}

// FreeBSDCheck asks the kernel: jls(8) for jails (exit 1: no such jail),
// the vmm device bhyve creates for every VM it runs. It is kept on every OS
// so that the argv is tested everywhere.
func FreeBSDCheck(kind string) []string {
	if kind == VM {
		return []string{"exists:/dev/vmm/%j"}
	}
	return []string{"jls", "-j", "%j", "jid"}
}
