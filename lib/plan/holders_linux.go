package plan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// holders names the processes that keep dir busy: their cwd, root,
// executable or an open file lies under it. It reads only /proc links, never
// the mount itself.
func holders(_ context.Context, _ *System, dir string) []string {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	seen := map[string]bool{}
	var out []string
	for _, p := range procs {
		links := []string{p + "/cwd", p + "/root", p + "/exe"}
		fds, _ := filepath.Glob(p + "/fd/*")
		links = append(links, fds...)
		for _, l := range links {
			target, err := os.Readlink(l)
			if err != nil || !(target == dir || strings.HasPrefix(target, dir+"/")) {
				continue
			}
			pid := filepath.Base(p)
			if !seen[pid] {
				seen[pid] = true
				comm, _ := os.ReadFile(p + "/comm")
				out = append(out, fmt.Sprintf("pid %s (%s)", pid, strings.TrimSpace(string(comm))))
			}
			break
		}
	}
	sort.Strings(out)
	return out
}
