// Package backend is how the programs find a storage backend by name: the
// BACKEND key, the Registry type the programs fill from hooks/ and pass
// down, and the optional things a backend can do besides planning mounts.
// It knows no backend itself: lib/ stays below hooks/.
package backend

import (
	"context"
	"sort"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Key selects the backend. Its values are the registry's names, so it is
// checked against the registry when a backend is opened (with the file and
// line the value came from), not when the configuration is loaded.
var Key = config.Backend

// Factory builds a backend from the configuration, checking its keys.
type Factory func(cfg *config.Config) (plan.Backend, error)

// Registry maps BACKEND names to factories: the one list of backend names.
type Registry map[string]Factory

// Names lists the registered backends, sorted.
func (r Registry) Names() []string {
	out := make([]string, 0, len(r))
	for n := range r {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Name resolves BACKEND, defaulting to nfs when NFS_SERVER is set, as
// CBSD's sample configuration implies, and checks that it is registered.
func (r Registry) Name(cfg *config.Config) (string, error) {
	name := cfg.Get(Key)
	if name == "" && cfg.IsSet("NFS_SERVER") {
		name = "nfs"
	}
	if name == "" {
		return "", sysexits.New(sysexits.Config, "no storage backend configured: set BACKEND (one of %v) or NFS_SERVER", r.Names())
	}
	if _, ok := r[name]; !ok {
		return "", cfg.Errorf(Key, "backend %.64q is not available; choose one of %v", name, r.Names())
	}
	return name, nil
}

// Open resolves BACKEND and builds that backend from cfg.
func (r Registry) Open(cfg *config.Config) (string, plan.Backend, error) {
	name, err := r.Name(cfg)
	if err != nil {
		return "", nil, err
	}
	b, err := r[name](cfg)
	if err != nil {
		return "", nil, sysexits.Wrap(sysexits.Config, err)
	}
	return name, b, nil
}

// Provisioner is a backend that can create an environment's folders on its
// storage before the first start, without mounting anything here (envctl
// provision).
type Provisioner interface {
	Provision(ctx context.Context, jname string, log *logging.Logger, dryRun bool) error
}

// Lister is a backend that can list the environments its storage holds
// (envctl's wildcards for jregister).
type Lister interface {
	Environments() ([]string, error)
}

// Diagnoser is a backend that can check this node's readiness for it
// (envctl doctor): the kernel support and the commands it needs, and
// whether its servers answer within its preflight deadline. It changes
// nothing.
type Diagnoser interface {
	Diagnose(ctx context.Context) []doctor.Finding
}

// StorageFencer is a backend that fences at the storage itself when this
// node attaches: the storage refuses the writes of the node that held the
// environment before (iSCSI: the SCSI-3 reservation is preempted before the
// filesystem is touched). StorageFence says how, for the takeover's log,
// or "" when it is switched off.
type StorageFencer interface {
	StorageFence() string
}
