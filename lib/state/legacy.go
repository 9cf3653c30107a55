package state

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/mounttab"
)

// decodeLegacy reads the line format envhooks wrote state records in
// before they were JSON (a keyword, then Go-quoted strings or numbers, an
// "action" line opening each action), so that environments attached before
// an upgrade are still detached after it. Nothing writes it any more.
//
//	envhooks-state 1
//	jname "web1"
//	action "mount:/usr/jails/jails-data/web1-data"
//	kind "unmount"
//	target "/usr/jails/jails-data/web1-data"
//	want "" "" "/dfs/data/web1"
//	argv "umount" "/usr/jails/jails-data/web1-data"
func decodeLegacy(raw []byte, v any) error {
	r, err := decode(raw)
	if err != nil {
		return err
	}
	*v.(*Record) = *r
	return nil
}

const legacyHeader = "envhooks-state 1"

func decode(raw []byte) (*Record, error) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	r := &Record{}
	var a *Action
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			if line != legacyHeader {
				return nil, fmt.Errorf("line 1: not an envhooks state record")
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		key, rest, _ := strings.Cut(line, " ")
		vals, err := words(rest)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		one := func() (string, error) {
			if len(vals) != 1 {
				return "", fmt.Errorf("line %d: %s wants one value", n, key)
			}
			return vals[0], nil
		}
		if key != "action" && key != "jname" && key != "backend" && key != "node" && key != "generation" && key != "updated" && a == nil {
			return nil, fmt.Errorf("line %d: %s outside an action", n, key)
		}
		var v string
		switch key {
		case "jname":
			v, err = one()
			r.JName = v
		case "backend":
			v, err = one()
			r.Backend = v
		case "node":
			v, err = one()
			r.Node = v
		case "updated":
			if v, err = one(); err == nil {
				r.Updated, err = time.Parse(time.RFC3339, v)
			}
		case "generation":
			r.Generation, err = strconv.ParseUint(strings.TrimSpace(rest), 10, 64)
		case "action":
			v, err = one()
			r.Actions = append(r.Actions, Action{ID: v})
			a = &r.Actions[len(r.Actions)-1]
		case "what":
			a.What, err = one()
		case "kind":
			a.Kind, err = one()
		case "target":
			a.Target, err = one()
		case "want":
			if len(vals) != 3 {
				return nil, fmt.Errorf("line %d: want has three values", n)
			}
			a.Want = mounttab.Want{FSType: vals[0], Source: vals[1], BindOf: vals[2]}
		case "direct":
			a.Direct = true
		case "configured":
			a.Configured = true
		case "timeout":
			var ms uint64
			ms, err = strconv.ParseUint(strings.TrimSpace(rest), 10, 32)
			a.Timeout = time.Duration(ms) * time.Millisecond
		case "argv":
			a.Argv = vals
		case "force":
			a.Force = vals
		case "ok_stderr":
			a.OKStderr = vals
		case "ok_exit":
			for _, f := range strings.Fields(rest) {
				c, cerr := strconv.Atoi(f)
				if cerr != nil {
					return nil, fmt.Errorf("line %d: ok_exit: %v", n, cerr)
				}
				a.OKExit = append(a.OKExit, c)
			}
		default:
			return nil, fmt.Errorf("line %d: unknown field %q", n, key)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %v", n, key, err)
		}
		// a points into the slice: re-point it after any append.
		if len(r.Actions) > 0 {
			a = &r.Actions[len(r.Actions)-1]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if r.JName == "" {
		return nil, fmt.Errorf("no jname line")
	}
	return r, nil
}

// words splits a run of Go-quoted strings (numbers are read by their keys).
func words(s string) ([]string, error) {
	var out []string
	for s = strings.TrimLeft(s, " "); s != "" && s[0] == '"'; s = strings.TrimLeft(s, " ") {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Unquote(q)
		out = append(out, v)
		s = s[len(q):]
	}
	return out, nil
}
