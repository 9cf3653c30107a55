//go:build linux

// Package move tests envctl move, recover, drain, restore and history
// between nodes that are network and mount namespaces of their own, each
// with its own sshd (tests/sshnodes), with the mover killed, sshd killed
// and the link cut at every step of the journal.
package move

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/sshnodes"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

// The nodes' veth pairs and addresses live in a network namespace of the
// test's own, never in the machine's.
func TestMain(m *testing.M) {
	testnet.Isolate()
	testenv.Main(m)
}

func cluster(t *testing.T, names []string, extra func(n *sshnodes.Node) string) *sshnodes.Cluster {
	testenv.Require(t, "ip", "nsenter", "unshare", "sshd", "ssh", "ssh-keygen")
	return sshnodes.New(t, t.TempDir(), testenv.Bin(t, "envctl"), names, extra)
}

func ok(t *testing.T, r sshnodes.Result) {
	t.Helper()
	require.Equal(t, 0, r.Code, "stdout: %s\nstderr: %s", r.Stdout, r.Stderr)
}

type event struct {
	Event, Node, From, By, Note string
}

func history(t *testing.T, n *sshnodes.Node, jname string) []event {
	t.Helper()
	r := n.Envctl("--json", "history", "jname="+jname)
	ok(t, r)
	var evs []event
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &evs))
	return evs
}

// settled checks the invariants after any move, finished or undone:
// exactly one owner, registered, attached and running there only (running
// iff it ran before), and no open journal.
func settled(t *testing.T, c *sshnodes.Cluster, jname, want string, running bool) {
	t.Helper()
	assert.Equal(t, want, c.Owner(jname), "owner of %s", jname)
	assert.False(t, c.JournalOpen(jname), "the journal of %s is closed", jname)
	for _, n := range c.Nodes {
		owns := n.Name == want
		assert.Equal(t, owns, n.Registered(jname), "%s registered on %s", jname, n.Name)
		var mine []string
		for _, m := range n.Mounts() {
			if strings.Contains(m, "/"+jname) {
				mine = append(mine, m)
			}
		}
		if owns {
			assert.Len(t, mine, 3, "%s attached on its owner %s (data, system, fstab)", jname, n.Name)
		} else {
			assert.Empty(t, mine, "%s attached on %s, which does not own it", jname, n.Name)
		}
		assert.Equal(t, owns && running, n.Running(jname), "%s running on %s", jname, n.Name)
	}
}

func TestMoveThereAndBack(t *testing.T) {
	c := cluster(t, []string{"a", "b"}, nil)
	a, b := c.Nodes[0], c.Nodes[1]
	c.Create(a, "web1")
	ok(t, a.Envctl("jregister", "jname=web1"))
	ok(t, a.Envctl("start", "jname=web1"))
	settled(t, c, "web1", "a", true)

	ok(t, a.Envctl("move", "jname=web1", "to=b"))
	settled(t, c, "web1", "b", true)
	assert.Equal(t, "the data of web1\n", b.In(nil, "cat", filepath.Join(b.Workdir, "jails-data", "web1-data", "data.txt")).Stdout, "the data is on b, not copied")
	r := a.Envctl("move", "jname=web1", "to=b")
	assert.Equal(t, 77, r.Code, "a no longer owns it: %s", r.Stderr)

	ok(t, b.Envctl("move", "jname=web1", "to=a"))
	settled(t, c, "web1", "a", true)
	var events []string
	for _, ev := range history(t, b, "web1") {
		events = append(events, ev.Event+":"+ev.Node+"<"+ev.From)
	}
	assert.Equal(t, []string{"register:a<", "unregister:<a", "register:b<", "move:b<a", "unregister:<b", "register:a<", "move:a<b"}, events)
	r = a.Envctl("history", "jname=web1")
	ok(t, r)
	assert.Contains(t, r.Stdout, "move")
}

func TestFailingStartRollsBack(t *testing.T) {
	c := cluster(t, []string{"a", "b"}, func(n *sshnodes.Node) string {
		if n.Name == "b" {
			return "START_COMMAND=/bin/false\n"
		}
		return ""
	})
	a := c.Nodes[0]
	c.Create(a, "web1")
	ok(t, a.Envctl("jregister", "jname=web1"))
	ok(t, a.Envctl("start", "jname=web1"))
	r := a.Envctl("move", "jname=web1", "to=b")
	assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "rolled back")
	settled(t, c, "web1", "a", true)
	evs := history(t, a, "web1")
	require.NotEmpty(t, evs)
	last := evs[len(evs)-1]
	assert.Equal(t, "rollback", last.Event)
	assert.Equal(t, "a", last.Node)
	assert.Contains(t, last.Note, "false")
}

func TestPreflightRefusesWithoutChange(t *testing.T) {
	c := cluster(t, []string{"a", "b"}, nil)
	a, b := c.Nodes[0], c.Nodes[1]
	c.Create(a, "web1")
	ok(t, a.Envctl("jregister", "jname=web1"))
	ok(t, a.Envctl("start", "jname=web1"))
	// b has a record of its own for web1: a conflicting environment.
	c.Create(b, "web1")
	ok(t, b.In(nil, "mkdir", "-p", filepath.Join(b.Home, "inventory")))
	ok(t, b.In(nil, "cp", filepath.Join(a.Home, "inventory", "web1.json"), filepath.Join(b.Home, "inventory", "web1.json")))
	r := a.Envctl("move", "jname=web1", "to=b")
	assert.Equal(t, 73, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "nothing was changed")
	assert.Equal(t, "a", c.Owner("web1"))
	assert.True(t, a.Running("web1"))
	assert.False(t, c.JournalOpen("web1"))
	ok(t, b.In(nil, "rm", filepath.Join(b.Home, "inventory", "web1.json")))
	// b unreachable: 69 before anything changes.
	b.KillSSHD()
	r = a.Envctl("move", "jname=web1", "to=b")
	assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "cannot reach node b over ssh")
	settled(t, c, "web1", "a", true)
}

// steps are the journal's steps, and where recover takes a move cut after
// each: forward once the target registered it, back before.
var steps = []struct{ name, after string }{
	{"begun", "a"}, {"stopped", "a"}, {"released", "a"}, {"registered", "b"}, {"started", "b"},
}

// TestCrashAtEveryStep kills the mover (SIGKILL) after every journal step,
// then recovers from the mover's node and from the target, and also with
// the target's sshd killed or its link cut while recovering.
func TestCrashAtEveryStep(t *testing.T) {
	c := cluster(t, []string{"a", "b"}, nil)
	a, b := c.Nodes[0], c.Nodes[1]
	for _, fault := range []string{"none", "sshd", "link"} {
		for _, from := range []*sshnodes.Node{a, b} {
			for _, s := range steps {
				jname := fmt.Sprintf("%s-%s-%s", fault, from.Name, s.name)
				t.Run(jname, func(t *testing.T) {
					c.Create(a, jname)
					ok(t, a.Envctl("jregister", "jname="+jname))
					ok(t, a.Envctl("start", "jname="+jname))
					r := a.EnvctlCrash("move:"+s.name, "move", "jname="+jname, "to=b")
					require.Equal(t, -1, r.Code, "killed after %s: %s", s.name, r.Stderr)
					require.True(t, c.JournalOpen(jname))
					// Whatever the fault, never two owners.
					assert.Contains(t, []string{"a", "b", ""}, c.Owner(jname))
					switch fault {
					case "sshd":
						b.KillSSHD()
					case "link":
						b.Cut(true)
					}
					if fault != "none" {
						// With b out of reach, recover either finishes
						// without b or fails and keeps the journal.
						r = a.Envctl("recover", "jname="+jname)
						if r.Code != 0 {
							assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
							assert.True(t, c.JournalOpen(jname), "a failed recover keeps the journal")
						}
						if fault == "sshd" {
							b.StartSSHD()
						} else {
							b.Cut(false)
						}
					}
					ok(t, from.Envctl("recover", "jname="+jname))
					settled(t, c, jname, s.after, true)
					ok(t, from.Envctl("recover", "jname="+jname)) // nothing left: success
					settled(t, c, jname, s.after, true)
				})
			}
		}
	}
}

func TestDrainAndRestore(t *testing.T) {
	const count = 100
	c := cluster(t, []string{"a", "b", "c"}, nil)
	a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	for i := range count {
		c.Create(a, fmt.Sprintf("env%03d", i))
	}
	ok(t, a.Envctl("jregister", "jname=env*"))
	for i := 0; i < count; i += 10 {
		ok(t, a.Envctl("start", fmt.Sprintf("jname=env%03d", i)))
	}
	start := time.Now()
	ok(t, a.Envctl("drain", "to=b,c"))
	t.Logf("drain of %d environments over two targets: %s", count, time.Since(start))
	perNode := map[string]int{}
	for i := range count {
		jname := fmt.Sprintf("env%03d", i)
		perNode[c.Owner(jname)]++
		assert.False(t, c.JournalOpen(jname))
		assert.False(t, a.Registered(jname))
		if i%10 == 0 {
			owner := b
			if c.Owner(jname) == "c" {
				owner = cc
			}
			assert.True(t, owner.Running(jname), "%s runs on its new owner", jname)
		}
	}
	assert.Equal(t, map[string]int{"b": count / 2, "c": count / 2}, perNode)
	assert.Empty(t, a.Mounts())
	r := a.Envctl("list")
	ok(t, r)
	assert.Contains(t, r.Stdout, "a is in maintenance")
	// Nothing new is acquired while the mark lasts.
	c.Create(a, "newone")
	r = a.Envctl("jregister", "jname=newone")
	assert.Equal(t, 75, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "maintenance")
	assert.Equal(t, "", c.Owner("newone"))
	// Nor may anyone move something to it.
	r = b.Envctl("move", "jname=env000", "to=a")
	assert.Equal(t, 75, r.Code, "stderr: %s", r.Stderr)

	start = time.Now()
	ok(t, a.Envctl("restore"))
	t.Logf("restore of %d environments: %s", count, time.Since(start))
	for i := range count {
		jname := fmt.Sprintf("env%03d", i)
		settled(t, c, jname, "a", i%10 == 0)
	}
	r = a.Envctl("list")
	ok(t, r)
	assert.NotContains(t, r.Stdout, "maintenance")
	ok(t, a.Envctl("jregister", "jname=newone"))
}
