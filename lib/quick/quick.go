// Package quick answers mnt-start's most common call, "everything is
// already attached", without loading the configuration parser or any
// storage backend, which together cost more than the answer itself.
//
// A full start (envhooks-attach) that finds or leaves everything mounted
// writes a note to the run directory: the fingerprint of its inputs (the
// flags, the bytes of every configuration layer, the environment variables
// that are configuration keys, the version) and the mounts it made sure of.
// mnt-start recomputes the fingerprint and checks the kernel's mount table
// for every one of those mounts; on any difference, or any doubt, it hands
// the run to envhooks-attach. The note is written only for plans made of
// plain mounts, without ownership leases and without configuration
// warnings, so that the full start would have done nothing and said
// nothing either; mnt-stop removes it before it detaches anything.
package quick

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/envhooks/envhooks/lib/configpath"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/rawread"
)

// DirEnv names the environment variable that moves the run directory
// (tests, several installations on one node).
const DirEnv = "ENVHOOKS_RUNDIR"

// Dir is where the notes live: a run directory, emptied at boot like the
// mount table the notes describe.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return defaultDir
}

// Inputs are what decides a start's plan, besides the configuration files
// and environment the fingerprint reads.
type Inputs struct {
	Version                            string
	ConfigFile                         string // -c FILE or ENVHOOKS_CONFIG; "" for the global file
	JName, Data, System, Fstab, RCConf string
}

// Mount is one mount a note vouches for.
type Mount struct {
	Target string
	Want   mounttab.Want
}

// Note is what a full start leaves for the next mnt-start.
type Note struct {
	Inputs string   // the fingerprint
	Keys   []string // the configuration keys the environment can set
	Mounts []Mount
}

const header = "envhooks-quick 1"

// Fingerprint digests in, the configuration layers' bytes, and the values of
// the environment variables named in keys.
func Fingerprint(in Inputs, keys []string) string {
	// FNV-128a, not SHA-256: the fingerprint guards against change, not
	// against an attacker (who would need root to edit these files), and
	// crypto/sha256 alone would add a tenth of the check's cost at start.
	h := fnv.New128a()
	field := func(s string) { fmt.Fprintf(h, "%d:%s\n", len(s), s) }
	for _, s := range []string{in.Version, in.ConfigFile, in.JName, in.Data, in.System, in.Fstab, in.RCConf} {
		field(s)
	}
	for _, p := range configpath.For(in.ConfigFile, in.JName).Paths() {
		field(p)
		raw, err := rawread.File(p)
		switch {
		case err == nil:
			field("file")
			h.Write(raw)
		case errors.Is(err, os.ErrNotExist):
			field("absent")
		default:
			field("unreadable")
		}
	}
	for _, k := range keys {
		field(k)
		if v, ok := os.LookupEnv(k); ok {
			field("=" + v)
		} else {
			field("unset")
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Path is where jname's note lives.
func Path(jname string) string { return filepath.Join(Dir(), jname+".quick") }

// Encode returns jname's note as the full start writes it. The writer uses
// safefile.WriteAtomic, which mnt-start must not link (it brings
// encoding/json along).
func Encode(jname string, n Note) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n# mnt-start's quick check for %s; written by envhooks-attach, removed by mnt-stop\n", header, jname)
	fmt.Fprintf(&b, "inputs %s\n", strconv.Quote(n.Inputs))
	b.WriteString("keys")
	for _, k := range n.Keys {
		b.WriteString(" " + strconv.Quote(k))
	}
	b.WriteByte('\n')
	for _, m := range n.Mounts {
		fmt.Fprintf(&b, "mount %s %s %s %s\n", strconv.Quote(m.Target), strconv.Quote(m.Want.FSType), strconv.Quote(m.Want.Source), strconv.Quote(m.Want.BindOf))
	}
	return b.Bytes()
}

// Remove deletes jname's note; a missing note is fine.
func Remove(jname string) error {
	if err := os.Remove(Path(jname)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Load reads jname's note; nil when there is none or it cannot be read
// whole (a note is only ever a shortcut).
func Load(jname string) *Note {
	raw, err := rawread.File(Path(jname))
	if err != nil {
		return nil
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) == 0 || lines[0] != header {
		return nil
	}
	n := &Note{}
	seen := map[string]bool{}
	for _, line := range lines[1:] {
		if line == "" || line[0] == '#' {
			continue
		}
		key, rest, _ := strings.Cut(line, " ")
		vals, ok := quoted(rest)
		if !ok {
			return nil
		}
		switch {
		case key == "inputs" && len(vals) == 1:
			n.Inputs = vals[0]
		case key == "keys":
			n.Keys = vals
		case key == "mount" && len(vals) == 4:
			n.Mounts = append(n.Mounts, Mount{Target: vals[0], Want: mounttab.Want{FSType: vals[1], Source: vals[2], BindOf: vals[3]}})
		default:
			return nil
		}
		seen[key] = true
	}
	if !seen["inputs"] || !seen["keys"] || len(n.Mounts) == 0 {
		return nil
	}
	return n
}

// quoted splits a line of space-separated Go-quoted strings. lib/state has
// a lenient twin for its records (numbers share its lines); a note holds
// quoted strings only, so anything else makes it unreadable.
func quoted(s string) ([]string, bool) {
	var out []string
	for s = strings.TrimLeft(s, " "); s != ""; s = strings.TrimLeft(s, " ") {
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return nil, false
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return nil, false
		}
		out = append(out, v)
		s = s[len(q):]
	}
	return out, true
}

// InPlace reports whether jname's note matches in and the mount table still
// shows every mount it vouches for. The note is read before the table: a
// mnt-stop running meanwhile unmounts before it forgets, so the two never
// agree on something half undone.
func InPlace(in Inputs, read func() (mounttab.Table, error)) bool {
	n := Load(in.JName)
	if n == nil || Fingerprint(in, n.Keys) != n.Inputs {
		return false
	}
	t, err := read()
	if err != nil {
		return false
	}
	for _, m := range n.Mounts {
		top, ok := t.Top(m.Target)
		if !ok || !t.Matches(top, m.Want) {
			return false
		}
	}
	return true
}
