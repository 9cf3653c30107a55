package run

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// selfPath is this very program, even if its file was replaced since.
func selfPath() string { return "/proc/self/exe" }

func becomeReaper() error { return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }

// executablePath is the path that executes the checked file itself:
// its descriptor in /proc, which the child inherits as descriptor 3. (A
// script's interpreter is handed that path, which still names the file.)
// Without /proc, the path it was checked at, if it is still that file.
func executablePath(exe *os.File, path string) (string, error) {
	viaFD := "/proc/self/fd/" + strconv.Itoa(executableFD)
	if _, err := os.Stat(viaFD); err == nil {
		return viaFD, nil
	}
	return sameFile(exe, path)
}

// killDescendants sends SIGKILL to every descendant of this process, found
// by following the parent of every process in /proc.
func killDescendants() {
	for _, pid := range descendants(os.Getpid()) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// descendants lists the processes below root, by their parent pids in
// /proc/<pid>/stat.
func descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// parentOf reads the parent pid from /proc/<pid>/stat: "pid (comm) state
// ppid ...", where comm may hold spaces and parentheses.
func parentOf(pid int) (int, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(raw[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(string(f[1]))
	return ppid, err == nil
}
