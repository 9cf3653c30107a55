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

// The record is kept in a small line format of its own rather than JSON:
// it is read on every hook start, and encoding/json's reflection costs
// several times the rest of an idempotent mnt-start in a binary this size.
// One field per line, a keyword then Go-quoted strings (or numbers), an
// "action" line opening each action:
//
//	envhooks-state 1
//	jname "web1"
//	action "mount:/usr/jails/jails-data/web1-data"
//	kind "unmount"
//	target "/usr/jails/jails-data/web1-data"
//	want "" "" "/dfs/data/web1"
//	argv "umount" "/usr/jails/jails-data/web1-data"
const header = "envhooks-state 1"

func encode(r *Record) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n# what mnt-start attached for %s; mnt-stop undoes it from the bottom up\n", header, r.JName)
	str := func(key string, vals ...string) {
		b.WriteString(key)
		for _, v := range vals {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(v))
		}
		b.WriteByte('\n')
	}
	str("jname", r.JName)
	str("backend", r.Backend)
	if r.Node != "" {
		str("node", r.Node)
	}
	if r.Generation != 0 {
		fmt.Fprintf(&b, "generation %d\n", r.Generation)
	}
	str("updated", r.Updated.UTC().Format(time.RFC3339))
	for _, a := range r.Actions {
		str("action", a.ID)
		str("what", a.What)
		str("kind", a.Kind)
		if a.Target != "" {
			str("target", a.Target)
		}
		if a.Want != (mounttab.Want{}) {
			str("want", a.Want.FSType, a.Want.Source, a.Want.BindOf)
		}
		if a.Direct {
			b.WriteString("direct\n")
		}
		str("argv", a.Argv...)
		if len(a.Force) > 0 {
			str("force", a.Force...)
		}
		if len(a.OKExit) > 0 {
			b.WriteString("ok_exit")
			for _, c := range a.OKExit {
				fmt.Fprintf(&b, " %d", c)
			}
			b.WriteByte('\n')
		}
		if len(a.OKStderr) > 0 {
			str("ok_stderr", a.OKStderr...)
		}
		if a.Timeout > 0 {
			fmt.Fprintf(&b, "timeout %d\n", a.Timeout.Milliseconds())
		}
		if a.Configured {
			b.WriteString("configured\n")
		}
	}
	return b.Bytes()
}

func decode(raw []byte) (*Record, error) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	r := &Record{}
	var a *Action
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			if line != header {
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
