package plan

import (
	"context"
	"fmt"
	"strings"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Layers says which mounts sitting on a recorded mount belong to the
// environment, so the engine may unmount them first. CBSD's jstop runs the
// master_poststop.d scripts (and so mnt-stop) before its jcleanup unmounts
// the jail's own mounts (sudoexec/jstop), and with CBSD's defaults those sit
// on the data directory: nullfs mounts of ${data}/etc, ${data}/var,
// ${data}/var/cache/distfiles, ... on the jail root (baserw=0), or mounts
// inside ${data} (baserw=1). Without this, every stop waits UNMOUNT_TIMEOUT
// and leaves the data attached.
type Layers struct {
	// Own lists directories whose mounts are the environment's (CBSD's jail
	// root); mounts nested inside a recorded mount are always its own.
	Own []string
	// Idle returns nil when the environment does not run: its mounts are
	// taken away only then. nil: no way to tell, so none is taken away.
	Idle func(ctx context.Context) error
}

// detachLayers unmounts, newest first, the mounts that would keep target
// busy for good (see mounttab.Table.Layers), when all of them are the
// environment's own and it does not run. Anything else is a clear 75.
func (s *System) detachLayers(ctx context.Context, target string) error {
	t, err := s.Mounts()
	if err != nil {
		return sysexits.Wrap(sysexits.OSErr, err)
	}
	layers := t.Layers(target)
	if len(layers) == 0 {
		return nil
	}
	var foreign, names []string
	for _, m := range layers {
		names = append(names, m.Target)
		if !s.ownsLayer(m, target) {
			foreign = append(foreign, m.Target)
		}
	}
	if len(foreign) > 0 {
		return sysexits.New(sysexits.TempFail, "%s cannot be unmounted while %s use it, and they are not this environment's mounts: unmount them first", target, strings.Join(foreign, ", "))
	}
	if s.Layers == nil || s.Layers.Idle == nil {
		return sysexits.New(sysexits.TempFail, "%s cannot be unmounted while %s sit on it: unmount them first (cbsd jcleanup does for a stopped jail), or set RUNNING_CHECK so that envhooks can tell the environment is stopped and unmount them itself", target, strings.Join(names, ", "))
	}
	if err := s.Layers.Idle(ctx); err != nil {
		return sysexits.New(sysexits.TempFail, "%s cannot be unmounted while %s sit on it: %v", target, strings.Join(names, ", "), err)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		m := layers[i]
		a := state.Action{
			ID:     "layer:" + m.Target,
			What:   fmt.Sprintf("%s on %s", m.Describe(), m.Target),
			Kind:   state.KindUnmount,
			Target: m.Target,
			Want:   mounttab.Want{FSType: m.FSType, Source: m.Source},
			Direct: true,
			Argv:   []string{"umount", m.Target},
		}
		if !s.DryRun {
			s.Log.Action("unmounting %s first: it sits on %s", a.What, target)
		}
		if err := s.unmount(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

func (s *System) ownsLayer(m mounttab.Mount, target string) bool {
	if mounttab.Within(m.Target, target) {
		return true
	}
	if s.Layers == nil {
		return false
	}
	for _, dir := range s.Layers.Own {
		if dir != "" && mounttab.Within(m.Target, dir) {
			return true
		}
	}
	return false
}

// sayUnmount prints the unmount a dry run would do.
func (s *System) sayUnmount(ctx context.Context, a state.Action) {
	_, _ = s.Run.Run(ctx, run.Cmd{Argv: a.Argv}) // a dry run: the runner prints it
}
