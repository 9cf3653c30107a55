package lease

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// viaEnvctl reads a lease by running envctl lease show --json, for
// programs that do not link the driver themselves. The lease settings are
// passed in envctl's environment, which overrides every config layer, so it
// asks the same store whatever configuration file the hook was given. The
// hooks only read leases; everything else is envctl's job.
type viaEnvctl struct {
	cfg     *config.Config
	timeout time.Duration
	runner  run.Runner
}

var errReadOnly = errors.New("the hooks only read leases: use envctl")

// envctlPath is envctl beside this program (as make build and packages
// install them), else envctl on PATH.
func envctlPath() string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "envctl")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	if p, err := exec.LookPath("envctl"); err == nil {
		return p
	}
	return "envctl"
}

func (v *viaEnvctl) Get(ctx context.Context, jname string) (*Lease, error) {
	env := []string{"LEASE_BACKEND=" + v.cfg.Get(BackendKey), "LEASE_DIR=" + v.cfg.Get(DirKey),
		"ETCD_ENDPOINTS=" + v.cfg.Get(EtcdKey), "LEASE_TIMEOUT=" + v.cfg.Get(TimeoutKey), "SYSLOG=0"}
	res, err := v.runner.Run(ctx, run.Cmd{Argv: []string{envctlPath(), "--json", "lease", "show", "jname=" + jname},
		Env: env, Timeout: v.timeout + time.Second, ReadOnly: true})
	if err != nil {
		return nil, sysexits.Wrap(sysexits.Unavailable, err)
	}
	var l *Lease
	if err := json.Unmarshal(res.Stdout, &l); err != nil {
		return nil, sysexits.New(sysexits.Unavailable, "envctl lease show answered %.80q: %v", res.Stdout, err)
	}
	return l, nil
}

func (v *viaEnvctl) Acquire(context.Context, string, string) (*Lease, error) { return nil, errReadOnly }
func (v *viaEnvctl) Release(context.Context, string, string) error           { return errReadOnly }
func (v *viaEnvctl) Takeover(context.Context, string, string, string) (*Lease, error) {
	return nil, errReadOnly
}
func (v *viaEnvctl) List(context.Context) ([]Lease, error) { return nil, errReadOnly }
