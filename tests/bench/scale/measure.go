//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envhooks/envhooks/lib/lease"
)

// meter records how long each store call took, by operation, for the phase
// that runs now; take hands the records over and starts afresh.
type meter struct {
	mu    sync.Mutex
	times map[string][]time.Duration
	fails map[string]int
	last  error // the last failure, for a report that gives up
}

func newMeter() *meter {
	return &meter{times: map[string][]time.Duration{}, fails: map[string]int{}}
}

func (m *meter) record(op string, took time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.times[op] = append(m.times[op], took)
	if err != nil {
		m.fails[op]++
		m.last = err
	}
}

// phase is what a meter recorded between two takes.
type phase struct {
	times map[string][]time.Duration
	fails map[string]int
	took  time.Duration
}

func (m *meter) take(since time.Time) phase {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := phase{times: m.times, fails: m.fails, took: time.Since(since)}
	m.times, m.fails = map[string][]time.Duration{}, map[string]int{}
	return p
}

func (p phase) count(op string) int { return len(p.times[op]) }

func (m *meter) lastError() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

func (p phase) all() []time.Duration {
	var out []time.Duration
	for _, ts := range p.times {
		out = append(out, ts...)
	}
	return out
}

// quantiles prints p50/p99/max of ts.
func quantiles(ts []time.Duration) string {
	if len(ts) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(f float64) time.Duration { return s[int(f*float64(len(s)-1))] }
	return fmt.Sprintf("%s/%s/%s", short(q(0.5)), short(q(0.99)), short(s[len(s)-1]))
}

// short prints a duration with three significant digits.
func short(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
}

// beating is a node's heartbeat with every beat recorded in a meter; the
// node's first beat that succeeds adds one to up.
type beating struct {
	lease.Liveness
	m     *meter
	first sync.Once
	up    *atomic.Int64
}

func (b *beating) Beat(ctx context.Context, node string, ttl time.Duration) error {
	start := time.Now()
	err := b.Liveness.Beat(ctx, node, ttl)
	b.m.record("beat", time.Since(start), err)
	if err == nil {
		b.first.Do(func() { b.up.Add(1) })
	}
	return err
}

// cpuTicks is the user plus system time of processes, in clock ticks
// (USER_HZ, 100 a second on Linux).
func cpuTicks(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name may hold spaces: fields count from after it.
		s := string(raw)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		sum += ut + st
	}
	return sum
}

// cpuShare is the CPU the processes used over a phase, in percent of one
// core.
func cpuShare(ticks int64, over time.Duration) float64 {
	return float64(ticks) / 100 / over.Seconds() * 100
}

// ratio prints b/a as a growth factor.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", b/a)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
