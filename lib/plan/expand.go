package plan

import "context"

// Expander is a step whose sub-steps can only be known once the steps
// before it are in place: a ZFS pool must be imported before its dataset
// tree can be listed. Attach calls Expand when it reaches the step and runs
// the steps it returns in its place (Done, Apply and Undo of the expander
// itself are never called). Expand must only look, never change anything:
// changes belong in the steps it returns, so that dry runs, rollback and the
// record treat them like any other step.
type Expander interface {
	Step
	Expand(ctx context.Context, s *System) ([]Step, error)
}
