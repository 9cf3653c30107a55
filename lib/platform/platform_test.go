package platform

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestCheck(t *testing.T) {
	assert.NoError(t, check("linux"))
	assert.NoError(t, check("freebsd"))
	for _, goos := range []string{"darwin", "openbsd", "netbsd", "windows"} {
		err := check(goos)
		assert.Equal(t, sysexits.Unavailable, sysexits.Code(err), goos)
		assert.EqualError(t, err, "unsupported on this system ("+goos+"): envhooks runs on FreeBSD and Linux")
	}
	assert.NoError(t, Check(), "the tests run on a supported system")
}
