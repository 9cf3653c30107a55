// Package hooks lists the storage backends the programs are built with: one
// folder under hooks/ per backend, and one line here to make it selectable
// with BACKEND=. The cmd/ mains pass Registry down; nothing under lib/
// imports this package.
package hooks

import (
	"github.com/envhooks/envhooks/hooks/exec"
	"github.com/envhooks/envhooks/hooks/iscsi"
	"github.com/envhooks/envhooks/hooks/nfs"
	"github.com/envhooks/envhooks/hooks/nullfs"
	"github.com/envhooks/envhooks/hooks/zfs"
	"github.com/envhooks/envhooks/lib/backend"
)

// Registry returns every backend by its BACKEND name.
func Registry() backend.Registry {
	return backend.Registry{
		"nullfs": nullfs.New,
		"exec":   exec.New,
		"zfs":    zfs.New,
		"iscsi":  iscsi.New,
		"nfs":    nfs.New,
	}
}
