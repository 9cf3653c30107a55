package zfs

import (
	"context"
	"strings"

	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/sysexits"
	"github.com/envhooks/envhooks/lib/zfs"
)

// Diagnose checks the commands, that ZFS answers (the kernel module, or
// zfs-fuse's daemon), the pool and the part of ZFS_ROOT every environment
// shares (backend.Diagnoser). Commands run under the caller's deadline.
func (b *Backend) Diagnose(ctx context.Context) []doctor.Finding {
	out := doctor.Commands("zfs: commands", "zfs", "zpool")
	if ok, how := kernelSupport(); ok {
		out = append(out, doctor.Pass("zfs: kernel", "%s", how))
	} else {
		out = append(out, doctor.Warning("zfs: kernel", how, kernelFix))
	}
	root := sharedPart(b.root)
	if b.pool != "" && !strings.Contains(b.pool, jnameToken) {
		f := doctor.Answers(ctx, "zfs: pool", 0, zfs.PoolImportedArgv(b.pool), []int{0}, "pool "+b.pool+" is imported here", "")
		if f.Status != doctor.OK {
			// Importing it is mnt-start's job; the root cannot be
			// looked at before.
			return append(out, doctor.Pass("zfs: pool", "pool %s is not imported here; mnt-start imports it (zpool import -d %v) when this node starts an environment", b.pool, b.importOpts.Dirs))
		}
		out = append(out, f)
	}
	if root == "" {
		return out
	}
	f := doctor.Answers(ctx, "zfs: ZFS_ROOT", 0, zfs.ExistsArgv(root), []int{0}, "dataset "+root+" exists", "create it (zfs create -p "+root+"), or correct ZFS_ROOT")
	if f.Status == doctor.Fail {
		f.Code = sysexits.Config
	}
	return append(out, f)
}

// sharedPart is the dataset of a ZFS_ROOT template that does not depend on
// the jname: tank/envs for tank/envs, tank for tank/%j.
func sharedPart(template string) string {
	before, _, _ := strings.Cut(template, jnameToken)
	return strings.TrimRight(before, "/")
}
