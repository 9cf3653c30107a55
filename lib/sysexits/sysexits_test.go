package sysexits

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCodes(t *testing.T) {
	assert.Equal(t, OK, Code(nil))
	assert.Equal(t, Software, Code(errors.New("unclassified")))
	e := New(NoPerm, "owned by %s", "b")
	assert.Equal(t, NoPerm, Code(e))
	assert.Equal(t, "owned by b", e.Error())
	assert.Equal(t, NoPerm, Code(fmt.Errorf("context: %w", e)), "the code survives wrapping")
	assert.Equal(t, NoPerm, Code(Wrap(Config, e)), "Wrap keeps an existing code")
	assert.Equal(t, Config, Code(Wrap(Config, errors.New("x"))))
	assert.Nil(t, Wrap(Config, nil))
}
