//go:build linux || freebsd

package migrate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/testenv"
)

func status(t *testing.T, n *node, jname string) map[string]any {
	t.Helper()
	r := n.envctl("--json", "status", "jname="+jname)
	ok(t, r)
	var sts []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &sts), r.Stdout)
	require.Len(t, sts, 1)
	return sts[0]
}

func TestMigrationAToBAndBack(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", ""), c.node("b", "")
	c.create(a, "web1", jailDescriptor)

	ok(t, a.envctl("jregister", "jname=web1"))
	assert.ElementsMatch(t, []string{a.dirs("web1")["data"], a.dirs("web1")["system"], a.dirs("web1")["fstab"]}, a.mounts())
	assert.Equal(t, "registered-here", status(t, a, "web1")["state"])
	ok(t, a.in(nil, "sh", "-c", "echo written-on-a > "+a.dirs("web1")["data"]+"/new.txt"))
	assert.Empty(t, b.mounts(), "b sees none of a's mounts")

	ok(t, a.envctl("junregister", "web1"))
	assert.Empty(t, a.mounts())
	assert.Equal(t, "free", status(t, a, "web1")["state"])

	ok(t, b.envctl("jregister", "web1"))
	assert.Equal(t, "written-on-a\n", b.read(b.dirs("web1")["data"]+"/new.txt"), "the data moved without a copy")
	assert.Equal(t, "the data of web1\n", b.read(b.dirs("web1")["data"]+"/data.txt"))
	st := status(t, b, "web1")
	assert.Equal(t, "registered-here", st["state"])
	assert.Equal(t, float64(2), st["generation"], "a new owner, a new generation")
	assert.Equal(t, "owned-elsewhere", status(t, a, "web1")["state"])

	// The inventory record on b holds b's workdir, not the placeholder.
	raw, err := os.ReadFile(filepath.Join(b.home, "inventory", "web1.json"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), b.workdir+"/jails-data/web1-data")
	assert.NotContains(t, string(raw), "CBSDROOT")

	ok(t, b.envctl("junregister", "web1"))
	ok(t, a.envctl("jregister", "web1"))
	assert.Equal(t, "written-on-a\n", a.read(a.dirs("web1")["data"]+"/new.txt"))
	assert.Equal(t, float64(3), status(t, a, "web1")["generation"])
	ok(t, a.envctl("junregister", "web1"))
}

func TestRegisterRefusedWhileAnotherNodeOwns(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", ""), c.node("b", "")
	c.create(a, "web1", jailDescriptor)
	ok(t, a.envctl("jregister", "web1"))

	r := b.envctl("jregister", "web1")
	assert.Equal(t, 77, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "owned by node a since")
	assert.Empty(t, b.mounts())
	_, err := os.Stat(filepath.Join(b.home, "inventory", "web1.json"))
	assert.True(t, os.IsNotExist(err))

	// A manual start on the wrong node fails before anything is mounted.
	d := b.dirs("web1")
	r = b.in(nil, testenv.Bin(t, "mnt-start"), "-d", d["data"], "-f", d["fstab"], "-j", "web1", "-r", d["rcconf"], "-s", d["system"])
	assert.Equal(t, 77, r.Code, r.Stderr)
	assert.Empty(t, b.mounts())
	// On the owner it is a no-op that succeeds.
	d = a.dirs("web1")
	ok(t, a.in(nil, testenv.Bin(t, "mnt-start"), "-d", d["data"], "-f", d["fstab"], "-j", "web1", "-r", d["rcconf"], "-s", d["system"]))

	// Unregister on the wrong node is refused too.
	r = b.envctl("junregister", "web1")
	assert.Equal(t, 77, r.Code)
	assert.Len(t, a.mounts(), 3)

	// Takeover needs the right former owner.
	r = b.envctl("jregister", "web1", "--force", "--from", "c")
	assert.Equal(t, 77, r.Code, r.Stderr)
	r = b.envctl("jregister", "web1", "--force")
	assert.Equal(t, 64, r.Code, r.Stderr)
}

func TestConcurrentRegisterHasOneWinner(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", ""), c.node("b", "")
	c.create(a, "web1", jailDescriptor)
	ok(t, a.envctl("jregister", "web1"))
	ok(t, a.envctl("junregister", "web1")) // the descriptor now lives on the shared storage
	nodes := []*node{a, b}
	for round := 0; round < 15; round++ {
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Add(1)
			go func(i int, n *node) {
				defer wg.Done()
				codes[i] = n.envctl("jregister", "web1").Code
			}(i, n)
		}
		wg.Wait()
		var winner, loser *node
		switch {
		case codes[0] == 0 && codes[1] == 77:
			winner, loser = a, b
		case codes[1] == 0 && codes[0] == 77:
			winner, loser = b, a
		default:
			t.Fatalf("round %d: exit codes %v, want exactly one 0 and one 77", round, codes)
		}
		assert.Len(t, winner.mounts(), 3, "round %d", round)
		assert.Empty(t, loser.mounts(), "round %d: the loser changed nothing", round)
		_, err := os.Stat(filepath.Join(loser.home, "inventory", "web1.json"))
		assert.True(t, os.IsNotExist(err))
		ok(t, winner.envctl("junregister", "web1"))
	}
}

func TestUnregisterRefusedWhileRunning(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", "")
	c.create(a, "web1", jailDescriptor)
	ok(t, a.envctl("jregister", "web1"))
	a.setRunning("web1", true)
	r := a.envctl("junregister", "web1")
	assert.Equal(t, 75, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "web1 is running")
	assert.Len(t, a.mounts(), 3, "nothing was detached")
	assert.Equal(t, "registered-here", status(t, a, "web1")["state"])
	a.setRunning("web1", false)
	ok(t, a.envctl("junregister", "web1"))
}

// A kill -9 after every step of both flows, then the same command again:
// it converges, nothing is lost, nothing is stacked, and status names the
// half-done state in between.
func TestCrashAfterEveryStepConverges(t *testing.T) {
	for _, step := range []string{"register:lease", "register:attach", "register:descriptor", "register:record"} {
		t.Run(step, func(t *testing.T) {
			c := newCluster(t)
			a := c.node("a", "")
			c.create(a, "web1", jailDescriptor)
			r := a.envctlCrash(step, "jregister", "web1")
			require.NotEqual(t, 0, r.Code, "the crash point was reached")
			st := status(t, a, "web1")
			if step != "register:record" {
				assert.Equal(t, "interrupted", st["state"], "status names the half-done state")
				assert.Contains(t, st["advice"], "again")
			}
			ok(t, a.envctl("jregister", "web1"))
			assert.Equal(t, "registered-here", status(t, a, "web1")["state"])
			assert.Len(t, a.mounts(), 3, "no stacked mount")
			assert.Equal(t, "the data of web1\n", a.read(a.dirs("web1")["data"]+"/data.txt"))
		})
	}
	for _, step := range []string{"unregister:descriptor", "unregister:detach", "unregister:record", "unregister:lease"} {
		t.Run(step, func(t *testing.T) {
			c := newCluster(t)
			a, b := c.node("a", ""), c.node("b", "")
			c.create(a, "web1", jailDescriptor)
			ok(t, a.envctl("jregister", "web1"))
			r := a.envctlCrash(step, "junregister", "web1")
			require.NotEqual(t, 0, r.Code)
			if step != "unregister:lease" {
				assert.NotEqual(t, "free", status(t, a, "web1")["state"])
				// Half-unregistered, a still owns it: b cannot take it.
				assert.Equal(t, 77, b.envctl("jregister", "web1").Code)
			}
			ok(t, a.envctl("junregister", "web1"))
			assert.Equal(t, "free", status(t, a, "web1")["state"])
			assert.Empty(t, a.mounts())
			ok(t, b.envctl("jregister", "web1"))
			assert.Equal(t, "the data of web1\n", b.read(b.dirs("web1")["data"]+"/data.txt"))
			assert.Len(t, b.mounts(), 3)
		})
	}
}

// Files in CBSD's format with the CBSDROOT placeholder come out of a
// register/unregister round trip byte for byte.
func TestDescriptorRoundTrip(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", ""), c.node("b", "")
	for _, tc := range []struct{ jname, descr, reg, unreg string }{
		{"web1", jailDescriptor, "jregister", "junregister"},
		{"vm1", vmDescriptor, "bregister", "bunregister"},
	} {
		c.create(a, tc.jname, tc.descr)
		want := fmt.Sprintf(tc.descr, tc.jname)
		ok(t, a.envctl(tc.reg, tc.jname))
		ok(t, a.envctl(tc.unreg, tc.jname))
		got, err := os.ReadFile(filepath.Join(c.dfs, "system", tc.jname, "rc.conf_"+tc.jname))
		require.NoError(t, err)
		assert.Equal(t, want, string(got), tc.jname)
		ok(t, b.envctl(tc.reg, tc.jname))
		ok(t, b.envctl(tc.unreg, tc.jname))
		got, _ = os.ReadFile(filepath.Join(c.dfs, "system", tc.jname, "rc.conf_"+tc.jname))
		assert.Equal(t, want, string(got), tc.jname+" after a second node")
	}
	// A jail descriptor is not a VM.
	c.create(a, "web2", jailDescriptor)
	r := a.envctl("bregister", "web2")
	assert.Equal(t, 65, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "use jregister")
	assert.Empty(t, a.mounts(), "the failed register undid its mounts")
	r = a.envctl("lease", "show", "web2")
	ok(t, r)
	assert.Contains(t, r.Stdout, "not owned", "and its lease")
}

func TestBadDescriptorsChangeNothing(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", "")
	// CBSD writes values raw (jailctl/jmkrcconf), so only what cannot be
	// a value is refused: a double quote inside, a line break, no quotes.
	cases := map[string]struct{ content, mention string }{
		"inner quote": {"jname=\"web1\";\npath=\"a\"b\";\n", "rc.conf_web1:2"},
		"line break":  {"jname=\"web1\";\npath=\"a\nb\";\n", "rc.conf_web1:2"},
		"other":       {"jname=\"web9\";\n", "describes web9, not web1"},
		"garbage":     {"jname=\"web1\";\nthis is not a descriptor\n", "rc.conf_web1:2"},
	}
	for name, tc := range cases {
		c.create(a, "web1", jailDescriptor)
		testenv.WriteFile(t, filepath.Join(a.workdir, "jails-rcconf", "rc.conf_web1"), tc.content, 0o644)
		r := a.envctl("jregister", "web1")
		assert.Equal(t, 65, r.Code, "%s: %s", name, r.Stderr)
		assert.Contains(t, r.Stderr, tc.mention, name)
		assert.Empty(t, a.mounts(), name)
		assert.Equal(t, "free", status(t, a, "web1")["state"], name)
	}
	r := a.envctl("jregister", "jname=nomatch*")
	assert.Equal(t, 65, r.Code)
	assert.Contains(t, r.Stderr, "no environment matches")
	r = a.envctl("jregister", "jname=../etc")
	assert.Equal(t, 65, r.Code)
	r = a.envctl("jregister", "jname=web1", "color=red")
	assert.Equal(t, 64, r.Code)
	r = a.envctl("frobnicate")
	assert.Equal(t, 64, r.Code)
}

// A workdir with regex characters is replaced literally.
func TestWorkdirWithRegexCharacters(t *testing.T) {
	c := newCluster(t)
	a := c.node("a.b", "WORKDIR="+filepath.Join(c.root, "a.b", "j+bs[1]")+"\n")
	a.workdir = filepath.Join(c.root, "a.b", "j+bs[1]")
	require.NoError(t, os.MkdirAll(filepath.Join(a.workdir, "jails-rcconf"), 0o755))
	c.create(a, "web1", jailDescriptor)
	ok(t, a.envctl("jregister", "web1"))
	raw, err := os.ReadFile(filepath.Join(a.home, "inventory", "web1.json"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), a.workdir+"/jails-data/web1-data")
	ok(t, a.envctl("junregister", "web1"))
	got, _ := os.ReadFile(filepath.Join(c.dfs, "system", "web1", "rc.conf_web1"))
	assert.Equal(t, fmt.Sprintf(jailDescriptor, "web1"), string(got))
}

func TestWildcards(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", ""), c.node("b", "")
	for i := 1; i <= 5; i++ {
		c.create(a, fmt.Sprintf("web%d", i), jailDescriptor)
	}
	c.create(a, "db1", jailDescriptor)
	r := a.envctl("jregister", "jname=web*")
	ok(t, r)
	assert.Contains(t, r.Stderr, "5 environments: 5 done, 0 failed")
	assert.Len(t, a.mounts(), 15)
	r = a.envctl("list", "--json")
	ok(t, r)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &list))
	assert.Len(t, list, 5)

	// web3 runs: the batch goes on past it, says so, and fails overall.
	a.setRunning("web3", true)
	r = a.envctl("junregister", "jname=web[1-5]")
	assert.Equal(t, 75, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "5 environments: 4 done, 1 failed")
	assert.Contains(t, r.Stderr, "web3")
	assert.Len(t, a.mounts(), 3)

	r = b.envctl("jregister", "jname=web?")
	assert.Equal(t, 77, r.Code, "web3 is still a's: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "5 environments: 4 done, 1 failed")
	assert.Len(t, b.mounts(), 12)
	assert.True(t, strings.Contains(a.envctl("list").Stdout, "web3"))
}
