package nullfs

import (
	"context"
	"path/filepath"

	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/plan"
)

// Diagnose checks the kernel's bind/nullfs support, the commands, and that
// NULLFS_ROOT holds the shared layout, under the same deadline as the
// hooks' own check (backend.Diagnoser).
func (b *Backend) Diagnose(ctx context.Context) []doctor.Finding {
	out := kernelSupport()
	out = append(out, doctor.Commands("nullfs: commands", commands...)...)
	dirs := []string{filepath.Join(b.root, "data"), filepath.Join(b.root, "system")}
	var mounts []*plan.Mount
	for _, d := range dirs {
		mounts = append(mounts, &plan.Mount{Want: mounttab.Want{BindOf: d}})
	}
	check := sourcesExist(mounts, b.timeout).(*plan.Check)
	if err := check.Fn(ctx, nil); err != nil {
		return append(out, doctor.FromError("nullfs: NULLFS_ROOT", err, "mount the shared storage on "+b.root+" on every node, with data/ and system/ in it"))
	}
	return append(out, doctor.Pass("nullfs: NULLFS_ROOT", "%s and %s are there", dirs[0], dirs[1]))
}
