package plan

import (
	"errors"
	"fmt"
)

// PreflightError is a dry run whose plan was printed in full although a
// check before it failed: the check's error, with its exit code, said
// after the plan.
type PreflightError struct{ Err error }

func (e *PreflightError) Error() string {
	return fmt.Sprintf("dry run: the plan above would not run: %v", e.Err)
}

func (e *PreflightError) Unwrap() error { return e.Err }

// DryRunFailure marks err (nil stays nil) as a failed check of a dry run
// whose plan was printed anyway; an error already marked stays as it is.
func DryRunFailure(err error) error {
	if err == nil || IsDryRunFailure(err) {
		return err
	}
	return &PreflightError{Err: err}
}

// IsDryRunFailure tells a dry run's failed check, after which its caller
// goes on printing the rest of its plan, from an error that ends the plan.
func IsDryRunFailure(err error) bool {
	var p *PreflightError
	return errors.As(err, &p)
}
