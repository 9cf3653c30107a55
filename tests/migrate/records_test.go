//go:build linux || freebsd

package migrate

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
	"github.com/envhooks/envhooks/tests/testenv"
)

// envctlKilledAfter runs envctl in the node's namespace and sends it
// SIGKILL after delay, unless it finished first.
func (n *node) envctlKilledAfter(delay time.Duration, args ...string) {
	all := append([]string{"-t", fmt.Sprint(n.ns.Process.Pid), "-m", "--", testenv.Bin(n.c.t, "envctl")}, args...)
	cmd := exec.Command("nsenter", all...)
	cmd.Env = append(os.Environ(), "ENVHOOKS_CONFIG="+n.cfg)
	require.NoError(n.c.t, cmd.Start())
	time.Sleep(delay)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// jregister killed at a random moment, then junregister: a junregister
// that reports success leaves nothing mounted and the lease free. Before
// the record was written ahead, a kill between a mount and its record
// left that mount attached behind a successful junregister.
func TestRandomKillsOfRegister(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", "")
	c.create(a, "web1", jailDescriptor)
	var took []time.Duration
	for i := 0; i < 3; i++ {
		r := a.envctl("jregister", "web1")
		ok(t, r)
		took = append(took, r.Took)
		ok(t, a.envctl("junregister", "web1"))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	window := took[1] * 13 / 10
	rng := rand.New(rand.NewPCG(14, 2))
	const runs = 60
	left := 0
	for i := 0; i < runs; i++ {
		delay := time.Duration(rng.Int64N(int64(window)))
		a.envctlKilledAfter(delay, "jregister", "web1")
		r := a.envctl("junregister", "web1")
		mounts := a.mounts()
		owner := a.envctl("lease", "show", "web1").Stdout
		if len(mounts) == 0 && strings.Contains(owner, "not owned") {
			continue
		}
		if r.Code == 0 {
			left++
			t.Logf("run %d, killed after %s: junregister exited 0, left %v, lease: %s", i, delay, mounts, owner)
		} else {
			t.Logf("run %d, killed after %s: junregister exited %d: %s", i, delay, r.Code, r.Stderr)
		}
		for _, m := range mounts {
			a.in(nil, "umount", m)
		}
		os.Remove(filepath.Join(a.home, "state", "web1.state"))
		a.envctl("lease", "release", "web1")
	}
	t.Logf("%d jregisters killed at random within %s", runs, window)
	assert.Zero(t, left, "%d of %d random kills left something behind a junregister that exited 0", left, runs)
}

// A stray file in INVENTORY_DIR and a damaged record: list names the stray
// and skips it, shows every other environment, marks the damaged one, and
// exits 65. Before, one stray file made list fail for everyone.
func TestListSurvivesStrayAndDamagedRecords(t *testing.T) {
	c := newCluster(t)
	a := c.node("a", "")
	for _, j := range []string{"web1", "web2", "web3"} {
		c.create(a, j, jailDescriptor)
		ok(t, a.envctl("jregister", j))
	}
	inv := filepath.Join(a.home, "inventory")
	testenv.WriteFile(t, filepath.Join(inv, "a b.json"), "{}", 0o644)
	r := a.envctl("list")
	ok(t, r)
	assert.Contains(t, r.Stderr, "a b.json")
	for _, j := range []string{"web1", "web2", "web3"} {
		assert.Contains(t, r.Stdout, j)
	}

	testenv.WriteFile(t, filepath.Join(inv, "web2.json"), `{"format": "envhooks-inventory 2", "jname": "web2", "kind": `, 0o644)
	r = a.envctl("list")
	assert.Equal(t, sysexits.DataErr, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "web1")
	assert.Contains(t, r.Stdout, "web3")
	assert.Regexp(t, `web2 +jail +damaged`, r.Stdout)
	assert.Contains(t, r.Stderr, "inventory record "+filepath.Join(inv, "web2.json")+" is damaged")
	r = a.envctl("status", "web2")
	assert.Equal(t, sysexits.DataErr, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "damaged")

	// A damaged lease and a damaged state record are named the same way.
	testenv.WriteFile(t, filepath.Join(c.dfs, "leases", "web3.lease"), "node=a\ngarbage\n", 0o644)
	testenv.WriteFile(t, filepath.Join(a.home, "state", "web1.state"), "\x00\x01", 0o600)
	r = a.envctl("--json", "list")
	assert.Equal(t, sysexits.DataErr, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "3 damaged records")
	for _, what := range []string{"lease record " + filepath.Join(c.dfs, "leases", "web3.lease"), "state record " + filepath.Join(a.home, "state", "web1.state")} {
		assert.Contains(t, r.Stdout, what+" is damaged")
	}
}

// Records written by envhooks 0.1 on a node with an environment
// registered (inventory and lease captured from its envctl, state record
// from its mnt-start): after the upgrade, junregister gives it up cleanly
// and another node takes it with the next generation.
func TestUpgradeWithEnvironmentRegistered(t *testing.T) {
	c := newCluster(t)
	a, b := c.node("a", ""), c.node("b", "")
	c.create(a, "web1", jailDescriptor)
	ok(t, a.envctl("jregister", "web1"))
	// Replace every record with what 0.1 wrote for the same state.
	d := a.dirs("web1")
	var state strings.Builder
	fmt.Fprintf(&state, "envhooks-state 1\njname \"web1\"\nbackend \"nullfs\"\nnode \"a\"\ngeneration 1\nupdated \"2026-11-30T03:54:53Z\"\n")
	for _, role := range []string{"data", "system", "fstab"} {
		target, src := d[role], filepath.Join(c.dfs, role, "web1")
		fmt.Fprintf(&state, "action %q\nwhat %q\nkind \"unmount\"\ntarget %q\nwant \"\" \"\" %q\ndirect\nargv \"umount\" %q\nforce \"umount\" \"-f\" %q\n",
			"mount:"+target, "bind "+src+" on "+target, target, src, target, target)
	}
	testenv.WriteFile(t, filepath.Join(a.home, "state", "web1.state"), state.String(), 0o600)
	testenv.WriteFile(t, filepath.Join(c.dfs, "leases", "web1.lease"), "node=a\nsince=2026-11-30T03:54:53Z\ngeneration=1\n", 0o644)
	testenv.WriteFile(t, filepath.Join(a.home, "inventory", "web1.json"), fmt.Sprintf(`{
  "jname": "web1",
  "kind": "jail",
  "node": "a",
  "registered": "2026-11-30T03:54:53Z",
  "generation": 1,
  "descriptor": %q
}
`, strings.ReplaceAll(fmt.Sprintf(jailDescriptor, "web1"), "CBSDROOT", a.workdir)), 0o644)

	assert.Equal(t, "registered-here", status(t, a, "web1")["state"])
	assert.Equal(t, 77, b.envctl("jregister", "web1").Code, "0.1's lease still holds")
	ok(t, a.envctl("junregister", "web1"))
	assert.Empty(t, a.mounts())
	ok(t, b.envctl("jregister", "web1"))
	assert.Equal(t, float64(2), status(t, b, "web1")["generation"])
	assert.Equal(t, "the data of web1\n", b.read(b.dirs("web1")["data"]+"/data.txt"))
}
