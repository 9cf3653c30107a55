// Package crashpoint lets tests kill a program at a named point, as a power
// cut would: when ENVHOOKS_CRASH_AFTER names a point, the program sends
// itself SIGKILL the moment it passes it. "name#N" picks the Nth time the
// point is passed (from 1). Without the variable it does nothing; the
// crash tests use it to prove that whatever a run leaves behind, the next
// start finishes it and the next stop undoes it.
package crashpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Env names the variable.
const Env = "ENVHOOKS_CRASH_AFTER"

var (
	mu     sync.Mutex
	passed = map[string]int{}
)

// Here is a crash point.
func Here(name string) {
	want := os.Getenv(Env)
	if want == "" {
		return
	}
	point, nth, _ := strings.Cut(want, "#")
	if point != name {
		return
	}
	mu.Lock()
	passed[name]++
	count := passed[name]
	mu.Unlock()
	if n, err := strconv.Atoi(nth); nth != "" && (err != nil || n != count) {
		return
	}
	if nth == "" && count != 1 {
		return
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
