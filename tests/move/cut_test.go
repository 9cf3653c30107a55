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

// TestCutWhileMoving cuts the target's link while envctl move itself runs,
// at each step after the preflight, through what a user configures
// anyway: a's STOP_COMMAND (after it stopped the environment), a's
// SSH_COMMAND (a wrapper around ssh that cuts the link as the mover is
// about to reach b once the journal reached a step: after junregister
// here, after jregister there) and b's START_COMMAND (after it started
// the environment there, before the mover hears back and commits).
//
// A move that can roll back does (registered and running on a, 69, a
// rollback in the history); one that cannot, because b has it registered
// and b is out of reach, says so in one line and leaves the journal open,
// never with two owners. With the link back, recover from either node
// leaves exactly one owner, one attachment and no journal.
func TestCutWhileMoving(t *testing.T) {
	const script = "/run/envhooks-test/"
	c := cluster(t, []string{"a", "b"}, func(n *sshnodes.Node) string {
		if n.Name == "a" {
			return "STOP_COMMAND=\"" + script + "stop %j\"\nSSH_COMMAND=" + script + "ssh\nSSH_CONNECT_TIMEOUT=1\n"
		}
		return "START_COMMAND=\"" + script + "start %j\"\n"
	})
	a, b := c.Nodes[0], c.Nodes[1]
	// arm names the environment and the point to cut at, once.
	arm := filepath.Join(c.Root, "arm")
	journal := filepath.Join(c.DFS, "leases", ".records", "journal")
	cut := b.CutCommand()
	a.Install("stop", fmt.Sprintf(`#!/bin/sh
rm -f %s/running-"$1"
if [ "$(cat %s 2>/dev/null)" = "$1 stopped" ]; then rm -f %s; %s; fi
`, a.Home, arm, arm, cut))
	a.Install("ssh", fmt.Sprintf(`#!/bin/sh
if read j s < %s 2>/dev/null && grep -qs "\"step\": \"$s\"" %s/"$j"; then rm -f %s; %s; fi
exec /usr/bin/ssh "$@"
`, arm, journal, arm, cut))
	b.Install("start", fmt.Sprintf(`#!/bin/sh
touch %s/running-"$1"
if [ "$(cat %s 2>/dev/null)" = "$1 started" ]; then rm -f %s; %s; fi
`, b.Home, arm, arm, cut))

	for _, point := range []struct {
		step     string
		rollback bool // the mover can bring it back by itself
	}{{"stopped", true}, {"released", true}, {"registered", false}, {"started", false}} {
		for _, from := range []*sshnodes.Node{a, b} {
			jname := fmt.Sprintf("cut-%s-%s", point.step, from.Name)
			t.Run(jname, func(t *testing.T) {
				c.Create(a, jname)
				ok(t, a.Envctl("jregister", "jname="+jname))
				ok(t, a.Envctl("start", "jname="+jname))
				require.NoError(t, os.WriteFile(arm, []byte(jname+" "+point.step+"\n"), 0o644))
				r := a.Envctl("move", "jname="+jname, "to=b")
				defer b.Cut(false)
				assert.NoFileExists(t, arm, "the link was cut at %s", point.step)
				assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
				lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
				last := lines[len(lines)-1]
				assert.False(t, a.Running(jname) && b.Running(jname), "never running twice")
				if point.rollback {
					assert.Contains(t, last, "rolled back", "stderr: %s", r.Stderr)
					settled(t, c, jname, "a", true)
					evs := history(t, a, jname)
					require.NotEmpty(t, evs)
					assert.Equal(t, "rollback", evs[len(evs)-1].Event)
				} else {
					assert.Contains(t, last, "the journal stays open", "stderr: %s", r.Stderr)
					assert.Contains(t, last, "envctl recover jname="+jname)
					if point.step == "started" {
						// ssh's keepalives (it exits 255), not SSH_TIMEOUT
						// (60s here), notice the link cut while the
						// command ran.
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
				b.Cut(false)
				ok(t, from.Envctl("recover", "jname="+jname))
				settled(t, c, jname, "a", true)
				ok(t, from.Envctl("recover", "jname="+jname))
				settled(t, c, jname, "a", true)
			})
		}
	}
}
