package plan

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// layerKernel makes rig's fake kernel refuse, as FreeBSD's dounmount()
// does, to unmount a mount that another one is nested in or nullfs-mounted
// from (mounttab.Table.Layers), for umount(8) and umount(2) alike.
type layerKernel struct{ r *rig }

func (k layerKernel) Bind(src, target string) error { return errors.New("not used") }

func (k layerKernel) Unmount(target string, force bool) error {
	k.r.k.mu.Lock()
	defer k.r.k.mu.Unlock()
	if len(k.r.k.table.Layers(target)) > 0 {
		return syscall.EBUSY
	}
	for i := len(k.r.k.table) - 1; i >= 0; i-- {
		if k.r.k.table[i].Target == target {
			k.r.k.table = append(k.r.k.table[:i], k.r.k.table[i+1:]...)
			return nil
		}
	}
	return syscall.EINVAL
}

// jailRig is a data mount with what CBSD's jstart puts on it: a nullfs
// mount of ${data}/etc on the jail root (baserw=0) and /usr/ports mounted
// inside it (mount_ports with baserw=1).
func jailRig(t *testing.T) (r *rig, data, jailRoot string) {
	r = newRig(t)
	require.NoError(t, r.eng.Attach(context.Background(), base, r.steps("data")))
	data = filepath.Join(r.root, "env", "data")
	jailRoot = filepath.Join(r.root, "jails", "web1")
	r.k.table = append(r.k.table,
		mounttab.Mount{Source: filepath.Join(data, "etc"), Target: filepath.Join(jailRoot, "etc"), FSType: "nullfs"},
		mounttab.Mount{Source: "/usr/ports", Target: filepath.Join(data, "usr/ports"), FSType: "nullfs"})
	respond := r.rec.Respond
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if c.Argv[0] == "umount" {
			r.k.mu.Lock()
			busy := len(r.k.table.Layers(c.Argv[len(c.Argv)-1])) > 0
			r.k.mu.Unlock()
			if busy {
				return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: "umount: unmount of " + c.Argv[len(c.Argv)-1] + " failed: Device busy"}
			}
		}
		return respond(c)
	}
	r.eng.Sys.Kernel = layerKernel{r}
	return r, data, jailRoot
}

func TestLayersWithoutAWayToTellStoppedAreReported(t *testing.T) {
	r, data, jailRoot := jailRig(t)
	r.eng.Sys.Layers = &Layers{Own: []string{jailRoot}}
	err := r.eng.Detach(context.Background(), "web1")
	require.Error(t, err)
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err))
	assert.Contains(t, err.Error(), "RUNNING_CHECK")
	assert.Len(t, r.k.table, 3, "nothing was unmounted")
	top, ok := r.k.table.Top(data)
	assert.True(t, ok, "the data is still attached: %v", top)
}

func TestLayersOfAStoppedEnvironmentGoFirst(t *testing.T) {
	r, data, jailRoot := jailRig(t)
	asked := 0
	r.eng.Sys.Layers = &Layers{Own: []string{jailRoot}, Idle: func(context.Context) error { asked++; return nil }}
	start := time.Now()
	require.NoError(t, r.eng.Detach(context.Background(), "web1"))
	assert.Empty(t, r.k.table, "the layers, then the data")
	assert.Equal(t, 1, asked, "one running check")
	assert.Less(t, time.Since(start), r.eng.Sys.UnmountTimeout, "no wait for a busy mount")
	rec, err := r.eng.Record("web1")
	require.NoError(t, err)
	assert.Nil(t, rec)
	_ = data
}

func TestLayersOfARunningEnvironmentStay(t *testing.T) {
	r, _, jailRoot := jailRig(t)
	r.eng.Sys.Layers = &Layers{Own: []string{jailRoot}, Idle: func(context.Context) error { return errors.New("web1 is running (jls -j web1 exited 0)") }}
	err := r.eng.Detach(context.Background(), "web1")
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err))
	assert.Contains(t, err.Error(), "is running")
	assert.Len(t, r.k.table, 3, "a running jail keeps all its mounts")
}

func TestForeignLayerIsNotTouched(t *testing.T) {
	r, data, _ := jailRig(t)
	other := filepath.Join(r.root, "jails", "web2", "www")
	r.k.table = append(r.k.table, mounttab.Mount{Source: filepath.Join(data, "www"), Target: other, FSType: "nullfs"})
	r.eng.Sys.Layers = &Layers{Own: []string{filepath.Join(r.root, "jails", "web1")}, Idle: func(context.Context) error { return nil }}
	err := r.eng.Detach(context.Background(), "web1")
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err))
	assert.Contains(t, err.Error(), other)
	assert.Len(t, r.k.table, 4, "nothing unmounted when one layer is someone else's")
}

// TestTimedOutUnmountIsForcedAtOnce: an unmount that hangs (a dead NFS
// server) is not retried until UNMOUNT_TIMEOUT; with FORCE_UNMOUNT=1 the
// force command runs at once, without it the answer is 69.
func TestTimedOutUnmountIsForcedAtOnce(t *testing.T) {
	for _, force := range []bool{false, true} {
		r := newRig(t)
		require.NoError(t, r.eng.Attach(context.Background(), base, r.steps("data")))
		respond := r.rec.Respond
		r.rec.Respond = func(c run.Cmd) (run.Result, error) {
			if c.Argv[0] == "umount" && len(c.Argv) == 2 {
				return run.Result{}, &run.Error{Cmd: c, ExitCode: -1, TimedOut: true}
			}
			return respond(c)
		}
		r.eng.Sys.ForceUnmount = force
		r.eng.Sys.UnmountTimeout = time.Minute
		start := time.Now()
		err := r.eng.Detach(context.Background(), "web1")
		assert.Less(t, time.Since(start), 10*time.Second, "not retried for UNMOUNT_TIMEOUT")
		plain := 0
		for _, a := range r.rec.Argvs() {
			if a[0] == "umount" && len(a) == 2 {
				plain++
			}
		}
		assert.Equal(t, 1, plain, "a hung unmount is tried once")
		if force {
			require.NoError(t, err)
			assert.Empty(t, r.k.table)
			continue
		}
		assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
		assert.Contains(t, err.Error(), "FORCE_UNMOUNT=1")
	}
}
