package plan

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestExpanderStepsRunInItsPlace(t *testing.T) {
	r := newRig(t)
	x := &xp{more: r.steps("system")}
	steps := []Step{r.step("data"), x, r.step("fstab")}
	require.NoError(t, r.eng.Attach(context.Background(), base, steps))
	assert.Equal(t, 1, x.sawMounts, "expanded after the step before it was in place")
	var targets []string
	for _, a := range r.rec.Argvs() {
		targets = append(targets, filepath.Base(a[len(a)-1]))
	}
	assert.Equal(t, []string{"data", "system", "fstab"}, targets)
	rec, err := r.eng.Record("web1")
	require.NoError(t, err)
	assert.Len(t, rec.Actions, 3, "expanded steps are recorded like any other")
}

func TestExpanderErrorRollsBack(t *testing.T) {
	r := newRig(t)
	x := &xp{err: sysexits.New(sysexits.Config, "no such dataset")}
	err := r.eng.Attach(context.Background(), base, []Step{r.step("data"), x, r.step("system")})
	require.Error(t, err)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Empty(t, r.k.table, "the data mount made before the failure was undone")
}

// xp is an expander that returns its steps only when reached, and notes
// what the mount table showed then, to prove it runs after the steps before it.
type xp struct {
	more      []Step
	err       error
	sawMounts int
}

func (x *xp) String() string                              { return "expand" }
func (x *xp) Done(context.Context, *System) (bool, error) { return false, errors.New("Done called") }
func (x *xp) Apply(context.Context, *System) error        { return errors.New("Apply called") }
func (x *xp) Undo() *state.Action                         { return nil }
func (x *xp) Expand(ctx context.Context, s *System) ([]Step, error) {
	t, _ := s.Mounts()
	x.sawMounts = len(t)
	return x.more, x.err
}
