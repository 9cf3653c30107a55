//go:build linux

// Command fence is the fencing benchmark: it runs the history checker
// (tests/fence) with many more seeds and events than CI does, for every
// lease driver, and sums up its counts and figures: how long after a
// holder is cut off from the lease store its environments are stopped and
// detached (its local fence complete; the contract bounds it by LEASE_TTL
// - FENCE_MARGIN + FENCE_TIMEOUT), and how long after a holder freezes
// its environment is attached on another node, as a ratio of LEASE_TTL
// (target: at most LEASE_TTL + FENCE_MARGIN + 2 s). FENCE_SEEDS and
// FENCE_STEPS change the amount (default 4 seeds of 4 events per driver).
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/envhooks/envhooks/tests/benchenv"
)

func main() {
	if os.Geteuid() != 0 {
		benchenv.Fatal("the fencing benchmark needs root (it starts ganesha and etcd in a private network namespace)")
	}
	seeds, steps := env("FENCE_SEEDS", "4"), env("FENCE_STEPS", "4")
	cmd := exec.Command("go", "test", "-count=1", "-timeout", "60m", "-v", "-run", "^TestHistory$", "./tests/fence")
	cmd.Dir = benchenv.RepoRoot()
	cmd.Env = append(os.Environ(), "FENCECHECK_SEEDS="+seeds, "FENCECHECK_STEPS="+steps)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		benchenv.Fatal("%v", err)
	}
	if err := cmd.Start(); err != nil {
		benchenv.Fatal("%v", err)
	}
	figures := map[string][]float64{}
	var counts []string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		for i, w := range f {
			switch {
			case w == "FIGURE" && i+3 < len(f):
				v, _ := strconv.ParseFloat(f[i+3], 64)
				if f[i+2] == "holder-death-to-attached-elsewhere" {
					ttl, _ := strconv.ParseFloat(f[len(f)-1], 64)
					v /= ttl
				}
				figures[f[i+1]+" "+f[i+2]] = append(figures[f[i+1]+" "+f[i+2]], v)
			case w == "COUNT":
				counts = append(counts, strings.Join(f[i+1:], " "))
			case w == "---" && i+1 < len(f) && f[i+1] == "FAIL:":
				fmt.Println(line)
			}
		}
		if strings.Contains(line, "seed ") && strings.Contains(line, "replay") {
			fmt.Println(line)
		}
	}
	err = cmd.Wait()
	fmt.Printf("fencing history checker, %s seeds x %s events per driver (LEASE_TTL 3 s, FENCE_MARGIN 0.75 s, FENCE_TIMEOUT 0.75 s):\n", seeds, steps)
	for _, c := range counts {
		fmt.Println("  " + c)
	}
	keys := make([]string, 0, len(figures))
	for k := range figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := figures[k]
		sort.Float64s(v)
		unit := "s"
		if strings.HasSuffix(k, "elsewhere") {
			unit = "x LEASE_TTL"
		}
		fmt.Printf("  %-45s n=%-3d median %.2f %s, max %.2f %s\n", k, len(v), v[len(v)/2], unit, v[len(v)-1], unit)
	}
	if err != nil {
		benchenv.Fatal("the checker failed: %v", err)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
