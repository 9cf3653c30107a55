package testenv

import (
	"sync"
	"testing"
)

// Shared is something a test package's tests share because making it is
// slow (a server, a cluster, a build, a scratch file system): the first
// test that needs it makes it, and Close, called from TestMain's teardown,
// ends it once after every test has run. Make cleans up after itself when
// it fails; a failure is reported to every test that asks.
type Shared[T any] struct {
	Make func() (T, error)
	End  func(T) // nil when there is nothing to end

	once  sync.Once
	value T
	err   error
}

// Value makes the shared thing on first use and returns it, or why it
// could not be made. Makers of other shared things call it (they have no
// test to fail).
func (s *Shared[T]) Value() (T, error) {
	s.once.Do(func() { s.value, s.err = s.Make() })
	return s.value, s.err
}

// Get is Value for a test: it fails t when the thing could not be made.
func (s *Shared[T]) Get(t testing.TB) T {
	t.Helper()
	v, err := s.Value()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Close ends the shared thing if it was made. Later calls do nothing.
func (s *Shared[T]) Close() {
	made := true
	s.once.Do(func() { made = false }) // never made: nothing to end, and nothing is made any more
	if made && s.err == nil && s.End != nil {
		s.End(s.value)
		s.End = nil
	}
}
