// Package descriptor reads and writes CBSD's rc.conf_<jname> files, the
// portable description of a jail or VM that travels with its data: lines of
// key="value"; (the ';' is optional, comments and blank lines are allowed),
// with the node's workdir written as the CBSDROOT placeholder.
//
// CBSD writes the values raw (jailctl/jmkrcconf echoes key="$VAL"; for every
// column), so a value may hold anything but a double quote and a newline: a
// vnc_password with '$' in it is a valid descriptor. envhooks never runs the
// file through a shell; what CBSD's own jregister does with it (it sources
// it) is guarded where envctl hands a file to CBSD (see ShellSafe).
package descriptor

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Placeholder stands for the workdir in a portable descriptor (and in a
// jail's fstab), as CBSD's junregister writes it (tools/replacewdir).
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
// An error names the file and the line, never what the line holds: the
// file may be anything an operator pointed rcfile= at.
func Parse(raw []byte, jname, where string) (*Descriptor, error) {
	d := &Descriptor{Raw: raw, Values: map[string]string{}}
	for i, line := range strings.Split(string(raw), "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		key, value, problem := parseLine(trimmed)
		if problem != "" {
			return nil, sysexits.New(sysexits.DataErr, "%s:%d: %s: not a CBSD descriptor line (key=\"value\";)", where, n, problem)
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
	case name != jname && environment.CheckName(name) == nil:
		return nil, sysexits.New(sysexits.DataErr, "%s: describes %s, not %s: the file name and its jname= line must agree", where, name, jname)
	case name != jname:
		return nil, sysexits.New(sysexits.DataErr, "%s: its jname= line is not %s (nor any valid jname)", where, jname)
	}
	return d, nil
}

// parseLine accepts exactly key="value" with an optional ';'. It says what
// is wrong without quoting the line.
func parseLine(line string) (key, value, problem string) {
	eq := strings.IndexByte(line, '=')
	if eq <= 0 {
		return "", "", "no key=\"value\""
	}
	key = line[:eq]
	for i, c := range key {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return "", "", "the key is not a shell variable name"
		}
	}
	rest := strings.TrimSuffix(line[eq+1:], ";")
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
		return "", "", "the value of " + key + " is not one double-quoted string"
	}
	value = rest[1 : len(rest)-1]
	if strings.Contains(value, `"`) {
		return "", "", "the value of " + key + " holds a double quote"
	}
	return key, value, ""
}

// Kind is "jail" or "vm", from the emulator key as CBSD's rcconf.subr
// reads it: jails may omit it or say "jail", and a jail run under
// qemu-user-static says qemu-<arch>-static (init_rcconf maps
// qemu-arm-static, qemu-aarch64-static, ... to an arch); "bhyve" is a VM.
// Any other emulator (xen, qemu, virtualbox) has a start path envhooks does
// not replay, so it is refused.
func (d *Descriptor) Kind() (string, error) {
	e := d.Values["emulator"]
	switch {
	case e == "" || e == "jail" || isQemuUser(e):
		return "jail", nil
	case e == "bhyve":
		return "vm", nil
	}
	return "", sysexits.New(sysexits.DataErr, "emulator=%q: envhooks moves jails (emulator jail or qemu-<arch>-static) and bhyve VMs only", e)
}

func isQemuUser(e string) bool {
	arch, ok := strings.CutPrefix(e, "qemu-")
	if !ok {
		return false
	}
	arch, ok = strings.CutSuffix(arch, "-static")
	if !ok || arch == "" {
		return false
	}
	for _, c := range arch {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ShellSafe refuses a descriptor that CBSD's jregister could not take
// safely: it sources the file with sh (sudoexec/jregister runs
// ". ${tmpdir}/rcconf.$$"), and inside double quotes sh still runs
// `...` and $(...) and expands ${...}. envctl checks this before it hands a
// file to cbsd jregister (CBSD_DELEGATE=1); a '$' alone (a password) passes.
func (d *Descriptor) ShellSafe(where string) error {
	for _, key := range d.Order {
		v := d.Values[key]
		if strings.Contains(v, "`") || strings.Contains(v, "$(") || strings.Contains(v, "${") {
			return sysexits.New(sysexits.DataErr, "%s: the value of %s holds ` or $( or ${, which cbsd jregister would run or expand when it sources the file (CBSD_DELEGATE=1): refused", where, key)
		}
	}
	return nil
}

// CheckWorkdir refuses a workdir that cannot round-trip through a portable
// descriptor or fstab: "/" (the placeholder would swallow every path),
// anything not absolute and clean, characters that end a path in either
// format (a double quote, blanks, ',', '=', ';') or that a shell would
// still expand inside double quotes (CBSD's jregister sources the file:
// '$', '`', '\\'), a single quote, control characters, and ':', which
// CBSD's own rewrite cannot take (tools/replacewdir runs sed s:old:new:).
// Regular-expression characters are fine: the rewrite here is literal.
func CheckWorkdir(w string) error {
	w = strings.TrimRight(w, "/")
	switch {
	case w == "":
		return fmt.Errorf("the workdir cannot be /: every path would start with it")
	case w[0] != '/':
		return fmt.Errorf("want an absolute path")
	case strings.Contains(w, "//") || strings.Contains(w+"/", "/./") || strings.Contains(w+"/", "/../"):
		return fmt.Errorf("want a clean path: no //, . or .. elements")
	}
	for i := 0; i < len(w); i++ {
		if c := w[i]; c <= ' ' || c == 0x7f || strings.IndexByte("\"'\\`$,=;:", c) >= 0 {
			return fmt.Errorf("%q cannot be written into a descriptor and read back: a workdir may not hold blanks, control characters or any of the characters \" ' \\ ` $ , = ; : in its path", c)
		}
	}
	return nil
}

// Localize replaces the placeholder at the start of every path with
// workdir; Portable does the reverse. A path starts at the start of a
// line, a value or a word (after '"', a blank, ',', '=' or ';'), and the
// workdir must end there too (before '/', '"', a blank, ',', ';' or the
// end of the line), so /usr/jails never touches /usr/jails2, and a second
// occurrence right after a replaced one (/jails/jails/web1 with workdir
// /jails) is not a path start. The same rule reads descriptors and fstabs.
func Localize(raw []byte, workdir string) ([]byte, error) {
	if err := CheckWorkdir(workdir); err != nil {
		return nil, sysexits.New(sysexits.Config, "WORKDIR=%s: %v", workdir, err)
	}
	return replacePaths(raw, Placeholder, strings.TrimRight(workdir, "/")), nil
}

// Portable replaces workdir with the placeholder. A text that already holds
// the placeholder at a path start is refused: the next node could not tell
// it from the workdir written as placeholder.
func Portable(raw []byte, workdir string) ([]byte, error) {
	if err := CheckWorkdir(workdir); err != nil {
		return nil, sysexits.New(sysexits.Config, "WORKDIR=%s: %v", workdir, err)
	}
	if at := pathStarts(raw, Placeholder); at >= 0 {
		return nil, sysexits.New(sysexits.DataErr, "line %d already holds %s as a path, which a portable copy uses for the workdir: cannot make it portable", bytes.Count(raw[:at], []byte("\n"))+1, Placeholder)
	}
	return replacePaths(raw, strings.TrimRight(workdir, "/"), Placeholder), nil
}

// IsPortable reports whether raw holds the placeholder as a path: a copy
// made portable by envctl or by CBSD's junregister.
func IsPortable(raw []byte) bool { return pathStarts(raw, Placeholder) >= 0 }

// HasPath reports whether raw holds dir (a workdir) as a path prefix.
func HasPath(raw []byte, dir string) bool { return pathStarts(raw, strings.TrimRight(dir, "/")) >= 0 }

func startsPath(prev byte) bool { return strings.IndexByte("\n\"\t ,=;", prev) >= 0 }
func endsPath(next byte) bool   { return strings.IndexByte("/\"\t ,;\r\n", next) >= 0 }

// isPath reports whether old at raw[i:] is a whole path prefix.
func isPath(raw []byte, i int, old string) bool {
	end := i + len(old)
	return (i == 0 || startsPath(raw[i-1])) && (end == len(raw) || endsPath(raw[end]))
}

// pathStarts returns where old first stands as a path prefix, or -1.
func pathStarts(raw []byte, old string) int {
	for i := 0; ; {
		j := bytes.Index(raw[i:], []byte(old))
		if j < 0 {
			return -1
		}
		if isPath(raw, i+j, old) {
			return i + j
		}
		i += j + 1
	}
}

// replacePaths replaces old with new wherever old stands as a path prefix.
// Boundaries are judged on the original bytes, and after a replacement the
// scan resumes past it.
func replacePaths(raw []byte, old, new string) []byte {
	var out bytes.Buffer
	last := 0
	for i := 0; i <= len(raw)-len(old); {
		j := bytes.Index(raw[i:], []byte(old))
		if j < 0 {
			break
		}
		at := i + j
		if !isPath(raw, at, old) {
			i = at + 1
			continue
		}
		out.Write(raw[last:at])
		out.WriteString(new)
		last = at + len(old)
		i = last
	}
	out.Write(raw[last:])
	return out.Bytes()
}
