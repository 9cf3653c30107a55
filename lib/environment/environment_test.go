package environment

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestCheckName(t *testing.T) {
	// CBSD's validate_jname (subr/nc.subr) accepts a leading '_', '@', '%'
	// or ':' and those characters anywhere; '.' stays allowed inside.
	good := []string{"web1", "a", "Jail_2.test-x", "0", strings.Repeat("a", 64),
		"_x", "@home", "%tmp", ":srv", "a@b%c:d_e-f", "x.y"}
	for _, n := range good {
		assert.NoError(t, CheckName(n), n)
	}
	bad := []string{"", ".", "..", "../x", "a/b", "a b", "a\tb", "$(id)", "`id`", "-rf", ".hidden",
		strings.Repeat("a", 65), "web1\n", "x;reboot", "ünï", "a*", "a?b", "[ab]", "a\"b", "a'b", "a\\b"}
	for _, n := range bad {
		err := CheckName(n)
		if assert.Error(t, err, "%q", n) {
			assert.Equal(t, sysexits.DataErr, sysexits.Code(err), "%q", n)
			assert.NotContains(t, err.Error(), "\n", "one line for %q", n)
		}
	}
}

func TestCBSDWorkdir(t *testing.T) {
	assert.Equal(t, "/usr/jails", CBSDWorkdir("/usr/jails/jails-system/web1", "web1"))
	assert.Equal(t, "/usr/jails", CBSDWorkdir("/usr/jails/jails-system/web1/", "web1"))
	assert.Equal(t, "", CBSDWorkdir("/usr/jails/system/web1", "web1"))
	assert.Equal(t, "", CBSDWorkdir("/usr/jails/jails-system/web2", "web1"))
	assert.Equal(t, "", CBSDWorkdir("", "web1"))
	assert.Equal(t, "/usr/jails/jails/web1", CBSDJailRoot("/usr/jails", "web1"))
}
