//go:build linux

// The benchmark of envctl move, drain and failover (issue 16), between
// nodes that are network and mount namespaces with an sshd each
// (tests/sshnodes), nullfs and file leases: one move end to end beside the
// two commands it replaces, a drain of 100 environments over two targets
// and their restore, and the time from a node's death to its HA
// environment running elsewhere, as a ratio of LEASE_TTL.
package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/sshnodes"
	"github.com/envhooks/envhooks/tests/testnet"
)

const (
	rounds = 9
	count  = 100
	ttl    = 3 * time.Second
)

func main() {
	testnet.Isolate() // network and mount namespaces of its own: the nodes' veths never reach the machine's
	tmp := benchenv.TempDir("/var/tmp", "envhooks-bench-move-")
	t := &benchenv.T{}
	envctl := benchenv.Build(filepath.Join(tmp, "bin"), "cmd/envctl")
	c := sshnodes.New(t, filepath.Join(tmp, "nodes"), envctl, []string{"a", "b", "c"}, func(*sshnodes.Node) string {
		return fmt.Sprintf("LEASE_TTL=%d\nHA_DELAY=1\nFAILOVER=1\n", int(ttl.Seconds()))
	})
	a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	must := func(n *sshnodes.Node, args ...string) {
		if r := n.Envctl(args...); r.Code != 0 {
			benchenv.Fatal("envctl %v on %s: exit %d: %s", args, n.Name, r.Code, r.Stderr)
		}
	}

	// One environment, running: move a -> b and back; beside it the two
	// commands of a migration by hand (junregister here, jregister there
	// over ssh), without stop and start.
	c.Create(a, "one")
	must(a, "jregister", "jname=one")
	must(a, "start", "jname=one")
	var moves, manual []time.Duration
	for range rounds {
		for _, hop := range [][2]*sshnodes.Node{{a, b}, {b, a}} {
			start := time.Now()
			must(hop[0], "move", "jname=one", "to="+hop[1].Name)
			moves = append(moves, time.Since(start))
		}
	}
	must(a, "stop", "jname=one")
	for range rounds {
		start := time.Now()
		must(a, "junregister", "jname=one")
		if r := a.In(nil, "ssh", "-F", filepath.Join(c.Root, "ssh_config"), "-o", "BatchMode=yes", b.Addr(), envctl, "jregister", "jname=one"); r.Code != 0 {
			benchenv.Fatal("ssh jregister: %s", r.Stderr)
		}
		manual = append(manual, time.Since(start))
		must(b, "junregister", "jname=one")
		must(a, "jregister", "jname=one")
	}
	mm, hm := benchenv.Quantile(moves, 0.5), benchenv.Quantile(manual, 0.5)
	fmt.Printf("== envctl move of one running environment (nullfs, file leases, real OpenSSH between network namespaces; median of %d)\n", len(moves))
	benchenv.Table([][]string{
		{"what", "median", "p90"},
		{"envctl move (preflight, stop, junregister, jregister, start, check, journal, history)", benchenv.Ms(mm), benchenv.Ms(benchenv.Quantile(moves, 0.9))},
		{"by hand: junregister here + ssh there jregister (no stop, start, journal)", benchenv.Ms(hm), benchenv.Ms(benchenv.Quantile(manual, 0.9))},
		{"move / by hand", fmt.Sprintf("%.2fx", float64(mm)/float64(hm)), ""},
	})

	// Drain 100 over two targets, then restore.
	for i := range count {
		c.Create(a, fmt.Sprintf("env%03d", i))
	}
	must(a, "jregister", "jname=env*")
	start := time.Now()
	must(a, "drain", "to=b,c")
	drain := time.Since(start)
	start = time.Now()
	must(a, "restore")
	restore := time.Since(start)
	fmt.Printf("== drain of %d environments from a to b and c, then restore (PARALLEL=8)\n", count)
	benchenv.Table([][]string{
		{"what", "time", "environments/s"},
		{"drain", drain.Round(time.Millisecond).String(), fmt.Sprintf("%.1f", count/drain.Seconds())},
		{"restore", restore.Round(time.Millisecond).String(), fmt.Sprintf("%.1f", count/restore.Seconds())},
	})

	// Failover: a's heartbeat dies; how long until its HA environment
	// runs on a survivor.
	for _, n := range []*sshnodes.Node{a, b, cc} {
		n.WriteEnvConfig("ha", "HA=1\nHA_MAX_RELOCATE=100\n")
	}
	c.Create(a, "ha")
	b.Background("heartbeat")
	cc.Background("heartbeat")
	var took []time.Duration
	beatA := a.Background("heartbeat")
	for range 3 {
		if c.Owner("ha") != "a" {
			must(a, "jregister", "jname=ha")
			must(a, "start", "jname=ha")
		}
		time.Sleep(ttl)
		beatA.Process.Kill()
		killed := time.Now()
		for !(b.Running("ha") || cc.Running("ha")) {
			if time.Since(killed) > 60*time.Second {
				benchenv.Fatal("ha did not fail over within 60 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		took = append(took, time.Since(killed))
		// Home again for the next round: a is alive again, the owner
		// moves it back.
		beatA = a.Background("heartbeat")
		for a.Registered("ha") {
			time.Sleep(50 * time.Millisecond) // a lets go of what it lost
		}
		owner := b
		if cc.Running("ha") {
			owner = cc
		}
		must(owner, "move", "jname=ha", "to=a")
	}
	fmt.Printf("== failover: a node's heartbeat killed until its HA=1 environment runs on a survivor (LEASE_TTL %s, HA_DELAY 1 s, passes every LEASE_TTL/3)\n", ttl)
	rows := [][]string{{"round", "time", "/ LEASE_TTL"}}
	for i, d := range took {
		rows = append(rows, []string{fmt.Sprint(i + 1), d.Round(time.Millisecond).String(), fmt.Sprintf("%.2f", d.Seconds()/ttl.Seconds())})
	}
	benchenv.Table(rows)
	benchenv.Exit(0)
}
