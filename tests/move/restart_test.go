//go:build linux

package move

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/sshnodes"
)

// TestRestartThenRelocate kills an HA environment's process on its live
// owner (its running file goes, as a crashed jail's processes would):
// the owner's heartbeat restarts it in place; killed again beyond
// HA_MAX_RESTART, the owner gives it up and it runs on exactly one other
// node, never on two at once. A second one whose START_COMMAND fails on
// its owner once it died is tried HA_MAX_RESTART times, no more, and then
// runs elsewhere.
func TestRestartThenRelocate(t *testing.T) {
	const start = "/run/envhooks-test/start"
	c := cluster(t, []string{"a", "b", "c"}, func(n *sshnodes.Node) string {
		more := ""
		if n.Name == "a" {
			more = "START_COMMAND=\"" + start + " %j\"\n"
		}
		return "LEASE_TTL=3\nHA_DELAY=1\nFAILOVER=1\n" + more
	})
	a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	// a's START_COMMAND counts its runs, and fails while broken-<jname>
	// exists.
	a.Install("start", fmt.Sprintf(`#!/bin/sh
echo >> %[1]s/starts-"$1"
[ -e %[1]s/broken-"$1" ] && exit 1
touch %[1]s/running-"$1"
`, a.Home))
	for _, n := range c.Nodes {
		n.WriteEnvConfig("web1", "HA=1\nHA_MAX_RESTART=1\n")
		n.WriteEnvConfig("web2", "HA=1\nHA_MAX_RESTART=2\n")
	}
	for _, j := range []string{"web1", "web2"} {
		c.Create(a, j)
		ok(t, a.Envctl("jregister", "jname="+j))
		ok(t, a.Envctl("start", "jname="+j))
	}
	for _, n := range c.Nodes {
		n.Background("heartbeat")
	}
	runningOn := func() []string {
		var on []string
		for _, n := range c.Nodes {
			if n.Running("web1") {
				on = append(on, n.Name)
			}
		}
		return on
	}
	// Never two, at any moment the test looks.
	var twice []string
	watch := func(until func() bool) {
		t.Helper()
		require.Eventually(t, func() bool {
			if on := runningOn(); len(on) > 1 && twice == nil {
				twice = on
			}
			return until()
		}, 30*time.Second, 50*time.Millisecond)
		require.Nil(t, twice, "web1 ran on two nodes at once")
	}
	time.Sleep(ttl)
	assert.Equal(t, []string{"a"}, runningOn(), "nothing restarts or moves while it runs")

	a.SetRunning("web1", false)
	killed := time.Now()
	watch(func() bool { return a.Running("web1") })
	t.Logf("restarted in place %s after it died (LEASE_TTL %s)", time.Since(killed).Round(time.Millisecond), ttl)
	assert.Equal(t, "a", c.Owner("web1"))
	var restarts []event
	for _, ev := range history(t, a, "web1") {
		if ev.Event == "restart" {
			restarts = append(restarts, ev)
		}
	}
	require.Len(t, restarts, 1)
	assert.Equal(t, "a", restarts[0].Node)

	a.SetRunning("web1", false)
	killed = time.Now()
	watch(func() bool { return b.Running("web1") || cc.Running("web1") })
	t.Logf("relocated %s after it died again", time.Since(killed).Round(time.Millisecond))
	owner := c.Owner("web1")
	assert.Contains(t, []string{"b", "c"}, owner)
	// It stays there: a does not take it back, nobody starts it twice.
	deadline := time.Now().Add(2 * ttl)
	watch(func() bool { return time.Now().After(deadline) })
	assert.Equal(t, []string{owner}, runningOn())
	settled(t, c, "web1", owner, true)
	var seq []string
	for _, ev := range history(t, b, "web1") {
		seq = append(seq, ev.Event+":"+ev.Node+"<"+ev.From)
	}
	assert.Equal(t, []string{"register:a<", "restart:a<a", "unregister:<a", "relocate:<a", "register:" + owner + "<", "failover:" + owner + "<a"}, seq)

	// web2 dies and its START_COMMAND fails from then on: two restarts
	// are tried (HA_MAX_RESTART=2), no more, then it runs elsewhere.
	require.NoError(t, os.WriteFile(filepath.Join(a.Home, "broken-web2"), nil, 0o644))
	a.SetRunning("web2", false)
	watch2 := func() bool { return b.Running("web2") || cc.Running("web2") }
	require.Eventually(t, watch2, 30*time.Second, 50*time.Millisecond)
	time.Sleep(ttl)
	starts, err := os.ReadFile(filepath.Join(a.Home, "starts-web2"))
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(string(starts), "\n"), "one start, two restarts that failed")
	owner = c.Owner("web2")
	settled(t, c, "web2", owner, true)
	seq = nil
	for _, ev := range history(t, b, "web2") {
		seq = append(seq, ev.Event+":"+ev.Node+"<"+ev.From)
	}
	assert.Equal(t, []string{"register:a<", "restart:a<a", "restart:a<a", "unregister:<a", "relocate:<a", "register:" + owner + "<", "failover:" + owner + "<a"}, seq)
}
