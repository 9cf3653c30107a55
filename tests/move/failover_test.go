//go:build linux

package move

import (
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/sshnodes"
)

const ttl = 3 * time.Second

// TestFailover kills a node that runs HA environments (its heartbeat
// SIGKILLed, its sshd killed, its link cut): each HA environment runs on
// exactly one survivor, the preferred one where it names one, an
// environment without HA stays; the node comes back, starts nothing again
// (it stops and detaches what it lost), and nothing moves a second time.
func TestFailover(t *testing.T) {
	c := cluster(t, []string{"a", "b", "c"}, func(*sshnodes.Node) string {
		return "LEASE_TTL=3\nHA_DELAY=1\nFAILOVER=1\n"
	})
	a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	for _, n := range c.Nodes {
		n.WriteEnvConfig("web1", "HA=1\nHA_NODES=\"a c b\"\n")
		n.WriteEnvConfig("web2", "HA=1\n")
		n.WriteEnvConfig("web3", "HA=0\n")
	}
	names := []string{"web1", "web2", "web3"}
	for _, j := range names {
		c.Create(a, j)
		ok(t, a.Envctl("jregister", "jname="+j))
		ok(t, a.Envctl("start", "jname="+j))
	}
	beats := map[string]*exec.Cmd{}
	for _, n := range c.Nodes {
		beats[n.Name] = n.Background("heartbeat")
	}
	time.Sleep(ttl)
	for _, j := range names {
		require.Equal(t, "a", c.Owner(j), "nothing fails over while a lives")
	}

	beats["a"].Process.Kill()
	a.KillSSHD()
	a.Cut(true)
	killed := time.Now()
	survivors := []*sshnodes.Node{b, cc}
	runningOn := func(j string) []string {
		var on []string
		for _, n := range survivors {
			if n.Running(j) {
				on = append(on, n.Name)
			}
		}
		return on
	}
	var took time.Duration
	require.Eventually(t, func() bool {
		if len(runningOn("web1")) == 1 && len(runningOn("web2")) == 1 {
			took = time.Since(killed)
			return true
		}
		return false
	}, 60*time.Second, 100*time.Millisecond)
	t.Logf("failover of two HA environments: %s after the node died, %.2f x LEASE_TTL", took.Round(time.Millisecond), took.Seconds()/ttl.Seconds())
	assert.Equal(t, "c", c.Owner("web1"), "the preferred survivor")
	assert.Equal(t, []string{"c"}, runningOn("web1"))
	assert.Contains(t, []string{"b", "c"}, c.Owner("web2"))
	assert.Equal(t, []string{c.Owner("web2")}, runningOn("web2"))
	assert.Equal(t, "a", c.Owner("web3"), "HA=0 stays with its dead owner")
	assert.Empty(t, runningOn("web3"))

	// a comes back: it takes nothing back, and may not start what it lost.
	a.Cut(false)
	a.StartSSHD()
	a.Background("heartbeat")
	time.Sleep(3 * ttl)
	assert.Equal(t, "c", c.Owner("web1"))
	assert.Equal(t, []string{"c"}, runningOn("web1"))
	assert.Equal(t, []string{c.Owner("web2")}, runningOn("web2"))
	r := a.Envctl("start", "jname=web1")
	assert.Equal(t, 77, r.Code, "stderr: %s", r.Stderr)
	// What a still had of them is stopped, detached and forgotten there;
	// what it still owns stays.
	for _, j := range []string{"web1", "web2"} {
		assert.False(t, a.Running(j), "%s stopped on a", j)
		assert.False(t, a.Registered(j), "%s dropped from a's inventory", j)
	}
	settled(t, c, "web1", "c", true)
	settled(t, c, "web2", c.Owner("web2"), true)
	assert.True(t, a.Registered("web3"))
	assert.Len(t, a.Mounts(), 3, "only web3 attached on a")
	for _, j := range []string{"web1", "web2"} {
		failovers := 0
		for _, ev := range history(t, b, j) {
			if ev.Event == "failover" {
				failovers++
				assert.Equal(t, "a", ev.From)
			}
		}
		assert.Equal(t, 1, failovers, "%s failed over exactly once", j)
	}
}
