//go:build linux

package lease_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/lease/etcdlease"
	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/testenv"
)

// Several nodes for real: each node is a network namespace of its own
// (held open by a sleeping process), joined to the test's namespace (the
// "hub", which routes between them) by a veth pair: node i is 10.99.i.2,
// the hub's end 10.99.i.1. An etcd member runs inside each of three nodes;
// ganesha runs in the hub. Node programs are this test binary again, run
// inside a node's namespace with nsenter, in the mode helperEnv names.

const helperEnv = "ENVHOOKS_LEASE_NODE_HELPER"

type netNode struct {
	t      *testing.T
	i      int
	holder *exec.Cmd
	hubIf  string
}

func (n *netNode) addr() string    { return fmt.Sprintf("10.99.%d.2", n.i) }
func (n *netNode) hubAddr() string { return fmt.Sprintf("10.99.%d.1", n.i) }
func (n *netNode) name() string    { return fmt.Sprintf("n%d", n.i) }

// nsenter is the argv prefix that runs a program in the node's network
// namespace.
func (n *netNode) nsenter() []string {
	return []string{"nsenter", "-t", strconv.Itoa(n.holder.Process.Pid), "-n", "--"}
}

func ipCmd(t *testing.T, argv ...string) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	require.NoError(t, err, "%s: %s", strings.Join(argv, " "), out)
}

func newNetNode(t *testing.T, i int) *netNode {
	t.Helper()
	n := &netNode{t: t, i: i, hubIf: fmt.Sprintf("hub%d", i)}
	n.holder = exec.Command("unshare", "--net", "sleep", "3600")
	n.holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, n.holder.Start())
	t.Cleanup(func() {
		// The namespace, and the veth pair with it, go with its holder.
		n.holder.Process.Kill()
		n.holder.Wait()
	})
	require.Eventually(t, func() bool {
		self, _ := os.Readlink("/proc/self/ns/net")
		other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", n.holder.Process.Pid))
		return err == nil && other != self
	}, 5*time.Second, 5*time.Millisecond)
	pid := strconv.Itoa(n.holder.Process.Pid)
	peer := fmt.Sprintf("node%d", i)
	ipCmd(t, "ip", "link", "add", n.hubIf, "type", "veth", "peer", "name", peer, "netns", pid)
	ipCmd(t, "ip", "addr", "add", n.hubAddr()+"/24", "dev", n.hubIf)
	ipCmd(t, "ip", "link", "set", n.hubIf, "up")
	in := n.nsenter()
	ipCmd(t, append(in, "ip", "link", "set", "lo", "up")...)
	ipCmd(t, append(in, "ip", "addr", "add", n.addr()+"/24", "dev", peer)...)
	ipCmd(t, append(in, "ip", "link", "set", peer, "up")...)
	ipCmd(t, append(in, "ip", "route", "add", "10.99.0.0/16", "via", n.hubAddr())...)
	return n
}

// partition cuts the node off (its link to the hub goes down) or heals it.
func (n *netNode) partition(cut bool) {
	state := "up"
	if cut {
		state = "down"
	}
	ipCmd(n.t, "ip", "link", "set", n.hubIf, state)
}

// helper starts this test binary in the node's namespace in mode, with env.
func (n *netNode) helper(mode string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	exe, err := os.Executable()
	require.NoError(n.t, err)
	argv := append(n.nsenter(), exe, "-test.run", "^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode, "LH_NODE="+n.name()), env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	require.NoError(n.t, err)
	require.NoError(n.t, cmd.Start())
	n.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(out)
}

type netCluster struct {
	nodes []*netNode
	etcd  *etcdcluster.Cluster
}

func newNetCluster(t *testing.T) *netCluster {
	testenv.Require(t, "ip", "nsenter", "unshare", "etcd")
	require.NoError(t, os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644))
	c := &netCluster{}
	var addrs []string
	for i := 1; i <= 3; i++ {
		n := newNetNode(t, i)
		c.nodes = append(c.nodes, n)
		addrs = append(addrs, n.addr())
	}
	var err error
	c.etcd, err = etcdcluster.StartOn(filepath.Join(scratchDir(t), fmt.Sprintf("netns-etcd-%d", time.Now().UnixNano())), addrs, func(i int) []string { return c.nodes[i].nsenter() })
	require.NoError(t, err)
	t.Cleanup(c.etcd.Stop)
	return c
}

// storeEnv is what a node helper needs to open driver's store.
func (c *netCluster) storeEnv(t *testing.T, driver string, n *netNode, prefix string) []string {
	switch driver {
	case "etcd":
		return []string{"LH_DRIVER=etcd", "LH_ENDPOINTS=" + strings.Join(c.etcd.Endpoints(), ","), "LH_PREFIX=" + prefix}
	default:
		srv := nfsServer(t)
		return []string{"LH_DRIVER=nfs", "LH_SERVER=" + n.hubAddr(), "LH_EXPORT=" + srv.Export, "LH_PREFIX=" + srv.Export + prefix}
	}
}

// TestNodesInNetworkNamespaces: three nodes, each a network namespace with
// its own address, race for leases from separate processes (exactly one
// owner per round); then a node holding a lease and beating is
// partitioned: the others cannot take its lease over before the TTL,
// can after it, and the node, healed and alive, does not get it back.
func TestNodesInNetworkNamespaces(t *testing.T) {
	c := newNetCluster(t)
	for _, driver := range []string{"etcd", "nfs"} {
		t.Run(driver, func(t *testing.T) {
			prefix := fmt.Sprintf("/netns-%s-%d", driver, time.Now().UnixNano())
			rounds := 1000
			start := time.Now().Add(500 * time.Millisecond).UnixNano()
			results := make([]map[int]bool, len(c.nodes))
			var cmds []*exec.Cmd
			var outs []*bufio.Scanner
			for _, n := range c.nodes {
				cmd, out := n.helper("race", append(c.storeEnv(t, driver, n, prefix), fmt.Sprintf("LH_ROUNDS=%d", rounds), fmt.Sprintf("LH_START=%d", start))...)
				cmds, outs = append(cmds, cmd), append(outs, out)
			}
			for i, out := range outs {
				results[i] = map[int]bool{}
				for out.Scan() {
					f := strings.Fields(out.Text())
					if len(f) == 2 {
						r, _ := strconv.Atoi(f[0])
						results[i][r] = f[1] == "won"
					}
				}
				require.NoError(t, cmds[i].Wait(), "node %d", i+1)
				require.Len(t, results[i], rounds, "node %d answered every round", i+1)
			}
			wins := make([]int, len(c.nodes))
			for r := 0; r < rounds; r++ {
				owners := 0
				for i := range c.nodes {
					if results[i][r] {
						owners++
						wins[i]++
					}
				}
				require.Equal(t, 1, owners, "round %d: exactly one owner among the nodes", r)
			}
			t.Logf("%s: rounds won per node: %v", driver, wins)

			// The partition.
			const ttl = 2 * time.Second
			n1, n2 := c.nodes[0], c.nodes[1]
			hold, holdOut := n1.helper("hold", append(c.storeEnv(t, driver, n1, prefix), "LH_TTL=2")...)
			require.True(t, holdOut.Scan(), "the holder reports")
			require.True(t, strings.HasPrefix(holdOut.Text(), "held "), holdOut.Text())
			heldGen, _ := strconv.ParseUint(strings.Fields(holdOut.Text())[1], 10, 64)
			go func() {
				for holdOut.Scan() {
				}
			}()
			time.Sleep(ttl) // it beats for a while
			take := func() (string, time.Duration) {
				cmd, out := n2.helper("takeover", append(c.storeEnv(t, driver, n2, prefix), "LH_TTL=2")...)
				began := time.Now()
				require.True(t, out.Scan())
				line := out.Text()
				cmd.Wait()
				return line, time.Since(began)
			}
			line, _ := take()
			require.True(t, strings.HasPrefix(line, "refused"), "n1 beats: %s", line)

			n1.partition(true)
			cut := time.Now()
			var took time.Duration
			for {
				line, _ = take()
				if strings.HasPrefix(line, "took") {
					took = time.Since(cut)
					break
				}
				// "error": an election after the cut; ask again.
				require.True(t, strings.HasPrefix(line, "refused") || strings.HasPrefix(line, "error"), line)
				require.Less(t, time.Since(cut), ttl+30*time.Second, "never taken over")
			}
			// n1's last beat began less than an interval (TTL/3) before
			// the cut; the takeover needs it a TTL old.
			require.Greater(t, took, ttl-ttl/3, "taken over before the TTL")
			newGen, _ := strconv.ParseUint(strings.Fields(line)[1], 10, 64)
			require.Greater(t, newGen, heldGen)
			t.Logf("%s: %d rounds from 3 namespaces, one owner each; partitioned n1's lease taken over %s after the cut (TTL %s)", driver, rounds, took.Round(time.Millisecond), ttl)

			// Healed and still beating, n1 does not get the lease back.
			n1.partition(false)
			time.Sleep(ttl)
			cmd, out := n1.helper("get", c.storeEnv(t, driver, n1, prefix)...)
			require.True(t, out.Scan())
			assert.Equal(t, fmt.Sprintf("owner n2 %d", newGen), out.Text())
			cmd.Wait()
			hold.Process.Kill()
		})
	}
}

// nodeHelper is the program a node runs: it opens the store from LH_*
// variables and does what mode says, printing one line per answer.
func nodeHelper(mode string) int {
	ctx := context.Background()
	node := os.Getenv("LH_NODE")
	var s lease.Store
	switch os.Getenv("LH_DRIVER") {
	case "etcd":
		var err error
		s, err = etcdlease.New(strings.Split(os.Getenv("LH_ENDPOINTS"), ","), os.Getenv("LH_PREFIX"), timeout)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case "nfs":
		s = lease.NewNFSStore(os.Getenv("LH_SERVER"), os.Getenv("LH_EXPORT"), os.Getenv("LH_PREFIX"), timeout)
	}
	defer lease.Close(s)
	ttl, _ := strconv.Atoi(os.Getenv("LH_TTL"))
	switch mode {
	case "race":
		rounds, _ := strconv.Atoi(os.Getenv("LH_ROUNDS"))
		start, _ := strconv.ParseInt(os.Getenv("LH_START"), 10, 64)
		time.Sleep(time.Until(time.Unix(0, start)))
		w := bufio.NewWriter(os.Stdout)
		defer w.Flush()
		for r := 0; r < rounds; r++ {
			v, err := acquire(ctx, s, fmt.Sprintf("race%d", r), node, true)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Fprintf(w, "%d %s\n", r, map[bool]string{true: "won", false: "lost"}[v.won])
		}
	case "hold":
		l, err := s.Acquire(ctx, "part", node)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("held %d\n", l.Generation)
		lease.Heartbeat(ctx, s.(lease.Liveness), node, time.Duration(ttl)*time.Second, time.Duration(ttl)*time.Second/3, func(error) {})
	case "takeover":
		l, err := lease.TakeoverExpired(ctx, s, "part", node, time.Duration(ttl)*time.Second)
		var ne *lease.NotExpiredError
		switch {
		case err == nil:
			fmt.Printf("took %d\n", l.Generation)
		case errors.As(err, &ne):
			fmt.Printf("refused %v\n", err)
		default:
			fmt.Printf("error %v\n", err)
		}
	case "get":
		l, err := s.Get(ctx, "part")
		if err != nil || l == nil {
			fmt.Printf("error %v\n", err)
			return 0
		}
		fmt.Printf("owner %s %d\n", l.Node, l.Generation)
	}
	return 0
}
