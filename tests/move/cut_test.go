//go:build linux

package move

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/sshnodes"
)

// TestCutWhileMoving cuts the target's link, or kills its sshd, while
// envctl move itself runs, at each step after the preflight, through what
// a user configures anyway: a's STOP_COMMAND (after it stopped the
// environment), a's SSH_COMMAND (a wrapper around ssh that strikes as the
// mover is about to reach b once the journal reached a step: after
// junregister here, after jregister there) and b's START_COMMAND (after it
// started the environment there, before the mover hears back and commits).
//
// A move that can roll back does (registered and running on a, 69, a
// rollback in the history); one that cannot, because b has it registered
// and b is out of reach, says so in one line and leaves the journal open,
// never with two owners. With the link or sshd back, recover from either
// node leaves exactly one owner, one attachment and no journal. An sshd
// killed while START_COMMAND runs there leaves the session it serves: that
// move finishes.
func TestCutWhileMoving(t *testing.T) {
	const script = "/run/envhooks-test/"
	c := cluster(t, []string{"a", "b"}, func(n *sshnodes.Node) string {
		if n.Name == "a" {
			return "STOP_COMMAND=\"" + script + "stop %j\"\nSSH_COMMAND=" + script + "ssh\nSSH_CONNECT_TIMEOUT=1\n"
		}
		return "START_COMMAND=\"" + script + "start %j\"\n"
	})
	a, b := c.Nodes[0], c.Nodes[1]
	// arm names the environment, the point to strike at (once) and the
	// fault: link (b's link goes down) or sshd (b's sshd is SIGKILLed).
	arm := filepath.Join(c.Root, "arm")
	sshdPid := filepath.Join(c.Root, "sshd.pid")
	journal := filepath.Join(c.DFS, "leases", ".records", "journal")
	for _, n := range c.Nodes {
		n.Install("fault", fmt.Sprintf(`#!/bin/sh
case "$1" in
link) %s ;;
sshd) kill -9 "$(cat %s)" ;;
esac
rm -f %s
`, b.CutCommand(), sshdPid, arm))
	}
	a.Install("stop", fmt.Sprintf(`#!/bin/sh
rm -f %s/running-"$1"
if read j s f < %s 2>/dev/null && [ "$j $s" = "$1 stopped" ]; then %sfault "$f"; fi
`, a.Home, arm, script))
	a.Install("ssh", fmt.Sprintf(`#!/bin/sh
if read j s f < %s 2>/dev/null && grep -qs "\"step\": \"$s\"" %s/"$j"; then %sfault "$f"; fi
exec /usr/bin/ssh "$@"
`, arm, journal, script))
	b.Install("start", fmt.Sprintf(`#!/bin/sh
touch %s/running-"$1"
if read j s f < %s 2>/dev/null && [ "$j $s" = "$1 started" ]; then %sfault "$f"; fi
`, b.Home, arm, script))

	for _, fault := range []string{"link", "sshd"} {
		for _, point := range []struct {
			step     string
			rollback bool // the mover can bring it back by itself
		}{{"stopped", true}, {"released", true}, {"registered", false}, {"started", false}} {
			for _, from := range []*sshnodes.Node{a, b} {
				jname := fmt.Sprintf("%s-%s-%s", fault, point.step, from.Name)
				t.Run(jname, func(t *testing.T) {
					cutWhileMoving(t, c, jname, fault, point.step, point.rollback, from, arm, sshdPid)
				})
			}
		}
	}
}

// cutWhileMoving moves jname from a to b with the fault armed at step,
// checks what the mover did, then recovers from the node from.
func cutWhileMoving(t *testing.T, c *sshnodes.Cluster, jname, fault, step string, rollback bool, from *sshnodes.Node, arm, sshdPid string) {
	a, b := c.Nodes[0], c.Nodes[1]
	c.Create(a, jname)
	ok(t, a.Envctl("jregister", "jname="+jname))
	ok(t, a.Envctl("start", "jname="+jname))
	require.NoError(t, os.WriteFile(sshdPid, []byte(fmt.Sprintln(b.SSHDPid())), 0o644))
	require.NoError(t, os.WriteFile(arm, []byte(jname+" "+step+" "+fault+"\n"), 0o644))
	r := a.Envctl("move", "jname="+jname, "to=b")
	_, err := os.Stat(arm)
	struck := os.IsNotExist(err)
	assert.True(t, struck, "the fault struck at %s", step)
	restore := func() {
		switch {
		case !struck:
		case fault == "link":
			b.Cut(false)
		default:
			b.StartSSHD()
		}
		struck = false
	}
	defer restore()
	assert.False(t, a.Running(jname) && b.Running(jname), "never running twice")
	if fault == "sshd" && step == "started" {
		// The session that runs START_COMMAND outlives its sshd.
		assert.Equal(t, 0, r.Code, "stderr: %s", r.Stderr)
		restore()
		settled(t, c, jname, "b", true)
		ok(t, from.Envctl("recover", "jname="+jname))
		settled(t, c, jname, "b", true)
		return
	}
	assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	last := lines[len(lines)-1]
	if rollback {
		assert.Contains(t, last, "rolled back", "stderr: %s", r.Stderr)
		settled(t, c, jname, "a", true)
		evs := history(t, a, jname)
		require.NotEmpty(t, evs)
		assert.Equal(t, "rollback", evs[len(evs)-1].Event)
	} else {
		assert.Contains(t, last, "the journal stays open, owned by b;", "stderr: %s", r.Stderr)
		assert.Contains(t, last, "envctl recover jname="+jname)
		if step == "started" {
			// ssh's keepalives (it exits 255), not SSH_TIMEOUT (60s
			// here), notice the link cut while the command ran.
			assert.Contains(t, last, "failed (cannot reach node b over ssh: /run/envhooks-test/ssh exited 255")
			assert.NotContains(t, last, "SSH_TIMEOUT")
		}
		assert.True(t, c.JournalOpen(jname))
		assert.Equal(t, "b", c.Owner(jname), "b has it registered and is out of reach")
		assert.False(t, a.Registered(jname))
		assert.False(t, a.Running(jname), "a does not run what b owns")
		// Out of reach, recover changes nothing and says why.
		rr := a.Envctl("recover", "jname="+jname)
		assert.Equal(t, 69, rr.Code, "stderr: %s", rr.Stderr)
		assert.True(t, c.JournalOpen(jname))
		assert.Equal(t, "b", c.Owner(jname))
	}
	restore()
	ok(t, from.Envctl("recover", "jname="+jname))
	settled(t, c, jname, "a", true)
	ok(t, from.Envctl("recover", "jname="+jname))
	settled(t, c, jname, "a", true)
}
