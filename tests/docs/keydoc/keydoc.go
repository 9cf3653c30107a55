// Package keydoc formats the configuration keys' documentation for the
// README and envhooks.conf(5); make docs writes it, tests/docs checks it.
package keydoc

import (
	"strings"

	"github.com/envhooks/envhooks/lib/config"
)

// MarkdownDefault is the README's default column: a default that differs
// between FreeBSD and Linux (the state directory) is shown for both.
func MarkdownDefault(k config.Key) string {
	if k.Default == "" {
		return ""
	}
	if fb, lx, ok := config.OSDefaults(k.Default); ok {
		return "`" + fb + "` (FreeBSD), `" + lx + "` (Linux)"
	}
	return "`" + k.Default + "`"
}

// MarkdownAlias is the README's row for a deprecated name.
func MarkdownAlias(a config.Alias) string {
	return "| `" + a.Name + "` |  | deprecated: read as `" + a.Key + "`, with a warning; rename it |\n"
}

// ManAlias is envhooks.conf(5)'s entry for a deprecated name.
func ManAlias(a config.Alias) string {
	return ".It Ev " + a.Name + "\nDeprecated: read as\n.Ev " + a.Key + " ,\nwith a warning; rename it.\n"
}

// ManDefault is the default sentence of envhooks.conf(5).
func ManDefault(k config.Key) string {
	if fb, lx, ok := config.OSDefaults(k.Default); ok {
		return "Default:\n.Pa " + fb + "\n.Pq Fx ,\n.Pa " + lx + "\n(Linux).\n"
	}
	return "Default: \\&" + k.Default + ".\n"
}

// Mdoc sets a documentation line as mandoc -Tlint wants it: one sentence
// per line, lines within 80 bytes, .Fx for the OS's name, backslashes
// escaped. It ends with a newline.
func Mdoc(text string) string {
	var b, line strings.Builder
	flush := func() {
		if line.Len() > 0 {
			b.WriteString(line.String() + "\n")
			line.Reset()
		}
	}
	text = strings.TrimSpace(text)
	if !strings.HasSuffix(text, ".") {
		text += "." // the default follows as a sentence of its own
	}
	for _, w := range strings.Fields(strings.ReplaceAll(text, `\`, `\e`)) {
		if rest, ok := strings.CutPrefix(w, "FreeBSD"); ok {
			flush()
			b.WriteString(strings.TrimSpace(".Fx "+rest) + "\n")
			continue
		}
		if rest, ok := strings.CutPrefix(w, "(FreeBSD"); ok {
			flush()
			b.WriteString(strings.TrimSpace(".Pf ( Fx "+rest) + "\n")
			continue
		}
		if line.Len() > 0 && line.Len()+1+len(w) > 78 {
			flush()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(w)
		if strings.HasSuffix(w, ".") || strings.HasSuffix(w, "?") || strings.HasSuffix(w, "!") {
			flush()
		}
	}
	flush()
	return b.String()
}
