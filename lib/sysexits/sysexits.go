// Package sysexits carries a sysexits(3) exit code with an error, so that the
// layer that knows why something failed decides the code and the thin mains
// only print one line and exit with it.
package sysexits

import (
	"errors"
	"fmt"
)

// Exit codes from sysexits(3) that envhooks uses; DESIGN.md says which
// failure maps to which.
const (
	OK          = 0
	Usage       = 64 // EX_USAGE: bad flags or operands
	DataErr     = 65 // EX_DATAERR: invalid jname, bad descriptor file
	Unavailable = 69 // EX_UNAVAILABLE: storage unreachable, timeout, device never appeared
	Software    = 70 // EX_SOFTWARE: a bug; should never be seen
	OSErr       = 71 // EX_OSERR: the OS refused something it should allow
	CantCreat   = 73 // EX_CANTCREAT: cannot create or occupy a target
	TempFail    = 75 // EX_TEMPFAIL: busy unmount, local lock held: try again
	NoPerm      = 77 // EX_NOPERM: another node owns the environment
	Config      = 78 // EX_CONFIG: configuration error
)

// Error is an error that knows its exit code.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New returns an error with the given exit code and a formatted message.
// %w verbs wrap as with fmt.Errorf.
func New(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Wrap gives err an exit code unless it already carries one; nil stays nil.
func Wrap(code int, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: code, Err: err}
}

// Code returns the exit code carried by err: 0 for nil, Software for an
// error nobody classified.
func Code(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Software
}
