package plan

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/run"
)

// holders names the processes that keep dir busy, from fstat(1) -f, which
// lists open files on the filesystem of dir. It runs under a short deadline
// because fstat stats the path.
func holders(ctx context.Context, s *System, dir string) []string {
	res, err := s.Run.Run(ctx, run.Cmd{Argv: []string{"fstat", "-f", dir}, Timeout: 5 * time.Second})
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for i, line := range strings.Split(string(res.Stdout), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 {
			continue // header: USER CMD PID FD MOUNT ...
		}
		key := f[2]
		if !seen[key] {
			seen[key] = true
			out = append(out, fmt.Sprintf("pid %s (%s)", f[2], f[1]))
		}
	}
	return out
}
