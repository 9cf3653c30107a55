//go:build !linux && !freebsd

package plan

import (
	"context"

	"github.com/envhooks/envhooks/lib/platform"
)

// osKernel refuses everything where envhooks does not run (see lib/platform).
type osKernel struct{}

func (osKernel) Bind(src, target string) error           { return platform.Check() }
func (osKernel) Unmount(target string, force bool) error { return platform.Check() }

func holders(_ context.Context, _ *System, dir string) []string { return nil }
