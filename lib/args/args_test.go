package args

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/sysexits"
)

var start = Required{DataAndSystem: true}

// CBSD's jstart passes all five flags; bstart the same without -f.
func TestCBSDInvocations(t *testing.T) {
	jail := []string{"/usr/local/bin/mnt-start", "-d", "/usr/jails/jails-data/web1-data", "-f", "/usr/jails/jails-fstab/web1",
		"-j", "web1", "-r", "/usr/jails/jails-rcconf", "-s", "/usr/jails/jails-system/web1"}
	o, err := Parse(jail, start)
	require.NoError(t, err)
	e := o.Env()
	assert.Equal(t, "web1", e.Name)
	assert.Equal(t, map[environment.Role]string{
		environment.Data: "/usr/jails/jails-data/web1-data", environment.Fstab: "/usr/jails/jails-fstab/web1",
		environment.RCConf: "/usr/jails/jails-rcconf", environment.System: "/usr/jails/jails-system/web1",
	}, e.Dirs)

	vm := []string{"mnt-start", "-d", "/usr/jails/jails-data/vm1-data", "-j", "vm1", "-r", "/usr/jails/jails-rcconf", "-s", "/usr/jails/jails-system/vm1"}
	o, err = Parse(vm, start)
	require.NoError(t, err)
	assert.Equal(t, "", o.Env().Dir(environment.Fstab))

	long := []string{"mnt-start", "--jname=vm1", "--data", "/d/", "--sysdata=/s", "--dry-run", "--config", "/etc/x.conf", "-v"}
	o, err = Parse(long, start)
	require.NoError(t, err)
	assert.True(t, o.DryRun)
	assert.True(t, o.Verbose)
	assert.Equal(t, "/d", o.Data, "paths are cleaned")
	assert.Equal(t, "/etc/x.conf", o.ConfigFile)

	// getopt clustering and attached values, as shell scripts write them.
	o, err = Parse([]string{"mnt-start", "-nvjweb1", "-d/d", "-s/s"}, start)
	require.NoError(t, err)
	assert.Equal(t, "web1", o.JName)
	assert.True(t, o.DryRun && o.Verbose)
}

func TestUsageErrors(t *testing.T) {
	cases := map[string][]string{
		"missing -j":       {"mnt-start", "-d", "/d", "-s", "/s"},
		"missing -d":       {"mnt-start", "-j", "a", "-s", "/s"},
		"missing -s":       {"mnt-start", "-j", "a", "-d", "/d"},
		"unknown flag":     {"mnt-start", "-x", "-j", "a", "-d", "/d", "-s", "/s"},
		"missing value":    {"mnt-start", "-d", "/d", "-s", "/s", "-j"},
		"relative path":    {"mnt-start", "-j", "a", "-d", "d", "-s", "/s"},
		"root as data dir": {"mnt-start", "-j", "a", "-d", "/", "-s", "/s"},
		"empty path":       {"mnt-start", "-j", "a", "-d", "", "-s", "/s"},
		"newline in path":  {"mnt-start", "-j", "a", "-d", "/d\n/x", "-s", "/s"},
		"operand":          {"mnt-start", "-j", "a", "-d", "/d", "-s", "/s", "start"},
		"empty -c":         {"mnt-start", "-j", "a", "-d", "/d", "-s", "/s", "-c", ""},
	}
	for name, argv := range cases {
		_, err := Parse(argv, start)
		if assert.Error(t, err, name) {
			assert.Equal(t, sysexits.Usage, sysexits.Code(err), name)
			assert.NotContains(t, err.Error(), "\n", name)
			assert.Contains(t, err.Error(), "usage: mnt-start", name)
		}
	}
}

func TestBadJNamesAreDataErrors(t *testing.T) {
	for _, j := range []string{"../x", "a b", "$(id)", strings.Repeat("x", 65), "a/b", ".."} {
		_, err := Parse([]string{"mnt-start", "-j", j, "-d", "/d", "-s", "/s"}, start)
		if assert.Error(t, err, j) {
			assert.Equal(t, sysexits.DataErr, sysexits.Code(err), j)
		}
	}
}

func TestStopNeedsOnlyJName(t *testing.T) {
	o, err := Parse([]string{"mnt-stop", "-j", "web1"}, Required{})
	require.NoError(t, err)
	assert.Equal(t, "web1", o.JName)
}

func TestHelpAndVersion(t *testing.T) {
	o, err := Parse([]string{"mnt-start", "-h"}, start)
	require.NoError(t, err)
	assert.True(t, o.Help)
	var b bytes.Buffer
	o.PrintHelp(&b)
	for _, flag := range []string{"-d", "-f", "-j", "-r", "-s", "-c", "-n", "-v", "-V", "--dry-run"} {
		assert.Contains(t, b.String(), flag)
	}
	b.Reset()
	assert.True(t, o.HelpOrVersion(&b))
	assert.Contains(t, b.String(), "usage: mnt-start ")
	o, err = Parse([]string{"mnt-start", "-V"}, start)
	require.NoError(t, err)
	assert.True(t, o.ShowVersion)
	assert.True(t, strings.HasPrefix(o.UsageLine(), "mnt-start "))
	b.Reset()
	assert.True(t, o.HelpOrVersion(&b))
	assert.Equal(t, "mnt-start "+Version+"\n", b.String())
	o, err = Parse([]string{"mnt-start", "-j", "web1", "-d", "/j/d", "-s", "/j/s"}, start)
	require.NoError(t, err)
	b.Reset()
	assert.False(t, o.HelpOrVersion(&b))
	assert.Empty(t, b.String())
}
