package deadline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestWhyNamesTheDeadlineThatFired(t *testing.T) {
	outer, cancel := WithTimeout(context.Background(), 20*time.Millisecond, "HOOK_TIMEOUT")
	defer cancel()
	inner, cancel2 := WithTimeout(outer, time.Hour, "LOCK_TIMEOUT")
	defer cancel2()
	assert.Nil(t, Why(inner))
	<-inner.Done()
	assert.EqualError(t, Why(inner), "HOOK_TIMEOUT=20ms passed", "the outer deadline fired, not the inner one")
	var p *Passed
	assert.True(t, errors.As(Why(inner), &p))

	short, cancel3 := WithTimeout(context.Background(), time.Millisecond, "LOCK_TIMEOUT")
	defer cancel3()
	<-short.Done()
	assert.EqualError(t, Why(short), "LOCK_TIMEOUT=1ms passed")
}

func TestWhyOfUnnamedContexts(t *testing.T) {
	plain, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	<-plain.Done()
	assert.EqualError(t, Why(plain), "its caller's deadline passed")
	c, cancelC := context.WithCancel(context.Background())
	cancelC()
	assert.EqualError(t, Why(c), "it was cancelled")
	s, cancelS := context.WithCancelCause(context.Background())
	cancelS(&Interrupted{Signal: "SIGTERM"})
	assert.EqualError(t, Why(s), "interrupted by SIGTERM")
}
