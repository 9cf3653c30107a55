package envctl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestOperands(t *testing.T) {
	ops, err := parseOperands([]string{"jname=web1", "rcfile=/tmp/rc"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"jname": "web1", "rcfile": "/tmp/rc"}, ops)
	ops, err = parseOperands([]string{"jname=vm1", "kind=vm"})
	require.NoError(t, err)
	assert.Equal(t, "vm", ops["kind"])
	_, err = parseOperands([]string{"jname=vm1", "kind=xen"})
	assert.Equal(t, sysexits.Usage, sysexits.Code(err))
	ops, err = parseOperands([]string{"web*"})
	require.NoError(t, err)
	assert.Equal(t, "web*", ops["jname"])
	for _, bad := range [][]string{{"color=red"}, {"web1", "web2"}, {"jname=a b"}} {
		_, err := parseOperands(bad)
		assert.Error(t, err, "%v", bad)
	}
	_, err = parseOperands([]string{"jname=../x"})
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
	assert.True(t, IsPattern("web[1-3]"))
	assert.False(t, IsPattern("web1"))
}
