// Package oneline makes any text safe to print as one line of a log or an
// error: control and formatting characters are escaped (a newline becomes
// the two characters \n), bytes that are not UTF-8 become \xNN, and the
// line is cut to a bounded length. Every line envhooks prints on stderr or
// sends to syslog goes through it, so no input (a flag, a jname, a value, a
// hook's output) can forge a second line or flood the log.
package oneline

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// Max is the longest line Clean returns, in bytes, before the note of how
// much was cut: room for several paths and a command's own message, far
// short of what a flood of bad input would print.
const Max = 2048

// Clean escapes what could break or fake a line and bounds its length.
func Clean(s string) string { return CleanMax(s, Max) }

// CleanMax is Clean with a bound of limit bytes (at least 16).
func CleanMax(s string, limit int) string {
	limit = max(limit, 16)
	if safe(s) && len(s) <= limit {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size <= 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case unicode.IsPrint(r):
			piece = s[i : i+size]
		default:
			q := strconv.QuoteRuneToASCII(r) // '\n', '\x1b', '\u202e'
			piece = q[1 : len(q)-1]
		}
		if b.Len()+len(piece) > limit {
			fmt.Fprintf(&b, "... (%d more bytes)", len(s)-i)
			return b.String()
		}
		b.WriteString(piece)
		i += size
	}
	return b.String()
}

// safe reports whether s has only printable ASCII: the common case, which
// needs no copy.
func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Quote is %q bounded: how a message shows a string someone typed or a
// file held (an unknown option, an operand, a value), so that what it
// holds is seen, quotes and escapes included, never obeyed.
func Quote(s string) string {
	const keep = 200
	if len(s) <= keep {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:keep]) + fmt.Sprintf("... (%d bytes)", len(s))
}

// Fail prints err as prog's one error line on w and returns its exit code:
// the one place the programs print the error they exit with.
func Fail(w io.Writer, prog string, err error) int {
	fmt.Fprintf(w, "%s: error: %s\n", prog, Clean(err.Error()))
	return sysexits.Code(err)
}
