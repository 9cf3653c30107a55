//go:build linux

package main

import (
	"fmt"

	"github.com/envhooks/envhooks/tests/benchenv"
)

func report(rs []*rowResult) {
	fmt.Printf("\nCluster scale on one machine: N simulated nodes holding E environments, two envctl nodes migrating %d more; LEASE_TTL %s (beats every %s), PARALLEL %d\n", migrating, ttl, ttl/3, parallel)
	fmt.Printf("latencies are p50/p99/max; the probe is one lease read every %s from a connection of its own\n\n", probeEvery)

	fmt.Println("== heartbeats and the store (heartbeats only, for", steady, "from one interval after every node's first beat)")
	rows := [][]string{{"driver", "N", "E", "acquire E", "all beating", "beats/s", "store writes/s", "store CPU", "nodes' CPU", "store size", "beat", "probe"}}
	for _, r := range rs {
		w := "-"
		if r.writesPerSec >= 0 {
			w = fmt.Sprintf("%.1f", r.writesPerSec)
		}
		beats := fmt.Sprintf("%.1f", r.beatsPerSec)
		if r.beatFails > 0 {
			beats += fmt.Sprintf(" (%d failed)", r.beatFails)
		}
		rows = append(rows, []string{r.driver, fmt.Sprint(r.nodes), fmt.Sprint(r.envs), short(r.populate), short(r.firstBeats), beats, w,
			fmt.Sprintf("%.0f%%", r.cpu), fmt.Sprintf("%.0f%%", r.simCPU), mib(r.storeSize), r.beatLatency, r.probeSteady})
	}
	benchenv.Table(rows)
	growth(rs, []string{"beats/s", "writes/s", "CPU", "size"}, func(r *rowResult) []float64 {
		return []float64{r.beatsPerSec, r.writesPerSec, r.cpu, float64(r.storeSize)}
	})

	fmt.Printf("\n== envctl: lease list (every lease) on a, list --json on b (its %d), the wildcard migration a -> b\n", migrating)
	rows = [][]string{{"driver", "N", "E", "lease list", "its memory", "list --json", "its memory", "junregister", "jregister", "store CPU", "probe"}}
	for _, r := range rs {
		rows = append(rows, []string{r.driver, fmt.Sprint(r.nodes), fmt.Sprint(r.envs), short(r.leaseList), mib(r.leaseListRSS),
			short(r.listJSON), mib(r.listJSONRSS), short(r.unregister), short(r.register), fmt.Sprintf("%.0f%%", r.cpuMigrate), r.probeMigrate})
	}
	benchenv.Table(rows)
	growth(rs, []string{"lease list", "its memory", "list --json", "migration"}, func(r *rowResult) []float64 {
		return []float64{r.leaseList.Seconds(), float64(r.leaseListRSS), r.listJSON.Seconds(), (r.unregister + r.register).Seconds()}
	})

	fmt.Println("\n== a node dies: from its last heartbeat's stop to the takeover of all its environments by one other node")
	rows = [][]string{{"driver", "N", "E", "its envs", "dead after", "found in", "taken in", "total", "per takeover", "probe"}}
	for _, r := range rs {
		rows = append(rows, []string{r.driver, fmt.Sprint(r.nodes), fmt.Sprint(r.envs), fmt.Sprint(r.takeEnvs), short(r.detect),
			short(r.find), short(r.take), short(r.detect + r.find + r.take), r.takeoverCall, r.probeTakeover})
	}
	benchenv.Table(rows)
	growth(rs, []string{"found in", "taken in", "total"}, func(r *rowResult) []float64 {
		return []float64{r.find.Seconds(), r.take.Seconds(), (r.detect + r.find + r.take).Seconds()}
	})

	fmt.Println("\n== the probe over each whole row, and the machine's load average (1, 5, 15 min) at its end")
	rows = [][]string{{"driver", "N", "E", "probe reads", "p50/p99/max", "load average"}}
	for _, r := range rs {
		rows = append(rows, []string{r.driver, fmt.Sprint(r.nodes), fmt.Sprint(r.envs), fmt.Sprint(len(r.probeAll)), quantiles(r.probeAll), r.load})
	}
	benchenv.Table(rows)
}

// growth prints, for each row after the first of a driver, what changed
// and each figure's ratio to the row before.
func growth(rs []*rowResult, names []string, figures func(*rowResult) []float64) {
	rows := [][]string{append([]string{"growth", ""}, names...)}
	for i := 1; i < len(rs); i++ {
		prev, cur := rs[i-1], rs[i]
		if prev.driver != cur.driver {
			continue
		}
		label := fmt.Sprintf("N x%d", cur.nodes/prev.nodes)
		if cur.envs != prev.envs {
			label = fmt.Sprintf("E x%d", cur.envs/prev.envs)
			if cur.nodes != prev.nodes {
				label = fmt.Sprintf("N x%d, E x%d", cur.nodes/prev.nodes, cur.envs/prev.envs)
			}
		}
		row := []string{cur.driver, label}
		a, b := figures(prev), figures(cur)
		for k := range a {
			row = append(row, ratio(a[k], b[k]))
		}
		rows = append(rows, row)
	}
	if len(rows) > 1 {
		benchenv.Table(rows)
	}
}
