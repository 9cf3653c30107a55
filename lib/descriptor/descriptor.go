// Package descriptor reads and writes CBSD's rc.conf_<jname> files, the
// portable description of a jail or VM that travels with its data: lines of
// key="value"; (the ';' is optional, comments and blank lines are allowed),
// with the node's workdir written as the CBSDROOT placeholder. It never runs
// a shell: values are data, and anything a shell would expand is refused.
package descriptor

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// Placeholder stands for the workdir in a portable descriptor.
const Placeholder = "CBSDROOT"

// FileName is the descriptor's name for jname.
func FileName(jname string) string { return "rc.conf_" + jname }

// Descriptor is a parsed file. Raw is kept byte for byte so that a file
// written by CBSD comes out of a register/unregister round trip unchanged.
type Descriptor struct {
	Raw    []byte
	Values map[string]string
	Order  []string
}

// Parse checks raw as the descriptor of jname (from where, for messages).
func Parse(raw []byte, jname, where string) (*Descriptor, error) {
	d := &Descriptor{Raw: raw, Values: map[string]string{}}
	for i, line := range strings.Split(string(raw), "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		key, value, err := parseLine(trimmed)
		if err != nil {
			return nil, sysexits.New(sysexits.DataErr, "%s:%d: %v", where, n, err)
		}
		if _, dup := d.Values[key]; !dup {
			d.Order = append(d.Order, key)
		}
		d.Values[key] = value
	}
	name, ok := d.Values["jname"]
	switch {
	case !ok:
		return nil, sysexits.New(sysexits.DataErr, "%s: no jname=\"...\" line: not a CBSD descriptor", where)
	case name != jname:
		return nil, sysexits.New(sysexits.DataErr, "%s: describes %q, not %q: the file name and its jname= line must agree", where, name, jname)
	}
	return d, nil
}

// parseLine accepts exactly key="value" with an optional ';'.
func parseLine(line string) (key, value string, err error) {
	eq := strings.IndexByte(line, '=')
	if eq <= 0 {
		return "", "", fmt.Errorf("not a key=\"value\" line: %.60q", line)
	}
	key = line[:eq]
	for i, c := range key {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return "", "", fmt.Errorf("invalid key %.40q", key)
		}
	}
	rest := strings.TrimSuffix(line[eq+1:], ";")
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
		return "", "", fmt.Errorf("%s: the value must be in double quotes: %.60q", key, line)
	}
	value = rest[1 : len(rest)-1]
	if strings.ContainsAny(value, "\"$`\\") {
		return "", "", fmt.Errorf("%s: the value holds a character a shell would expand ($, `, \\ or \"): refused", key)
	}
	return key, value, nil
}

// Kind is "jail" or "vm", from the emulator key (jails may omit it).
func (d *Descriptor) Kind() string {
	switch d.Values["emulator"] {
	case "", "jail":
		return "jail"
	}
	return "vm"
}

// Localize replaces the placeholder with workdir; Portable does the
// reverse. Both replace whole path prefixes only: workdir followed by '/',
// '"' or the end of the value, so /usr/jails never touches /usr/jails2, and
// the replacement is literal, so a workdir with regex characters is safe.
func Localize(raw []byte, workdir string) []byte {
	return replacePrefix(raw, Placeholder, strings.TrimRight(workdir, "/"))
}

// Portable replaces workdir with the placeholder.
func Portable(raw []byte, workdir string) []byte {
	return replacePrefix(raw, strings.TrimRight(workdir, "/"), Placeholder)
}

func replacePrefix(raw []byte, old, new string) []byte {
	if old == "" {
		return raw
	}
	var out bytes.Buffer
	rest := raw
	for {
		i := bytes.Index(rest, []byte(old))
		if i < 0 {
			out.Write(rest)
			return out.Bytes()
		}
		end := i + len(old)
		boundaryAfter := end == len(rest) || rest[end] == '/' || rest[end] == '"' || rest[end] == '\n'
		boundaryBefore := i == 0 || rest[i-1] == '"' || rest[i-1] == ' ' || rest[i-1] == '\n' || rest[i-1] == '='
		out.Write(rest[:i])
		if boundaryAfter && boundaryBefore {
			out.WriteString(new)
		} else {
			out.WriteString(old)
		}
		rest = rest[end:]
	}
}
