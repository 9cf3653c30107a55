package fence

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// The example configuration loads, keeps the timing contract, and names
// no unknown key.
func TestExampleConfig(t *testing.T) {
	cfg, err := config.LoadFile("../../examples/fence/envhooks.conf")
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings)
	_, err = Load(cfg)
	require.NoError(t, err)
}

// trustedDir is a directory only root can write, as a configured
// executable's must be (a t.TempDir under the sticky /tmp is not).
func trustedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "envhooks-fence-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

// The example FENCE_HOOK runs through the fence step with the real runner
// (opened and checked as a configured executable) against a stand-in for
// ipmitool: it powers the right node's BMC off and succeeds only once the
// BMC reports the power off; an unknown node, or one that stays on, stops
// the takeover.
func TestExampleIPMIHook(t *testing.T) {
	dir := trustedDir(t)
	raw, err := os.ReadFile("../../examples/fence/ipmi-fence-hook")
	require.NoError(t, err)
	hook := filepath.Join(dir, "ipmi-fence-hook")
	require.NoError(t, os.WriteFile(hook, raw, 0o755))
	calls := filepath.Join(dir, "calls")
	power := filepath.Join(dir, "power")
	fake := filepath.Join(dir, "ipmitool")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho \"$*\" >> "+calls+"\ncase \"$*\" in\n*'power off') echo off > "+power+"; echo 'Chassis Power Control: Down/Off' ;;\n*'power status') if [ -f "+power+" ] && [ \"$STAY_ON\" != 1 ]; then echo 'Chassis Power is off'; else echo 'Chassis Power is on'; fi ;;\nesac\n"), 0o755))
	conf := filepath.Join(dir, "fence-ipmi.conf")
	require.NoError(t, os.WriteFile(conf, []byte("# NODE BMC USER PWFILE\nnode1 10.0.9.11 fence /etc/bmc1.pw\nnode2 10.0.9.12 fence /etc/bmc2.pw\n"), 0o644))
	t.Setenv("IPMITOOL", fake)
	t.Setenv("FENCE_IPMI_CONF", conf)
	t.Setenv("FENCE_IPMI_WAIT", "2")

	cfg, err := load(t, "FENCE_HOOK="+hook, "FENCE_HOOK_TIMEOUT=10")
	require.NoError(t, err)
	var log strings.Builder
	s, err := NewStep(cfg, nil, run.New(false, nil), logging.NewTo("envctl", &log, false))
	require.NoError(t, err)
	ctx := context.Background()

	how, err := s.Fence(ctx, Request{JName: "web1", Victim: "node2", Generation: 5})
	require.NoError(t, err, log.String())
	assert.Contains(t, how, "FENCE_HOOK fenced node2")
	got, err := os.ReadFile(calls)
	require.NoError(t, err)
	assert.Equal(t, "-I lanplus -H 10.0.9.12 -U fence -f /etc/bmc2.pw chassis power off\n-I lanplus -H 10.0.9.12 -U fence -f /etc/bmc2.pw chassis power status\n", string(got))

	_, err = s.Fence(ctx, Request{JName: "web1", Victim: "node9", Generation: 5})
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.ErrorContains(t, err, "no BMC for node node9")

	require.NoError(t, os.Remove(power))
	t.Setenv("STAY_ON", "1")
	_, err = s.Fence(ctx, Request{JName: "web1", Victim: "node1", Generation: 5})
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.ErrorContains(t, err, "still reports power on")
}
