//go:build linux

package lease_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/tests/testenv"
)

const descriptor = `jname="%[1]s";
path="CBSDROOT/jails/%[1]s";
data="CBSDROOT/jails-data/%[1]s-data";
host_hostname="%[1]s.example.org";
emulator="jail";
`

type envNode struct {
	t          *testing.T
	name, cfg  string
	home, work string
}

// envNodes makes two nodes' configurations around one shared nullfs root
// and the lease store of driver; both nodes are processes of this mount
// namespace, with workdirs of their own.
func envNodes(t *testing.T, driver string) (a, b *envNode, dfs string) {
	root := t.TempDir()
	t.Cleanup(func() {
		// Bind mounts first, so removing the temporary directory
		// never reaches through them.
		for _, line := range testenv.MountsUnder(t, root) {
			if f := strings.Fields(line); len(f) > 4 {
				unix.Unmount(f[4], unix.MNT_DETACH)
			}
		}
	})
	dfs = filepath.Join(root, "dfs")
	prefix := fmt.Sprintf("/envctl-%d", time.Now().UnixNano())
	var store string
	switch driver {
	case "etcd":
		store = fmt.Sprintf("LEASE_BACKEND=etcd\nLEASE_DIR=%s\nETCD_ENDPOINTS=%s\n", prefix, strings.Join(etcdCluster(t).Endpoints(), ","))
	case "nfs":
		srv := nfsServer(t)
		store = fmt.Sprintf("LEASE_BACKEND=nfs\nLEASE_NFS_SERVER=127.0.0.1\nLEASE_NFS_EXPORT=%s\nLEASE_DIR=%s%s\n", srv.Export, srv.Export, prefix)
	}
	mk := func(name string) *envNode {
		home := filepath.Join(root, name)
		n := &envNode{t: t, name: name, home: home, work: filepath.Join(home, "usr", "jails"), cfg: filepath.Join(home, "envhooks.conf")}
		require.NoError(t, os.MkdirAll(filepath.Join(n.work, "jails-rcconf"), 0o755))
		testenv.WriteFile(t, n.cfg, fmt.Sprintf("BACKEND=nullfs\nNULLFS_ROOT=%s\n%sLEASE_TTL=2\nLEASE_TIMEOUT=3\nNODE_NAME=%s\nWORKDIR=%s\nSTATE_DIR=%s/state\nINVENTORY_DIR=%s/inventory\nSYSLOG=0\nUNMOUNT_TIMEOUT=1\n",
			dfs, store, name, n.work, home, home), 0o644)
		return n
	}
	a, b = mk("a"), mk("b")
	for _, role := range []string{"data", "system", "fstab", "rcconf"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dfs, role, "web1"), 0o755))
	}
	testenv.WriteFile(t, filepath.Join(a.work, "jails-rcconf", "rc.conf_web1"), fmt.Sprintf(descriptor, "web1"), 0o644)
	return a, b, dfs
}

func (n *envNode) envctl(args ...string) testenv.Result {
	return testenv.Run(n.t, []string{"ENVHOOKS_CONFIG=" + n.cfg}, testenv.Bin(n.t, "envctl"), args...)
}

// heartbeat starts envctl heartbeat as a service would.
func (n *envNode) heartbeat() *exec.Cmd {
	cmd := exec.Command(testenv.Bin(n.t, "envctl"), "heartbeat")
	cmd.Env = append(os.Environ(), "ENVHOOKS_CONFIG="+n.cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(n.t, cmd.Start())
	n.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

type listed struct {
	JName      string `json:"jname"`
	Node       string `json:"node"`
	Generation uint64 `json:"generation"`
	Heartbeat  string `json:"heartbeat"`
}

func (n *envNode) leaseList() []listed {
	r := n.envctl("--json", "lease", "list")
	require.Equal(n.t, 0, r.Code, r.Stderr)
	var out []listed
	require.NoError(n.t, json.Unmarshal([]byte(r.Stdout), &out), r.Stdout)
	return out
}

// TestEnvctlTakeoverAfterNodeDeath runs the programs: node a registers
// web1 and runs envctl heartbeat; node b can neither register nor take
// over while a beats; a's heartbeat process is killed (the node dies); b's
// jregister --takeover succeeds only once the TTL has passed, lease list
// shows b with a newer generation, and envctl status on a says a lost
// ownership.
func TestEnvctlTakeoverAfterNodeDeath(t *testing.T) {
	for _, driver := range []string{"etcd", "nfs"} {
		t.Run(driver, func(t *testing.T) {
			const ttl, interval = 2 * time.Second, 2 * time.Second / 3
			a, b, dfs := envNodes(t, driver)
			r := a.envctl("jregister", "web1")
			require.Equal(t, 0, r.Code, r.Stderr)
			require.FileExists(t, filepath.Join(dfs, "system", "web1", "rc.conf_web1"))

			r = b.envctl("jregister", "web1", "--takeover")
			require.Equal(t, 77, r.Code, "a never beat: refused: %s", r.Stderr)
			assert.Contains(t, r.Stderr, "never sent a heartbeat")

			hb := a.heartbeat()
			require.Eventually(t, func() bool {
				l := a.leaseList()
				return len(l) == 1 && l[0].Heartbeat == "alive"
			}, 10*time.Second, 100*time.Millisecond)
			before := a.leaseList()[0]
			require.Equal(t, "a", before.Node)

			r = b.envctl("jregister", "web1")
			require.Equal(t, 77, r.Code, r.Stderr)
			assert.Contains(t, r.Stderr, "owned by node a")
			r = b.envctl("jregister", "web1", "--takeover")
			require.Equal(t, 77, r.Code, r.Stderr)
			assert.Contains(t, r.Stderr, "is alive")

			syscall.Kill(-hb.Process.Pid, syscall.SIGKILL)
			hb.Wait()
			killed := time.Now()
			for {
				r = b.envctl("jregister", "web1", "--takeover")
				if r.Code == 0 {
					break
				}
				require.Equal(t, 77, r.Code, r.Stderr)
				require.Less(t, time.Since(killed), ttl+20*time.Second, "the takeover never became possible")
				time.Sleep(100 * time.Millisecond)
			}
			// The last beat started less than one interval before the
			// kill, and the takeover needs it to be a TTL old.
			took := time.Since(killed)
			require.Greater(t, took, ttl-interval, "taken over before the TTL")
			t.Logf("%s: taken over %s after the heartbeat died (TTL %s, interval %s)", driver, took.Round(time.Millisecond), ttl, interval)

			after := b.leaseList()
			require.Len(t, after, 1)
			assert.Equal(t, "b", after[0].Node)
			assert.Greater(t, after[0].Generation, before.Generation)
			assert.Equal(t, "never", after[0].Heartbeat, "b never ran a heartbeat")

			r = a.envctl("--json", "status", "web1")
			require.Equal(t, 0, r.Code, r.Stderr)
			assert.Contains(t, r.Stdout, `"state": "stale"`)
			assert.Contains(t, r.Stdout, "lost ownership")
			// mnt-start on a (a manual cbsd jstart on the old node) is
			// refused and says a still has the storage attached.
			r = testenv.Run(t, []string{"ENVHOOKS_CONFIG=" + a.cfg}, testenv.Bin(t, "mnt-start"),
				"-d", filepath.Join(a.work, "jails-data", "web1-data"), "-j", "web1", "-s", filepath.Join(a.work, "jails-system", "web1"))
			require.Equal(t, 77, r.Code, r.Stderr)
			assert.Contains(t, r.Stderr, "owned by node b")
			assert.Contains(t, r.Stderr, fmt.Sprintf("still has web1 attached from generation %d", before.Generation))

			r = b.envctl("--json", "status", "web1")
			require.Equal(t, 0, r.Code, r.Stderr)
			assert.Contains(t, r.Stdout, `"state": "registered-here"`)

			// a takes it back by force while its old attachment is still
			// in place: warned, and its record moves to the new
			// generation, so it is no longer stale.
			r = a.envctl("jregister", "web1", "--force", "--from", "b")
			require.Equal(t, 0, r.Code, r.Stderr)
			assert.Contains(t, r.Stderr, "lost ownership in between")
			r = a.envctl("--json", "status", "web1")
			require.Equal(t, 0, r.Code, r.Stderr)
			assert.Contains(t, r.Stdout, `"state": "registered-here"`)
			r = b.envctl("--json", "status", "web1")
			require.Equal(t, 0, r.Code, r.Stderr)
			assert.Contains(t, r.Stdout, `"state": "stale"`)
		})
	}
}
