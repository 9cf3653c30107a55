package environment

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestCheckName(t *testing.T) {
	good := []string{"web1", "a", "Jail_2.test-x", "0", strings.Repeat("a", 64)}
	for _, n := range good {
		assert.NoError(t, CheckName(n), n)
	}
	bad := []string{"", ".", "..", "../x", "a/b", "a b", "$(id)", "`id`", "-rf", ".hidden", "_x",
		strings.Repeat("a", 65), "web1\n", "x;reboot", "ünï"}
	for _, n := range bad {
		err := CheckName(n)
		if assert.Error(t, err, "%q", n) {
			assert.Equal(t, sysexits.DataErr, sysexits.Code(err), "%q", n)
			assert.NotContains(t, err.Error(), "\n", "one line for %q", n)
		}
	}
}
