// Package hooks is the registry of storage backends: one folder under hooks/
// per backend, and one line here to make it selectable with BACKEND=.
package hooks

import (
	"sort"

	"github.com/envhooks/envhooks/hooks/exec"
	"github.com/envhooks/envhooks/hooks/iscsi"
	"github.com/envhooks/envhooks/hooks/nfs"
	"github.com/envhooks/envhooks/hooks/nullfs"
	"github.com/envhooks/envhooks/hooks/zfs"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/plan"
)

// Factory builds a backend from the configuration, checking its keys.
type Factory func(cfg *config.Config) (plan.Backend, error)

var backends = map[string]Factory{
	"nullfs": nullfs.New,
	"exec":   exec.New,
	"zfs":    zfs.New,
	"iscsi":  iscsi.New,
	"nfs":    nfs.New,
}

// Lookup returns the factory for a backend name.
func Lookup(name string) (Factory, bool) {
	f, ok := backends[name]
	return f, ok
}

// Names lists the registered backends.
func Names() []string {
	out := make([]string, 0, len(backends))
	for n := range backends {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
