package plan

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/mounttab"
)

// fakeDirect is a Kernel over the fake table that records a bind mount as
// Linux's mountinfo does: the filesystem and the directory it shows.
type fakeDirect struct{ k *fakeKernel }

func (f fakeDirect) Bind(src, target string) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	f.k.table = append(f.k.table, mounttab.Mount{Source: "/dev/vda", Target: target, FSType: "ext4", Dev: "254:0", Root: src})
	return nil
}

func (f fakeDirect) Unmount(target string, force bool) error {
	f.k.mu.Lock()
	defer f.k.mu.Unlock()
	if f.k.busyLeft > 0 && !force {
		f.k.busyLeft--
		return syscall.EBUSY
	}
	for i := len(f.k.table) - 1; i >= 0; i-- {
		if f.k.table[i].Target == target {
			f.k.table = append(f.k.table[:i], f.k.table[i+1:]...)
			return nil
		}
	}
	return syscall.EINVAL
}

// Direct bind mounts go through the kernel, not a program, are recognised
// as already in place by the directory they show, and are undone the same
// way, with EBUSY retried like a busy umount(8).
func TestDirectBindMounts(t *testing.T) {
	r := newRig(t)
	r.k.table = mounttab.Table{{Source: "/dev/vda", Target: "/", FSType: "ext4", Dev: "254:0", Root: "/"}}
	r.eng.Sys.Kernel = fakeDirect{r.k}
	target := filepath.Join(r.root, "env", "data")
	bind := func() []Step {
		return []Step{&Mount{Target: target, Want: mounttab.Want{BindOf: "/dfs/data/web1"}, DirectBind: true,
			Argv: []string{"mount", "--bind", "/dfs/data/web1", target}, UnmountArgv: []string{"umount", target}, What: "bind"}}
	}
	ctx := context.Background()
	require.NoError(t, r.eng.Attach(ctx, base, bind()))
	require.NoError(t, r.eng.Attach(ctx, base, bind()))
	assert.Len(t, r.k.table, 2, "the second attach found it in place")
	assert.Empty(t, r.rec.Argvs(), "no program was run")
	rec, _ := r.eng.Record("web1")
	require.Len(t, rec.Actions, 1)
	assert.True(t, rec.Actions[0].Direct)

	r.k.busyLeft = 2
	require.NoError(t, r.eng.Detach(ctx, "web1"))
	assert.Len(t, r.k.table, 1)
	assert.Empty(t, r.rec.Argvs())
}
