package envctl

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/term"

	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/descriptor"
	"github.com/envhooks/envhooks/lib/oneline"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// IsPattern reports whether a jname operand is a shell glob.
func IsPattern(s string) bool { return strings.ContainsAny(s, "*?[") }

// Expand returns the jnames pattern matches, with shell glob semantics
// (path.Match: '*', '?', '[...]'; '/' never matches). For register the
// candidates are the environments on the shared storage and the descriptors
// CBSD left in jails-rcconf; for unregister, this node's registrations.
func (n *Node) Expand(pattern, op string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, sysexits.New(sysexits.Usage, "bad pattern %s: %v", oneline.Quote(pattern), err)
	}
	seen := map[string]bool{}
	var candidates []string
	add := func(names ...string) {
		for _, name := range names {
			if !seen[name] {
				seen[name] = true
				candidates = append(candidates, name)
			}
		}
	}
	registered, strays, err := n.Inv.Names()
	if err != nil {
		return nil, err
	}
	n.warnStrays(strays)
	if op == "unregister" {
		add(registered...)
	} else {
		if _, b, err := n.Backends.Open(n.Config); err == nil {
			if l, ok := b.(backend.Lister); ok {
				names, err := l.Environments()
				if err != nil {
					return nil, sysexits.New(sysexits.Unavailable, "cannot list the environments on the shared storage: %v", err)
				}
				add(names...)
			}
		}
		files, _ := filepath.Glob(filepath.Join(n.Workdir, "jails-rcconf", descriptor.FileName("*")))
		for _, f := range files {
			add(strings.TrimPrefix(filepath.Base(f), "rc.conf_"))
		}
	}
	mine := map[string]bool{}
	for _, r := range registered {
		mine[r] = true
	}
	var out []string
	for _, c := range candidates {
		if ok, _ := path.Match(pattern, c); ok && (op == "unregister" || !mine[c]) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, sysexits.New(sysexits.DataErr, "no environment matches %s (shell glob; for %s the candidates are %s)", oneline.Quote(pattern), op, candidateText(op))
	}
	return out, nil
}

func candidateText(op string) string {
	if op == "unregister" {
		return "those registered on this node"
	}
	return "those on the shared storage and in jails-rcconf that are not registered here"
}

// Each runs fn for every jname, PARALLEL at a time, continues past
// failures, shows progress on a terminal, prints a summary, and returns the
// first failure in name order (nil when all succeeded).
func (n *Node) Each(ctx context.Context, verb string, jnames []string, fn func(ctx context.Context, jname string) error, stderr io.Writer) error {
	errs := make([]error, len(jnames))
	var done atomic.Int64
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	var mu sync.Mutex
	progress := func(name string) {
		if !tty {
			return
		}
		mu.Lock()
		fmt.Fprintf(stderr, "\r%s [%d/%d] %-40.40s", verb, done.Load(), len(jnames), name)
		mu.Unlock()
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(1, min(n.Config.Int(parallelKey), len(jnames))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				errs[i] = fn(ctx, jnames[i])
				done.Add(1)
				progress(jnames[i])
			}
		}()
	}
	for i := range jnames {
		work <- i
	}
	close(work)
	wg.Wait()
	if tty {
		fmt.Fprintln(stderr)
	}
	var first error
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "%s: %s: %s\n", verb, jnames[i], oneline.Clean(err.Error()))
			if first == nil {
				first = err
			}
		}
	}
	fmt.Fprintf(stderr, "%s: %d environments: %d done, %d failed\n", verb, len(jnames), len(jnames)-failed, failed)
	if first != nil {
		return sysexits.Wrap(sysexits.Code(first), fmt.Errorf("%d of %d failed; first: %w", failed, len(jnames), first))
	}
	return nil
}
