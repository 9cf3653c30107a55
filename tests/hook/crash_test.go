package hook

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/crashpoint"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/tests/testenv"
)

// answeredQuickly runs mnt-start and reports whether its quick check
// answered (exit 0) rather than the full start, which the crash point at
// its very beginning kills before it looks at anything.
func answeredQuickly(t *testing.T, n *node, env []string, jname string, extra ...string) bool {
	t.Helper()
	r := n.startWith(testenv.Bin(t, "mnt-start"), append([]string{crashpoint.Env + "=hook:begin"}, env...), jname, extra...)
	if r.Code == 0 {
		assert.Empty(t, r.Stderr)
		return true
	}
	assert.Equal(t, -1, r.Code, "killed: %s", r.Stderr)
	return false
}

// unnamed lists the mount points under the workdir that jname's state
// record does not name: what a stop could not know to undo.
func (n *node) unnamed(jname string) []string {
	rec, err := state.Store{Dir: n.state}.Load(jname)
	require.NoError(n.t, err)
	var named []string
	if rec != nil {
		for _, a := range rec.Actions {
			named = append(named, a.Target)
		}
	}
	var out []string
	for _, line := range n.mounts() {
		if target := strings.Fields(line)[4]; !slices.Contains(named, target) {
			out = append(out, target)
		}
	}
	return out
}

// Killed (SIGKILL, as a power cut) at every step of a start or a stop, the
// run leaves a record naming everything attached: the next start finishes
// the work, the next stop undoes it.
func TestKilledAtEveryStep(t *testing.T) {
	starts := []string{"hook:begin", "attach:intent", "attach:applied#1", "attach:applied#2", "attach:applied#3", "attach:recorded"}
	stops := []string{"hook:begin", "detach:undone#1", "detach:undone#2", "detach:undone#3"}
	for _, point := range starts {
		for _, next := range []string{"stop", "start"} {
			t.Run("start killed at "+testName(point)+" then "+next, func(t *testing.T) {
				n := newNode(t, "")
				n.create("web1")
				r := n.startWith(testenv.Bin(t, "mnt-start"), []string{crashpoint.Env + "=" + point}, "web1")
				require.Equal(t, -1, r.Code, "killed at %s: %s", point, r.Stderr)
				assert.Empty(t, n.unnamed("web1"), "every mount is in the record")
				n.then(next)
			})
		}
	}
	for _, point := range stops {
		for _, next := range []string{"stop", "start"} {
			t.Run("stop killed at "+testName(point)+" then "+next, func(t *testing.T) {
				n := newNode(t, "")
				n.create("web1")
				requireOK(t, n.start("web1"))
				r := testenv.Run(t, []string{n.runDirEnv(), crashpoint.Env + "=" + point}, testenv.Bin(t, "mnt-stop"), "-c", n.cfg, "-j", "web1")
				require.Equal(t, -1, r.Code, "killed at %s: %s", point, r.Stderr)
				assert.Empty(t, n.unnamed("web1"), "every mount is in the record")
				n.then(next)
			})
		}
	}
}

// then finishes a killed run's environment with a stop, or a start and a
// stop, checking what each leaves.
func (n *node) then(next string) {
	t := n.t
	if next == "start" {
		requireOK(t, n.start("web1"))
		require.Len(t, n.mounts(), 3)
		rec, err := state.Store{Dir: n.state}.Load("web1")
		require.NoError(t, err)
		require.Len(t, rec.Actions, 3)
		for _, a := range rec.Actions {
			assert.False(t, a.Pending, "%s is done", a.ID)
		}
		assert.Empty(t, n.unnamed("web1"))
	}
	requireOK(t, n.stop("web1"))
	assert.Empty(t, n.mounts())
	assert.NoFileExists(t, state.Store{Dir: n.state}.Path("web1"))
}

// killSeed fixes the random kills, so that a failure can be replayed.
const killSeed = 14

// A start killed at a random moment, then a stop: a stop that reports
// success leaves nothing mounted. Before the record was written ahead, about
// one kill in six landed between a mount and its record, and the stop said
// 0 with that mount left.
func TestRandomKillsThenStop(t *testing.T) {
	n := newNode(t, "")
	n.create("web1")
	full := n.fullStartDuration()
	rng := rand.New(rand.NewPCG(killSeed, 1))
	const runs = 120
	left := 0
	for i := 0; i < runs; i++ {
		delay := time.Duration(rng.Int64N(int64(full * 13 / 10)))
		n.killStartAfter(delay)
		if i%3 == 2 {
			// the next start finishes what the killed one began
			requireOK(t, n.start("web1"))
			require.Len(t, n.mounts(), 3)
		}
		r := n.stop("web1")
		if mounts := n.mounts(); len(mounts) > 0 {
			if r.Code == 0 {
				left++
				t.Logf("run %d, killed after %s: mnt-stop exited 0 and left %d mounts", i, delay, len(mounts))
			} else {
				t.Logf("run %d, killed after %s: mnt-stop exited %d with %d mounts left: %s", i, delay, r.Code, len(mounts), r.Stderr)
			}
			n.unmountAll()
			os.Remove(state.Store{Dir: n.state}.Path("web1"))
		}
	}
	t.Logf("%d starts killed at random within %s", runs, full*13/10)
	assert.Zero(t, left, "%d of %d random kills left mounts behind a stop that exited 0", left, runs)
}

// fullStartDuration is the median time of a full start that mounts
// everything, measured here, where the machine's load is what it is.
func (n *node) fullStartDuration() time.Duration {
	var took []time.Duration
	for i := 0; i < 5; i++ {
		r := n.start("web1")
		requireOK(n.t, r)
		took = append(took, r.Took)
		requireOK(n.t, n.stop("web1"))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	return took[len(took)/2]
}

// killStartAfter starts mnt-start and sends it SIGKILL after delay (or
// lets it finish if it is faster).
func (n *node) killStartAfter(delay time.Duration) {
	n.killAfter("mnt-start", delay, append([]string{"-c", n.cfg}, n.jailArgs("web1")...)...)
}

// killAfter runs prog and sends it SIGKILL after delay.
func (n *node) killAfter(prog string, delay time.Duration, args ...string) {
	cmd := exec.Command(testenv.Bin(n.t, prog), args...)
	cmd.Env = append(os.Environ(), n.runDirEnv())
	require.NoError(n.t, cmd.Start())
	time.Sleep(delay)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
}

// An exec hook whose start was under way when mnt-start was killed still
// gets its stop from the next mnt-stop: the record named it before it ran.
func TestKilledDuringExecHookStart(t *testing.T) {
	log := filepath.Join(t.TempDir(), "calls")
	hook := filepath.Join(testenv.SafeDir(t), "hook.sh") // where only root writes, or it is refused
	testenv.WriteFile(t, hook, "#!/bin/sh\nfor a; do verb=$a; done\n[ $verb = start ] && sleep 0.5\necho $verb >> "+log+"\n", 0o755)
	n := newNode(t, "BACKEND=exec\nEXEC_HOOK="+hook+"\n")
	n.killStartAfter(200 * time.Millisecond)
	require.Eventually(t, func() bool {
		raw, _ := os.ReadFile(log)
		return string(raw) == "start\n"
	}, 5*time.Second, 50*time.Millisecond, "the hook's start finished on its own")
	requireOK(t, n.stop("web1"))
	raw, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Equal(t, "start\nstop\n", string(raw), "the stop ran the hook's stop")
}

// testName keeps a crash point's name out of the temporary directories a
// subtest's name becomes: a workdir holding ':' or ',' is refused.
func testName(point string) string { return strings.NewReplacer(":", "-", ",", "").Replace(point) }
