package envctl

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

func runMain(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(append([]string{"envctl"}, args...), Wiring{}, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageListsEveryCommand(t *testing.T) {
	code, out, _ := runMain("-h")
	require.Equal(t, 0, code)
	for _, c := range commands {
		assert.Contains(t, out, "  "+c.name+" ", c.name)
	}
}

func TestCommandLookup(t *testing.T) {
	for _, tc := range []struct {
		words []string
		name  string
		rest  []string
	}{
		{[]string{"jregister", "web1"}, "jregister", []string{"web1"}},
		{[]string{"lease", "show", "jname=web1"}, "lease show", []string{"jname=web1"}},
		{[]string{"lease", "list"}, "lease list", []string{}},
		{[]string{"keys"}, "keys", []string{}},
	} {
		c, rest := lookupCommand(tc.words)
		require.NotNil(t, c, "%v", tc.words)
		assert.Equal(t, tc.name, c.name)
		assert.Equal(t, tc.rest, rest)
	}
	for _, words := range [][]string{{"lease"}, {"lease", "steal"}, {"register"}, {"jregisterx"}} {
		c, _ := lookupCommand(words)
		assert.Nil(t, c, "%v", words)
	}
}

func TestUsageErrorsAreOneLineWith64(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"lease"},
		{"lease", "steal"},
		{"--bogus", "list"},
		{"keys", "color=red"},
		{"keys", "a", "b"},
		{"jregister", "web1", "kind=vm"},
		{"jregister", "web1", "to=b"},
		{"move", "web1", "to=b;c"},
		{"move", "web1", "to=b,,c"},
		{"drain", "to=-oProxyCommand=x"},
		{"start", "web1", "kind=zone"},
	} {
		code, out, errOut := runMain(args...)
		assert.Equal(t, sysexits.Usage, code, "%v", args)
		assert.Empty(t, out, "%v", args)
		assert.Equal(t, 1, strings.Count(errOut, "\n"), "%v: %q", args, errOut)
		assert.True(t, strings.HasPrefix(errOut, "envctl: error: "), "%v: %q", args, errOut)
	}
}

func TestKeysNeedsNoConfiguration(t *testing.T) {
	t.Setenv("ENVHOOKS_CONFIG", "/nonexistent/envhooks.conf")
	code, out, errOut := runMain("keys")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "LEASE_DIR=")
	assert.Contains(t, out, "BACKEND=")
}
