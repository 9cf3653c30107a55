// Package nullfs attaches an environment's directories from a directory tree
// that is already visible on this node (local disk, or a shared filesystem
// mounted node-wide) with nullfs on FreeBSD and bind mounts on Linux. The
// tree has the shared layout: NULLFS_ROOT/{data,system,rcconf,fstab}/<jname>.
package nullfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/sysexits"
)

var rootKey = config.Define(config.Key{Name: "NULLFS_ROOT", Doc: "nullfs/bind backend: the directory holding data/ system/ rcconf/ fstab/, one folder per environment in each", Check: config.IsAbsPath})

// Backend is the nullfs/bind backend.
type Backend struct {
	root    string
	timeout time.Duration
}

// New reads NULLFS_ROOT.
func New(cfg *config.Config) (plan.Backend, error) {
	root := cfg.Get(rootKey)
	if root == "" {
		return nil, sysexits.New(sysexits.Config, "BACKEND=nullfs needs NULLFS_ROOT, the directory that holds data/ system/ rcconf/ fstab/")
	}
	return &Backend{root: filepath.Clean(root), timeout: cfg.Seconds(config.CommandTimeout)}, nil
}

// Source is the directory that role of jname comes from.
func (b *Backend) Source(jname string, role environment.Role) string {
	return filepath.Join(b.root, string(role), jname)
}

func (b *Backend) Steps(env *environment.Env, roles []environment.Role) ([]plan.Step, error) {
	// Every source is checked before anything is mounted, so a missing
	// one costs no mount and no rollback.
	var mounts []*plan.Mount
	steps := []plan.Step{nil}
	for _, role := range roles {
		src, target := b.Source(env.Name, role), env.Dir(role)
		m := &plan.Mount{
			Target:      target,
			Want:        want(src),
			Argv:        mountArgv(src, target),
			UnmountArgv: []string{"umount", target},
			ForceArgv:   []string{"umount", "-f", target},
			What:        plan.Describe("bind", src, target),
			DirectBind:  directBind,
		}
		mounts = append(mounts, m)
		steps = append(steps, m)
	}
	steps[0] = sourcesExist(mounts, b.timeout)
	return steps, nil
}

// LinuxMountArgv and FreeBSDMountArgv are kept on every OS so that each
// syntax is tested everywhere; mountArgv picks this OS's.
func LinuxMountArgv(src, target string) []string {
	return []string{"mount", "--bind", src, target}
}

func FreeBSDMountArgv(src, target string) []string {
	return []string{"mount", "-t", "nullfs", src, target}
}

// sourcesExist fails early, and within a deadline (the tree may itself sit
// on a network filesystem), when a source directory is missing. It also
// resolves each source's symbolic links, NULLFS_ROOT's included, as
// mount(8) and mount_nullfs(8) will: the mount table shows the resolved
// directory, and the engine compares the mounts with it.
func sourcesExist(mounts []*plan.Mount, timeout time.Duration) plan.Step {
	return &plan.Check{What: "check that the sources exist under NULLFS_ROOT", Preflight: true, Fn: func(ctx context.Context, _ *plan.System) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		dirs := make([]string, len(mounts))
		for i, m := range mounts {
			dirs[i] = m.Want.BindOf
		}
		done := make(chan error, 1)
		go func() {
			for i, dir := range dirs {
				real, err := filepath.EvalSymlinks(dir)
				var fi os.FileInfo
				if err == nil {
					fi, err = os.Stat(real)
				}
				if err == nil && !fi.IsDir() {
					err = errNotDir
				}
				if err != nil {
					done <- sysexits.New(sysexits.Unavailable, "source %s is not available: %v (is the storage under NULLFS_ROOT attached, and the environment created there?)", dir, err)
					return
				}
				dirs[i] = real
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			for i, m := range mounts {
				m.ResolveSource(dirs[i])
			}
			return nil
		case <-ctx.Done():
			return sysexits.New(sysexits.Unavailable, "the sources under NULLFS_ROOT did not answer within %s (is that storage hung?)", timeout)
		}
	}}
}

var errNotDir = errors.New("not a directory")

// Environments lists the environments under NULLFS_ROOT (those with a
// system directory), so envctl can expand a jname pattern.
func (b *Backend) Environments() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(b.root, string(environment.System)))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && environment.CheckName(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
